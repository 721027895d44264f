"""mosaik adapter for the physics layer: one ``Feeder`` entity per LDA.

Outputs carry their unit in the attribute name. ``P_import[MW]`` is the realised
flow from the transmission bus into the LDA (positive: the LDA draws power).
"""

from __future__ import annotations

import sys
from typing import Any

import mosaik_api_v3
from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.grid import Feeder, FeederProfiles, FeederResult, build_lda_physics
from gridlayers.scenarios.schema import Scenario

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
    "type": "time-based",
    "models": {
        "Feeder": {"public": True, "params": ["lda"], "attrs": list(OUTPUTS)},
    },
}


class FeederSim(mosaik_api_v3.Simulator):
    """Runs the AC power flow of each LDA feeder once per market interval."""

    def __init__(self) -> None:
        super().__init__(META)
        self._feeders: dict[str, tuple[Feeder, FeederProfiles]] = {}
        self._results: dict[str, FeederResult] = {}
        self._scenario: Scenario | None = None
        self._step_s = 0

    def init(self, sid: str, time_resolution: float = 1.0, *, scenario: dict[str, Any]) -> Meta:
        """Take the scenario (as a JSON-ready dict) that defines the feeders."""
        self._scenario = Scenario.model_validate(scenario)
        self._step_s = round(self._scenario.horizon.interval_s / time_resolution)
        return self.meta

    def create(self, num: int, model: str, *, lda: str) -> list[CreateResult]:
        """Create the feeder of LDA ``lda`` (``num`` must be 1; the entity id is the LDA name)."""
        if num != 1 or lda in self._feeders:
            msg = f"create one Feeder per LDA, once (got num={num}, lda={lda!r})"
            raise ValueError(msg)
        self._feeders[lda] = build_lda_physics(self._scenario, lda)
        return [{"eid": lda, "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int:
        """Run the power flow of interval ``time // step`` with actual loads and generation."""
        k = time // self._step_s
        for lda, (feeder, prof) in self._feeders.items():
            self._results[lda] = feeder.run(
                prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k]
            )
        return time + self._step_s

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return the requested outputs of the last interval."""
        return {
            eid: {attr: OUTPUTS[attr](self._results[eid]) for attr in attrs}
            for eid, attrs in outputs.items()
        }


def main() -> None:
    """Start the simulator as a separate process (``cmd``/``connect`` starters)."""
    mosaik_api_v3.start_simulation(FeederSim(), "gridlayers feeder simulator")


if __name__ == "__main__":
    sys.exit(main())
