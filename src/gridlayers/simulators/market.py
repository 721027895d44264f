"""mosaik adapter for the TSO market clearing: one ``TSO`` entity.

Inputs: ``P_import[MW]`` from each LDA's feeder; it enters the clearing as load at the
LDA's interface bus. The entity is created with an explicit map from the source
entity's full id to the interface bus, so no id is ever parsed.
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

META: Meta = {
    "api_version": "3.0",
    "type": "time-based",
    "models": {
        "TSO": {
            "public": True,
            "params": ["interfaces"],
            "attrs": [
                "P_import[MW]",
                "cost[USD/h]",
                "generation_cost[USD/h]",
                "unserved[MW]",
                "LMP[USD/MWh]",
                "solve_time[s]",
                "tso_variables[-]",
                "tso_constraints[-]",
                "status[-]",
            ],
        },
    },
}


class MarketSim(mosaik_api_v3.Simulator):
    """Clears the transmission market (DC-OPF) once per interval, model built once."""

    def __init__(self) -> None:
        super().__init__(META)
        self._market: TransmissionMarket | None = None
        self._interfaces: dict[str, int] = {}
        self._result: ClearingResult | None = None
        self._load_base: pd.Series | None = None
        self._scale = None
        self._step_s = 0
        self._seconds = 0.0

    def init(self, sid: str, time_resolution: float = 1.0, *, scenario: dict[str, Any]) -> Meta:
        """Take the scenario (as a JSON-ready dict) that defines the transmission system."""
        sc = Scenario.model_validate(scenario)
        net = transmission_network(sc.transmission)
        self._market = TransmissionMarket(net)
        self._load_base = net.load.p_mw * net.load.scaling
        self._scale = load_scale(sc.transmission.load_profile, sc.horizon)
        self._step_s = round(sc.horizon.interval_s / time_resolution)
        return self.meta

    def create(self, num: int, model: str, *, interfaces: dict[str, int]) -> list[CreateResult]:
        """Create the TSO entity; ``interfaces`` maps source full ids to interface buses."""
        if num != 1 or self._interfaces:
            msg = "create exactly one TSO entity"
            raise ValueError(msg)
        self._interfaces = dict(interfaces)
        return [{"eid": "tso", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int:
        """Clear interval ``time // step`` with the LDAs' flows as load at their interfaces."""
        k = time // self._step_s
        extra: dict[int, float] = {}
        for source, p_mw in inputs.get("tso", {}).get("P_import[MW]", {}).items():
            bus = self._interfaces[source]
            extra[bus] = extra.get(bus, 0.0) + float(p_mw)
        start = wallclock.perf_counter()
        self._result = self._market.clear(
            load_p_mw=self._load_base * self._scale[k], extra_load_mw=extra
        )
        self._seconds = wallclock.perf_counter() - start
        return time + self._step_s

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return the last clearing's cost, prices and problem size."""
        r = self._result
        values = {
            "cost[USD/h]": r.cost_usd_per_h,
            "generation_cost[USD/h]": r.generation_cost_usd_per_h,
            "unserved[MW]": float(r.unserved_mw.sum()),
            "LMP[USD/MWh]": {str(b): float(v) for b, v in r.lmp_usd_per_mwh.items()},
            "solve_time[s]": self._seconds,
            "tso_variables[-]": self._market.n_variables,
            "tso_constraints[-]": self._market.n_constraints,
            "status[-]": r.status,
        }
        return {eid: {a: values[a] for a in attrs} for eid, attrs in outputs.items()}


def main() -> None:
    """Start the simulator as a separate process (``cmd``/``connect`` starters)."""
    mosaik_api_v3.start_simulation(MarketSim(), "gridlayers TSO market simulator")


if __name__ == "__main__":
    sys.exit(main())
