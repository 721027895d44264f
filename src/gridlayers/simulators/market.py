"""mosaik adapter for the TSO market clearing: one ``TSO`` entity, event-based.

What the TSO sees depends on the paradigm (DESIGN.md):

``passive``      each LDA's realised import (``P_import[MW]`` from its feeder) as load
``minimal_dso``  each DSO's firm forecast exchange (``bid``) plus every aggregator's
                 portfolio offer (``portfolio``), all at the LDA's interface bus
``total_dso``    one virtual resource per interface (``bid`` from each DSO)
``total_tso``    every feeder's LinDistFlow model and every DER offer at its own bus
                 (``tso_inputs`` from each DSO feed the embedded feeder models)

The entity is created with an explicit map from source full ids to what they are, so
no id is parsed. Awards go out as one dict keyed by participant name; each receiver
picks its own entry.
"""

from __future__ import annotations

import sys
import time as wallclock
from typing import Any

import mosaik_api_v3
import pandas as pd
from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.market import ClearingResult, TransmissionMarket
from gridlayers.scenarios.schema import Scenario
from gridlayers.simulators.base import RunSimulator
from gridlayers.simulators.codec import curve_values, decode_curve

OUT_ATTRS = [
    "cost[USD/h]",
    "generation_cost[USD/h]",
    "unserved[MW]",
    "LMP[USD/MWh]",
    "solve_time[s]",
    "tso_variables[-]",
    "tso_constraints[-]",
    "status[-]",
    "awards",
    "interface_LMP",
    "interchange[MW]",
    "tso_setpoints",
    "interface_values[-]",
]
IN_ATTRS = ["P_import[MW]", "bid", "portfolio", "tso_inputs"]

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
    """Clears the transmission market (DC-OPF) once per interval; model built once."""

    def __init__(self) -> None:
        super().__init__(META)
        self._out: dict[str, Any] = {}
        self._extensions: dict[str, Any] = {}
        self._created = False
        self._imports: dict[str, float] = {}

    def setup(self) -> None:
        """Build the transmission net and the bulk load profile (once per run)."""
        self._sc = Scenario.model_validate(self._scenario)
        self._net = transmission_network(self._sc.transmission)
        self._load_base = self._net.load.p_mw * self._net.load.scaling
        self._scale = load_scale(self._sc.transmission.load_profile, self._sc.horizon)

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
        participants: dict[str, int] = {}
        if self._paradigm in ("minimal_dso", "total_dso"):
            participants.update({dso_participant(lda): bus for lda, bus in interfaces.items()})
        if self._paradigm == "minimal_dso":
            for kind, name in self._sources.values():
                if kind == "aggregator":
                    lda, agg = name.split(".", 1)
                    participants[aggregator_participant(lda, agg)] = interfaces[lda]
        if self._paradigm == "total_tso":
            from gridlayers.agents.dso_setup import build_feeder_views

            self._extensions = build_feeder_views(self._run_id, self._scenario, interfaces)
        self._market = TransmissionMarket(
            self._net,
            participants=participants,
            extensions=list(self._extensions.values()),
            cost_segments=self._sc.transmission.cost_segments,
        )
        return [{"eid": "tso", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> None:
        """Clear interval ``time // step`` with what the paradigm lets the TSO see."""
        k = time // self._step
        extra, bids, values_in = {}, {}, 0
        for attr, by_source in inputs.get("tso", {}).items():
            for source, value in by_source.items():
                kind, name = self._sources[source]
                if attr == "P_import[MW]":
                    bus = self._interfaces[name]
                    extra[bus] = extra.get(bus, 0.0) + float(value)
                    self._imports[name] = float(value)
                elif attr == "bid":
                    bids[dso_participant(name)] = decode_curve(value)
                    values_in += curve_values(value)
                elif attr == "portfolio":
                    lda, agg = name.split(".", 1)
                    bids[aggregator_participant(lda, agg)] = decode_curve(value)
                    values_in += curve_values(value)
                elif attr == "tso_inputs":
                    values_in += self._extensions[name].set_interval_from_message(value)
        start = wallclock.perf_counter()
        result = self._market.clear(
            load_p_mw=self._load_base * self._scale[k], extra_load_mw=extra, bids=bids
        )
        self._publish(result, wallclock.perf_counter() - start, values_in)

    def _publish(self, r: ClearingResult, seconds: float, values_in: int) -> None:
        lmp = r.lmp_usd_per_mwh
        interchange = {lda: -self._imports.get(lda, 0.0) for lda in self._interfaces}
        for participant, p_mw in r.awards_mw.items():
            interchange[participant.split(":", 1)[1].split(".", 1)[0]] += p_mw
        setpoints = {}
        for lda, ext in self._extensions.items():
            interchange[lda] = ext.interface_p_mw()
            setpoints[lda] = ext.setpoints_mw()
        values_out = len(r.awards_mw) + len(self._interfaces) + sum(map(len, setpoints.values()))
        self._out = {
            "cost[USD/h]": r.cost_usd_per_h,
            "generation_cost[USD/h]": r.generation_cost_usd_per_h,
            "unserved[MW]": float(r.unserved_mw.sum()),
            "LMP[USD/MWh]": {str(b): float(v) for b, v in lmp.items() if pd.notna(v)},
            "solve_time[s]": seconds,
            "tso_variables[-]": self._market.n_variables,
            "tso_constraints[-]": self._market.n_constraints,
            "status[-]": r.status,
            "awards": dict(r.awards_mw),
            "interface_LMP": {lda: float(lmp.at[bus]) for lda, bus in self._interfaces.items()},
            "interchange[MW]": interchange,
            "tso_setpoints": setpoints,
            "interface_values[-]": values_in + (values_out if self._paradigm != "passive" else 0),
        }

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return the last clearing's outputs."""
        return {
            eid: {a: self._out[a] for a in attrs if a in self._out}
            for eid, attrs in outputs.items()
        }


def main() -> None:
    """Start the simulator as a separate process (``cmd``/``connect`` starters)."""
    mosaik_api_v3.start_simulation(MarketSim(), "gridlayers TSO market simulator")


if __name__ == "__main__":
    sys.exit(main())
