"""The default scenario (96 quarter-hours, 3 LDAs) under every paradigm.

Prints wall seconds per paradigm, each paradigm's ratio to ``passive`` (the same
co-simulation without any optimisation below the TSO, measured in the same run), the
total for the three compared paradigms against the 120 s target.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"
COMPARED = ("total_tso", "minimal_dso", "total_dso")


def timed(scenario, paradigms: tuple[str, ...]) -> dict[str, float]:
    sc = scenario.model_copy(update={
        "paradigms": list(paradigms),
        "output": scenario.output.model_copy(update={"bus_voltages": False}),
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcome = run_scenario(sc, Path(tmp))
        total = time.perf_counter() - t0
    if not outcome.ok:
        sys.exit(f"run failed: {outcome.summary['error']}")
    walls = {p: k["wall_seconds"] for p, k in outcome.summary["paradigms"].items()}
    walls["total"] = total
    return walls


def main() -> None:
    scenario = load_scenario(SCENARIO)
    ref = timed(scenario, ("passive",))["passive"]
    print(f"passive (reference)  {ref:6.1f} s")
    walls = timed(scenario, COMPARED)
    for p in COMPARED:
        print(f"{p:12s}         {walls[p]:6.1f} s  ratio to passive {walls[p] / ref:4.2f}x")
    verdict = "met" if walls["total"] <= 120 else "missed"
    print(f"all three           {walls['total']:6.1f} s  (target 120 s: {verdict})")


if __name__ == "__main__":
    main()
