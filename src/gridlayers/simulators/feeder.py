"""mosaik adapters for the physics layer.

:class:`FeederSim` runs inside a gridlayers co-simulation: one ``Feeder`` entity per
LDA, built from the run's scenario. :class:`FeederSimulator` is the same physics as a
standalone mosaik component, for any mosaik scenario (see its docstring).

FeederSim is event-based: a feeder steps when its aggregators' realised DER injections arrive
(``DER_P[MW]``, a ``{device id: MW}`` dict per aggregator); an LDA without DER steps
on its own at the dispatch phase of every interval. Outputs carry their unit in the
attribute name. ``P_import[MW]`` is the realised flow from the transmission bus into
the LDA (positive: the LDA draws power). The per-element outputs (``Vm[pu]`` per bus,
:data:`BRANCH_OUTPUTS` per line and transformer) are built only when requested.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mosaik_api_v3
import numpy as np
import pandapower as pp
import pandas as pd
from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.agents import PHASE_DISPATCH
from gridlayers.agents.lda_cache import lda_model
from gridlayers.grid import Feeder, FeederResult
from gridlayers.grid.networks import json_network, simbench_feeder
from gridlayers.lda import LDAModel
from gridlayers.scenarios.schema import LimitsConfig
from gridlayers.simulators.base import RunSimulator
from gridlayers.simulators.state import feeder_state, restore_feeder


def _per_branch(
    r: FeederResult, line: pd.Series | np.ndarray, trafo: pd.Series | np.ndarray
) -> dict[str, float]:
    """``{"line:<index>" | "trafo:<index>": value}`` for every branch with a loading.

    ``line``/``trafo`` are per ``net.line``/``net.trafo`` row; branches without a loading
    (out of service, or a power flow that did not converge) are left out.
    """
    out: dict[str, float] = {}
    for kind, loading, values in (
        ("line", r.line_loading_percent, line),
        ("trafo", r.trafo_loading_percent, trafo),
    ):
        valid = ~np.isnan(loading.to_numpy())
        labels = [f"{kind}:{i}" for i in loading.index[valid].tolist()]
        out.update(zip(labels, np.asarray(values)[valid].tolist(), strict=True))
    return out


#: Per-branch outputs (``{"line:<index>" | "trafo:<index>": value}``), with
#: ``output.branch_loading``: loading (% of rating) and flow into the branch at its
#: from bus (a transformer's high-voltage bus).
BRANCH_OUTPUTS: dict[str, Any] = {
    "Branch_loading[%]": lambda r: _per_branch(r, r.line_loading_percent, r.trafo_loading_percent),
    "Branch_P_from[MW]": lambda r: _per_branch(r, r.line_p_from_mw, r.trafo_p_hv_mw),
    "Branch_Q_from[MVAr]": lambda r: _per_branch(r, r.line_q_from_mvar, r.trafo_q_hv_mvar),
}

#: Output attribute -> function reading it from a FeederResult.
OUTPUTS: dict[str, Any] = {
    "P_import[MW]": lambda r: r.p_import_mw,
    "Q_import[MVAr]": lambda r: r.q_import_mvar,
    "P_loss[MW]": lambda r: r.losses_mw,
    "Vm_min[pu]": lambda r: r.vm_min_pu,
    "Vm_max[pu]": lambda r: r.vm_max_pu,
    "loading_max[%]": lambda r: r.max_loading_percent,
    "voltage_violations[-]": lambda r: r.voltage_violations,
    "thermal_violations[-]": lambda r: r.thermal_violations,
    "converged[-]": lambda r: r.converged,
    "retried[-]": lambda r: r.retried,
    "Vm[pu]": lambda r: {str(b): float(v) for b, v in r.vm_pu.dropna().items()},
    **BRANCH_OUTPUTS,
}
#: Per-element outputs: connected only when the scenario stores them (``output``).
DETAIL_OUTPUTS = ("Vm[pu]", *BRANCH_OUTPUTS)
#: The feeder's state after its power flow, for checkpoints
#: (:func:`gridlayers.simulators.state.feeder_state`); not in :data:`OUTPUTS`.
STATE_ATTR = "state"
#: Total DSO with sub-areas: realised export (MW) of each sub-area, ``{area: MW}``
#: (:func:`gridlayers.areas.topology.realised_exchange_mw`); not in :data:`OUTPUTS`.
PCC_ATTR = "PCC_P[MW]"

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {
        "Feeder": {
            "public": True,
            "params": ["lda", "state"],
            "attrs": [*OUTPUTS, "DER_P[MW]", STATE_ATTR, PCC_ATTR],
        },
    },
}


class FeederSim(RunSimulator):
    """Runs the AC power flow of each LDA feeder once per market interval."""

    def __init__(self) -> None:
        super().__init__(META)
        self._feeders: dict[str, tuple[Feeder, LDAModel]] = {}
        self._results: dict[str, FeederResult] = {}
        self._pcc: dict[str, dict[str, tuple[str, int, str]]] = {}  # lda -> area -> branch

    def setup(self) -> None:
        """Set when an LDA without DER steps on its own: the phase its DER would dispatch at."""
        self._offset = PHASE_DISPATCH

    def create(
        self, num: int, model: str, *, lda: str, state: dict[str, Any] | None = None
    ) -> list[CreateResult]:
        """Create the feeder of LDA ``lda`` (``num`` must be 1; the entity id is the LDA name).

        ``state`` (:func:`~gridlayers.simulators.state.feeder_state` output, from a
        checkpoint) sets the power flow's warm start (bus voltages, pu).
        """
        if num != 1 or lda in self._feeders:
            msg = f"create one Feeder per LDA, once (got num={num}, lda={lda!r})"
            raise ValueError(msg)
        m = lda_model(self._run_id, self._scenario, lda)
        self._feeders[lda] = (Feeder(m.net, m.config.limits), m)
        if self._paradigm == "total_dso" and m.config.subareas:
            from gridlayers.areas.topology import pcc_branches

            self._pcc[lda] = pcc_branches(m.net, m.config.subareas)
        if state is not None:
            restore_feeder(self._feeders[lda][0], state)
        return [{"eid": lda, "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int | None:
        """Run the power flow of interval ``time // step`` with actual loads and DER."""
        k = time // self._step
        self_scheduled = False
        for lda, (feeder, m) in self._feeders.items():
            der: dict[str, float] = {}
            for per_aggregator in inputs.get(lda, {}).get("DER_P[MW]", {}).values():
                der.update(per_aggregator)
            self_scheduled |= not m.der_sgen
            self._results[lda] = feeder.run(
                m.actual.load_p_mw.iloc[k], m.actual.load_q_mvar.iloc[k], m.sgen_p_mw(k, der)
            )
        return (k + 1) * self._step + self._offset if self_scheduled else None

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return the requested outputs of the last interval."""
        return {
            eid: {
                attr: (
                    feeder_state(self._feeders[eid][0])
                    if attr == STATE_ATTR
                    else self._pcc_p_mw(eid)
                    if attr == PCC_ATTR
                    else OUTPUTS[attr](self._results[eid])
                )
                for attr in attrs
            }
            for eid, attrs in outputs.items()
            if eid in self._results
        }

    def _pcc_p_mw(self, lda: str) -> dict[str, float]:
        """Realised export (MW) of each sub-area of ``lda`` in the last power flow."""
        from gridlayers.areas.topology import realised_exchange_mw

        r, net = self._results[lda], self._feeders[lda][0].net
        return {
            area: realised_exchange_mw(net, branch, r.line_p_from_mw, r.trafo_p_hv_mw)
            for area, branch in self._pcc.get(lda, {}).items()
        }


STANDALONE_META: Meta = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {
        "Feeder": {
            "public": True,
            "params": ["simbench", "json", "sgen_scaling", "load_scaling"],
            "attrs": [a for a in OUTPUTS if a not in DETAIL_OUTPUTS],
        },
        "Bus": {
            "public": False,
            "params": [],
            "attrs": ["P_gen[MW]", "P_load[MW]", "Q_load[MVar]", "Vm[pu]"],
        },
        "Line": {"public": False, "params": [], "attrs": ["loading[%]"]},
        "Trafo": {"public": False, "params": [], "attrs": ["loading[%]"]},
    },
}
#: Bus inputs, each written to a helper load or static generator at every bus.
_BUS_INPUTS = ("P_gen[MW]", "P_load[MW]", "Q_load[MVar]")


@dataclass
class _Standalone:
    """One standalone feeder: its solver, its year profiles and its per-bus helpers."""

    feeder: Feeder
    profiles: dict[tuple[str, str], np.ndarray]
    bus_row: dict[int, int]
    labels: dict[str, list[str]]  # child model -> child ids after the feeder's, net row order
    result: FeederResult | None = None
    #: The last step's child outputs: ``"Bus-<i>"`` -> Vm (pu), ``"Line-<i>"`` -> loading (%).
    children: dict[str, float] | None = None


class FeederSimulator(mosaik_api_v3.Simulator):
    """A SimBench (or pandapower JSON) feeder as a standalone mosaik simulator.

    Use it like mosaik-pandapower-2's ``Grid``::

        SIM_CONFIG = {"Feeder": {"python": "gridlayers.simulators.feeder:FeederSimulator"}}
        sim = world.start("Feeder", step_size=900, start="2016-06-01 00:00:00")
        feeder = sim.Feeder(simbench="1-MV-rural--0-sw")

    Simulator parameters: ``step_size`` (mosaik ticks between power flows; ``None``
    makes it event-based, stepping when inputs arrive), ``start`` (the time of tick 0,
    ISO format, default 2016-01-01 00:00, the SimBench profile year) and the usual
    ``time_resolution`` (seconds per tick).

    Model ``Feeder``: ``simbench=CODE`` (network and its real 15-minute profiles, read
    from gridlayers' SimBench cache) or ``json=PATH`` (a pandapower JSON network, held
    at its stored set-points); ``sgen_scaling``/``load_scaling`` multiply the profiles.
    Its outputs are the feeder-level results of :data:`OUTPUTS` (interface flow,
    losses, voltage extremes, violations, convergence). Children: ``Bus-<index>``
    (inputs ``P_gen[MW]``, ``P_load[MW]``, ``Q_load[MVar]`` added on top of the
    profiles at that bus, summed over all connections; output ``Vm[pu]``), and
    ``Line-<index>``/``Trafo-<index>`` (output ``loading[%]``). With nothing
    connected, the feeder plays its own profiles. The profile value of a step is
    that of the 15-minute period containing it (held, wrapping around the year).
    """

    def __init__(self) -> None:
        super().__init__(STANDALONE_META)
        self._feeders: dict[str, _Standalone] = {}

    def init(
        self,
        sid: str,
        time_resolution: float = 1.0,
        step_size: int | None = 900,
        start: str = "2016-01-01 00:00:00",
    ) -> Meta:
        """Take the step size (ticks) and the time of tick 0."""
        self._resolution = float(time_resolution)
        self._step_size = step_size
        if not step_size:
            self.meta["type"] = "event-based"
        begin = pd.Timestamp(start)
        self._offset_s = (begin - pd.Timestamp(year=begin.year, month=1, day=1)).total_seconds()
        return self.meta

    def create(self, num: int, model: str, **params: Any) -> list[CreateResult]:
        """Create ``num`` feeders (children: buses, lines, transformers)."""
        if model != "Feeder":
            msg = f"only Feeder entities can be created, not {model!r}"
            raise ValueError(msg)
        return [self._create(f"Feeder-{len(self._feeders)}", **params) for _ in range(num)]

    def _create(
        self,
        eid: str,
        simbench: str | None = None,
        json: str | None = None,
        sgen_scaling: float = 1.0,
        load_scaling: float = 1.0,
    ) -> CreateResult:
        if (simbench is None) == (json is None):
            raise ValueError("give exactly one of simbench=CODE or json=PATH")
        if simbench is not None:
            net, year = simbench_feeder(simbench)
            profiles = {key: frame.to_numpy() for key, frame in year.items()}
        else:
            net = json_network(Path(json))
            profiles = {
                ("load", "p_mw"): net.load.p_mw.to_numpy()[None, :],
                ("load", "q_mvar"): net.load.q_mvar.to_numpy()[None, :],
                ("sgen", "p_mw"): net.sgen.p_mw.to_numpy()[None, :],
            }
        profiles[("sgen", "p_mw")] = profiles[("sgen", "p_mw")] * sgen_scaling
        for col in ("p_mw", "q_mvar"):
            profiles[("load", col)] = profiles[("load", col)] * load_scaling
        buses = net.bus.index.to_numpy()
        pp.create_loads(net, buses, 0.0, q_mvar=0.0, name="mosaik input")
        pp.create_sgens(net, buses, 0.0, name="mosaik input")
        labels = {
            model: [f"{model}-{i}" for i in net[table].index]
            for table, model in (("bus", "Bus"), ("line", "Line"), ("trafo", "Trafo"))
        }
        self._feeders[eid] = _Standalone(
            Feeder(net, LimitsConfig()), profiles, {int(b): i for i, b in enumerate(buses)}, labels
        )
        children = [
            {"eid": f"{eid}.{label}", "type": model, "rel": []}
            for model, names in labels.items()
            for label in names
        ]
        return {"eid": eid, "type": "Feeder", "children": children, "rel": []}

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int | None:
        """Solve every feeder for the profile period containing ``time``, plus bus inputs."""
        seconds = self._offset_s + time * self._resolution
        extra = {
            eid: {key: np.zeros(len(s.bus_row)) for key in _BUS_INPUTS}
            for eid, s in self._feeders.items()
        }
        for child, values in inputs.items():
            eid, bus = child.split(".Bus-")
            row = self._feeders[eid].bus_row[int(bus)]
            for attr, by_source in values.items():
                extra[eid][attr][row] += sum(by_source.values())
        for eid, s in self._feeders.items():
            rows = len(s.profiles[("load", "p_mw")])
            k = int(seconds // 900) % rows
            e = extra[eid]
            s.result = r = s.feeder.run(
                np.concatenate([s.profiles[("load", "p_mw")][k], e["P_load[MW]"]]),
                np.concatenate([s.profiles[("load", "q_mvar")][k], e["Q_load[MVar]"]]),
                np.concatenate([s.profiles[("sgen", "p_mw")][k], e["P_gen[MW]"]]),
            )
            s.children = {}
            for model, series in (
                ("Bus", r.vm_pu),
                ("Line", r.line_loading_percent),
                ("Trafo", r.trafo_loading_percent),
            ):
                s.children.update(zip(s.labels[model], series.tolist(), strict=True))
        return time + self._step_size if self._step_size else None

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return feeder-level results and per-bus voltages / per-branch loadings."""
        data: OutputData = {}
        for eid, attrs in outputs.items():
            feeder_eid, _, child = eid.partition(".")
            result = self._feeders[feeder_eid].result
            if result is None:
                continue
            if not child:
                data[eid] = {attr: OUTPUTS[attr](result) for attr in attrs}
                continue
            data[eid] = {attrs[0]: self._feeders[feeder_eid].children[child]} if attrs else {}
        return data
