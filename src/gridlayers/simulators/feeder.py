"""mosaik adapter for the physics layer: one ``Feeder`` entity per LDA.

Event-based: a feeder steps when its aggregators' realised DER injections arrive
(``DER_P[MW]``, a ``{device id: MW}`` dict per aggregator); an LDA without DER steps
on its own at the dispatch phase of every interval. Outputs carry their unit in the
attribute name. ``P_import[MW]`` is the realised flow from the transmission bus into
the LDA (positive: the LDA draws power).
"""

from __future__ import annotations

import sys
from typing import Any

import mosaik_api_v3
from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.agents import PHASE_DISPATCH
from gridlayers.agents.lda_cache import lda_model
from gridlayers.grid import Feeder, FeederResult
from gridlayers.lda import LDAModel
from gridlayers.simulators.base import RunSimulator

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
}

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {
        "Feeder": {"public": True, "params": ["lda"], "attrs": [*OUTPUTS, "DER_P[MW]"]},
    },
}


class FeederSim(RunSimulator):
    """Runs the AC power flow of each LDA feeder once per market interval."""

    def __init__(self) -> None:
        super().__init__(META)
        self._feeders: dict[str, tuple[Feeder, LDAModel]] = {}
        self._results: dict[str, FeederResult] = {}

    def setup(self) -> None:
        """Set when an LDA without DER steps on its own: the phase its DER would dispatch at."""
        self._offset = PHASE_DISPATCH

    def create(self, num: int, model: str, *, lda: str) -> list[CreateResult]:
        """Create the feeder of LDA ``lda`` (``num`` must be 1; the entity id is the LDA name)."""
        if num != 1 or lda in self._feeders:
            msg = f"create one Feeder per LDA, once (got num={num}, lda={lda!r})"
            raise ValueError(msg)
        m = lda_model(self._run_id, self._scenario, lda)
        self._feeders[lda] = (Feeder(m.net, m.config.limits), m)
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
            eid: {attr: OUTPUTS[attr](self._results[eid]) for attr in attrs}
            for eid, attrs in outputs.items()
            if eid in self._results
        }


def main() -> None:
    """Start the simulator as a separate process (``cmd``/``connect`` starters)."""
    mosaik_api_v3.start_simulation(FeederSim(), "gridlayers feeder simulator")


if __name__ == "__main__":
    sys.exit(main())
