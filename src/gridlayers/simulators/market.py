"""mosaik adapter for the TSO market clearing: one ``TSO`` entity, event-based.

In the forward stage (phase ``t0+0``, forecasts) what the TSO sees depends on the
paradigm (DESIGN.md):

``passive``      each LDA's forecast import with self-scheduled DER, as a fixed ``bid``
``minimal_dso``  each DSO's firm forecast exchange (``bid``) plus every aggregator's
                 portfolio offer (``portfolio``), all at the LDA's interface bus
``total_dso``    one virtual resource per interface (``bid`` from each DSO)
``total_tso``    every feeder's LinDistFlow model and every DER offer at its own bus
                 (``tso_inputs`` from each DSO feed the embedded feeder models)

In the real-time stage (phase ``t0+2``) it sees every LDA's realised import
(``P_import[MW]`` from the feeders' AC power flow) under every paradigm.

The entity is created with an explicit map from source full ids to what they are, so
no id is parsed. Awards go out as one dict keyed by participant name; each receiver
picks its own entry.
"""

from __future__ import annotations

import sys
import time as wallclock
from typing import Any

import mosaik_api_v3
import numpy as np
import pandas as pd
from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.agents import PHASE_DISPATCH, PHASE_OFFER
from gridlayers.domain import BidCurve
from gridlayers.grid.forecast import bulk_load_forecast
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.market import ClearingResult, TransmissionMarket
from gridlayers.market.admm_rounds import TsoRounds
from gridlayers.market.settlement import Payments, StageQuantities, two_settlement
from gridlayers.scenarios.schema import Scenario
from gridlayers.simulators.base import RunSimulator
from gridlayers.simulators.codec import curve_values, decode_curve

#: Total TSO re-clears when re-linearising a feeder model at the cleared point moves a
#: voltage by more than this (pu).
RELINEARISE_TOL_PU = 1e-5
#: Outputs of the forward clearing (phase ``t0+0``), read by the DSO and aggregator agents.
FORWARD_ATTRS = ["awards", "interface_LMP", "tso_setpoints"]
#: The interval's record for the collector, published after the real-time stage (``t0+2``).
RECORD_ATTR = "record"
#: Iterative: the TSO's price and schedule per LDA for the next ADMM round (weak link).
ADMM_PRICE_ATTR = "admm_price"
OUT_ATTRS = [*FORWARD_ATTRS, RECORD_ATTR, ADMM_PRICE_ATTR]
IN_ATTRS = ["P_import[MW]", "bid", "portfolio", "tso_inputs", "admm_proposal"]

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {
        "TSO": {"public": True, "params": ["interfaces", "sources"], "attrs": IN_ATTRS + OUT_ATTRS}
    },
}


def dso_participant(lda: str) -> str:
    """Market participant name of an LDA's DSO."""
    return f"dso:{lda}"


def aggregator_participant(lda: str, aggregator: str) -> str:
    """Market participant name of an aggregator bidding straight to the TSO."""
    return f"agg:{lda}.{aggregator}"


