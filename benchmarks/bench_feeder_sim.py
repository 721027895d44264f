"""Standalone feeder simulators through mosaik: gridlayers' FeederSimulator vs mosaik-pandapower-2.

One command: ``python benchmarks/bench_feeder_sim.py`` (needs ``pip install
mosaik-pandapower-2``, a benchmark-only dependency).

For each feeder, both simulators play the SimBench profiles of one day (96 steps of 15
minutes) in their own mosaik World, and a sink reads, every step, the voltage of every
bus and the interface flow (the same values from both). Prints wall ms per step of
``world.run`` for each (set-up excluded and printed apart) and the ratio
mosaik-pandapower-2 / gridlayers (higher is better for gridlayers). A last column
checks that both computed the same physics: the largest bus-voltage difference.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import mosaik
import mosaik_api_v3
import numpy as np
from loguru import logger

logger.remove()
logger.add(sys.stderr, level="WARNING")

CODES = ("1-MV-rural--0-sw", "1-LV-rural1--0-sw")
STEPS = 96
STEP_S = 900
START = "2016-01-01 00:00:00"  # mosaik-pandapower-2 plays profile row tick // 900

SINK_META = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {"Sink": {"public": True, "any_inputs": True, "params": [], "attrs": []}},
}


SINKS: list[Sink] = []  # every sink created in this process, the newest last


class Sink(mosaik_api_v3.Simulator):
    """Keeps every value it receives, per step."""

    def __init__(self) -> None:
        super().__init__(SINK_META)
        self.rows: list[dict[str, Any]] = []
        SINKS.append(self)

    def create(self, num: int, model: str, **_: Any) -> list[dict[str, Any]]:
        return [{"eid": "sink", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> None:
        self.rows.append(inputs["sink"])


def _voltages(rows: list[dict[str, Any]]) -> np.ndarray:
    out = []
    for row in rows:
        vm = row["Vm[pu]"]
        out.append([vm[k] for k in sorted(vm, key=lambda s: int(s.rsplit("-", 1)[1]))])
    return np.asarray(out)


def _timed(simulator: str, start: dict[str, Any], model: str, code: str, outputs) -> tuple:
    """Run one feeder simulator through mosaik; return (set-up s, run s, bus voltages)."""
    t0 = time.perf_counter()
    world = mosaik.World(
        {"Feeder": {"python": simulator}, "Sink": {"python": "__main__:Sink"}},
        skip_greetings=True,
    )
    grid = getattr(world.start("Feeder", step_size=STEP_S, **start), model)(simbench=code)
    sink = world.start("Sink").Sink()
    for entity in [grid, *grid.children]:
        if entity.type in outputs:
            world.connect(entity, sink, outputs[entity.type])
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    world.run(until=STEPS * STEP_S, print_progress=False)
    wall = time.perf_counter() - t0
    world.shutdown()
    return setup, wall, _voltages(SINKS[-1].rows)


def run_gridlayers(code: str) -> tuple[float, float, np.ndarray]:
    outputs = {"Feeder": "P_import[MW]", "Bus": "Vm[pu]"}
    simulator = "gridlayers.simulators.feeder:FeederSimulator"
    return _timed(simulator, {"start": START}, "Feeder", code, outputs)


def run_mosaik_pandapower_2(code: str) -> tuple[float, float, np.ndarray]:
    outputs = {"ExternalGrid": "P[MW]", "Bus": "Vm[pu]"}
    return _timed("mosaik_components.pandapower:Simulator", {}, "Grid", code, outputs)


def main() -> None:
    for code in CODES:
        setup_g, wall_g, vm_g = run_gridlayers(code)
        setup_m, wall_m, vm_m = run_mosaik_pandapower_2(code)
        ours, theirs = wall_g / STEPS * 1e3, wall_m / STEPS * 1e3
        print(
            f"{code:20s} gridlayers {ours:6.2f} ms/step (set-up {setup_g:4.1f} s)  "
            f"mosaik-pandapower-2 {theirs:6.2f} ms/step (set-up {setup_m:4.1f} s)  "
            f"ratio {theirs / ours:5.1f}x  max |dVm| {np.max(np.abs(vm_g - vm_m)):.1e} pu"
        )


if __name__ == "__main__":
    main()