class MarketSim(RunSimulator):
    """Clears every interval twice: forward on forecasts, real time on what happened.

    Phase ``t0+0``: the forward clearing on the participants' offers (or, under Total
    TSO, the embedded feeder models) and the *forecast* bulk load; awards, interface LMPs
    and Total-TSO set-points go out. Phase ``t0+2``: the feeders' realised imports arrive
    and the real-time stage re-dispatches the transmission generators on the realised
    interface flows and the *actual* bulk load (a full DC-OPF, no ramp limits between the
    stages); the interval's two-settlement record (:mod:`gridlayers.market.settlement`)
    goes to the collector. Both models are built once and updated in place.
    """

    def __init__(self) -> None:
        super().__init__(META)
        self._out: dict[str, Any] = {}
        self._extensions: dict[str, Any] = {}
        self._created = False
        self._forward: dict[str, Any] | None = None

    def setup(self) -> None:
        """Build the transmission net and the actual and forecast bulk load (once per run)."""
        self._sc = Scenario.model_validate(self._scenario)
        self._net = transmission_network(self._sc.transmission)
        base = (self._net.load.p_mw * self._net.load.scaling).to_numpy(float)
        scale = load_scale(self._sc.transmission.load_profile, self._sc.horizon)
        self._load_index = self._net.load.index
        self._bulk_actual = scale[:, None] * base[None, :]
        self._bulk_forecast = bulk_load_forecast(
            self._bulk_actual, self._sc.forecast.bulk_load_error_std, self._sc.seed
        )

    def create(
        self, num: int, model: str, *, interfaces: dict[str, int], sources: dict[str, list[str]]
    ) -> list[CreateResult]:
        """Create the TSO: ``interfaces`` LDA -> bus; ``sources`` full id -> [kind, name]."""
        if num != 1 or self._created:
            msg = "create exactly one TSO entity"
            raise ValueError(msg)
        self._created = True
        self._interfaces = dict(interfaces)
        self._sources = {full_id: (kind, name) for full_id, (kind, name) in sources.items()}
        self._participant_lda: dict[str, str] = {}
        if self._paradigm != "total_tso":
            self._participant_lda.update({dso_participant(lda): lda for lda in interfaces})
        if self._paradigm == "minimal_dso":
            for kind, name in self._sources.values():
                if kind == "aggregator":
                    lda, agg = name.split(".", 1)
                    self._participant_lda[aggregator_participant(lda, agg)] = lda
        if self._paradigm == "total_tso":
            from gridlayers.agents.dso_setup import build_feeder_views

            self._extensions = build_feeder_views(self._run_id, self._scenario, interfaces)
        segments = self._sc.transmission.cost_segments
        self._market = TransmissionMarket(
            self._net,
            participants={p: interfaces[lda] for p, lda in self._participant_lda.items()},
            extensions=list(self._extensions.values()),
            cost_segments=segments,
        )
        self._real_time_market = TransmissionMarket(self._net, cost_segments=segments)
        if self._paradigm == "iterative":
            self._rounds = TsoRounds(self._net, interfaces, self._sc.coordination)
        fwd, rt = self._market.network, self._real_time_market.network
        if fwd.n_bus != rt.n_bus or not np.array_equal(fwd.gen_bus, rt.gen_bus):
            msg = "forward and real-time markets number the network differently"
            raise RuntimeError(msg)  # the settlement prices both stages on one numbering
        lookup = self._real_time_market.network.bus_lookup
        self._interface_node = {lda: int(lookup[bus]) for lda, bus in interfaces.items()}
        return [{"eid": "tso", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> None:
        """Forward clearing at phase 0, real-time stage at the dispatch phase."""
        k, phase = divmod(time, self._step)
        got = inputs.get("tso", {})
        if phase == PHASE_DISPATCH:
            self._clear_real_time(k, got)
        elif phase == PHASE_OFFER and self._paradigm == "iterative":
            self._iterate(k, got)
        elif phase == PHASE_OFFER:
            self._clear_forward(k, got)
        else:
            msg = f"interval {k}: the TSO has no phase {phase} (inputs {sorted(got)})"
            raise RuntimeError(msg)

    # ------------------------------------------------------------------ forward
    def _iterate(self, k: int, got: dict[str, Any]) -> None:
        """Run one ADMM round (iterative); then send the next price or clear the forward stage."""
        proposals = {self._sources[s][1]: float(v) for s, v in got["admm_proposal"].items()}
        load = pd.Series(self._bulk_forecast[k], index=self._load_index)
        step = self._rounds.round(k, load, proposals)
        if not step.done:
            self._out = {ADMM_PRICE_ATTR: step.prices}
            return
        bids = {dso_participant(lda): BidCurve.fixed(p) for lda, p in step.schedule_mw.items()}
        self._clear_forward(k, {}, bids, step)
        self._rounds.cleared(self._out["interface_LMP"], step.schedule_mw)

    def _clear_forward(
        self,
        k: int,
        got: dict[str, Any],
        bids: dict[str, Any] | None = None,
        rounds: Any = None,
    ) -> None:
        bids, values_in = dict(bids or {}), 0
        for attr, by_source in got.items():
            for source, value in by_source.items():
                kind, name = self._sources[source]
                if attr == "bid":
                    bids[dso_participant(name)] = decode_curve(value)
                    values_in += curve_values(value)
                elif attr == "portfolio":
                    lda, agg = name.split(".", 1)
                    bids[aggregator_participant(lda, agg)] = decode_curve(value)
                    values_in += curve_values(value)
                elif attr == "tso_inputs":
                    values_in += self._extensions[name].set_interval_from_message(value)
        load = pd.Series(self._bulk_forecast[k], index=self._load_index)
        start = wallclock.perf_counter()
        result = self._market.clear(load_p_mw=load, bids=bids)
        events = _stage_events("forward", self._market.last_faults)
        moved = [view.relinearise_at_solution() for view in self._extensions.values()]
        if any(m > RELINEARISE_TOL_PU for m in moved):  # losses linearised at the cleared point
            result = self._market.clear(load_p_mw=load, bids=bids)
            events += _stage_events("forward re-clear", self._market.last_faults)
        seconds = wallclock.perf_counter() - start
        injection = dict.fromkeys(self._interfaces, 0.0)
        for participant, p_mw in result.awards_mw.items():
            injection[self._participant_lda[participant]] += p_mw
        setpoints = {}
        for lda, ext in self._extensions.items():
            injection[lda] = ext.interface_p_mw()
            setpoints[lda] = ext.setpoints_mw()
        lmp = result.lmp_usd_per_mwh
        values_out = len(result.awards_mw) + len(self._interfaces)
        values_out += sum(map(len, setpoints.values()))
        if rounds is not None:  # iterative: every round's proposals, prices and solves
            values_in += rounds.values_exchanged
            events += rounds.events
            seconds += max(r["seconds"] for r in rounds.record.values())
        self._forward = {
            "result": result,
            "injection": injection,
            "seconds": seconds,
            "values": values_in + values_out,
            "slack": {lda: view.slack_used() for lda, view in self._extensions.items()},
            "events": events,
            "coordination": None if rounds is None else rounds.record,
        }
        self._out = {
            "awards": dict(result.awards_mw),
            "interface_LMP": {lda: float(lmp.at[bus]) for lda, bus in self._interfaces.items()},
            "tso_setpoints": setpoints,
        }

    # ---------------------------------------------------------------- real time
    def _clear_real_time(self, k: int, got: dict[str, Any]) -> None:
        if self._forward is None:
            msg = f"interval {k}: real-time stage without a forward clearing"
            raise RuntimeError(msg)
        imports: dict[str, float] = {}
        for source, value in got.get("P_import[MW]", {}).items():
            lda = self._sources[source][1]
            imports[lda] = imports.get(lda, 0.0) + float(value)
        missing = sorted(set(self._interfaces) - set(imports))
        if missing:
            msg = f"interval {k}: no realised import from the feeders of {missing}"
            raise RuntimeError(msg)
        extra: dict[int, float] = {}
        for lda, p_mw in imports.items():
            extra[self._interfaces[lda]] = extra.get(self._interfaces[lda], 0.0) + p_mw
        load = pd.Series(self._bulk_actual[k], index=self._load_index)
        start = wallclock.perf_counter()
        rt = self._real_time_market.clear(load_p_mw=load, extra_load_mw=extra)
        fwd_events = self._forward["events"]
        self._forward["events"] = fwd_events + _stage_events(
            "real time", self._real_time_market.last_faults
        )
        seconds = wallclock.perf_counter() - start
        fwd, f = self._forward, self._forward["result"]
        realised = {lda: -p for lda, p in imports.items()}
        pay_f, pay_r = two_settlement(
            self._real_time_market.network,
            (f.node_lmp_usd_per_mwh, _quantities(f, fwd["injection"])),
            (rt.node_lmp_usd_per_mwh, _quantities(rt, realised)),
            self._interface_node,
        )
        self._out = {RECORD_ATTR: self._record(fwd, rt, seconds, realised, pay_f, pay_r)}
        self._forward = None

    def _record(
        self,
        fwd: dict[str, Any],
        rt: ClearingResult,
        seconds: float,
        realised: dict[str, float],
        pay_f: Payments,
        pay_r: Payments,
    ) -> dict[str, Any]:
        """Everything the collector stores for the interval (JSON-ready; rates per hour)."""
        f = fwd["result"]
        lmp_f, lmp_r = f.lmp_usd_per_mwh, rt.lmp_usd_per_mwh
        unserved_rt = float(rt.unserved_mw.sum())
        total = pay_f.plus(pay_r)
        return {
            "forward": {
                "cost_usd_per_h": f.cost_usd_per_h,
                "generation_cost_usd_per_h": f.generation_cost_usd_per_h,
                "unserved_mw": float(f.unserved_mw.sum()),
                "solve_seconds": fwd["seconds"],
                "status": f.status,
            },
            "real_time": {
                "generation_cost_usd_per_h": rt.generation_cost_usd_per_h,
                "generation_mw": float(rt.unit_p_mw.sum()),
                "bulk_demand_mw": float(rt.node_bulk_withdrawal_mw.sum()) + unserved_rt,
                "unserved_mw": unserved_rt,
                "solve_seconds": seconds,
                "status": rt.status,
            },
            "payments_usd_per_h": {
                "generators": total.generators,
                "bulk_loads": total.bulk_loads,
                "congestion_rent": total.congestion_rent,
            },
            "lmp": {
                str(b): [float(lmp_f.at[b]), float(lmp_r.at[b])]
                for b in lmp_f.index
                if pd.notna(lmp_f.at[b])
            },
            "interface": {
                lda: {
                    "cleared_mw": fwd["injection"][lda],
                    "realised_mw": realised[lda],
                    "lmp_forward": float(lmp_f.at[bus]),
                    "lmp_real_time": float(lmp_r.at[bus]),
                    "forward_payment_usd_per_h": pay_f.ldas.get(lda, 0.0),
                    "deviation_payment_usd_per_h": pay_r.ldas.get(lda, 0.0),
                }
                for lda, bus in self._interfaces.items()
            },
            "participants": {
                p: {"lda": self._participant_lda[p], "cleared_mw": float(x)}
                for p, x in f.awards_mw.items()
            },
            "slack": fwd["slack"],
            "tso_variables": self._market.n_variables,
            "tso_constraints": self._market.n_constraints,
            "interface_values": fwd["values"],
            "events": fwd["events"],  # numerical faults survived (kind, message)
            **({"coordination": fwd["coordination"]} if fwd["coordination"] else {}),
        }

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return the outputs of the last step (forward results or the interval record)."""
        return {
            eid: {a: self._out[a] for a in attrs if a in self._out}
            for eid, attrs in outputs.items()
        }


def _stage_events(stage: str, faults: list[dict[str, str]]) -> list[dict[str, str]]:
    """Return the market's numerical faults of one clear as ``event`` rows (kind, message)."""
    return [{"kind": f["kind"], "message": f"{stage}: {f['message']}"} for f in faults]


def _quantities(result: ClearingResult, lda_injection_mw: dict[str, float]) -> StageQuantities:
    """Return a stage's dispatched quantities (MW) for settlement."""
    return StageQuantities(
        result.unit_p_mw,
        result.node_bulk_withdrawal_mw,
        dict(lda_injection_mw),
        result.branch_flow_mw,
    )


def main() -> None:
    """Start the simulator as a separate process (``cmd``/``connect`` starters)."""
    mosaik_api_v3.start_simulation(MarketSim(), "gridlayers TSO market simulator")


if __name__ == "__main__":
    sys.exit(main())
