"""Parallel LDA partitions: in-process vs partitions in subprocesses, same scenario, same run.

One command: ``python benchmarks/bench_partitions.py [--ldas 10] [--intervals 16]
[--partitions 1 2] [--paradigm total_dso]``.

The default scenario with its LDAs repeated at other 115 kV buses
(:func:`gridlayers.scenarios.variants.many_ldas`) runs once in-process
(``simulators.lda: python``, the reference) and once per partition count with each
partition's aggregator, DSO and feeder simulators as mosaik subprocesses
(``simulators.lda: cmd``). Prints, for each, the wall seconds per interval after the
first (start-up apart) and the speed-up against the in-process run, and checks that the
total resource cost is the same.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario
from gridlayers.scenarios.schema import Scenario
from gridlayers.scenarios.variants import many_ldas

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"


def timed(data: dict, paradigm: str, **simulators) -> tuple[float, float, float]:
    """Return (start-up s, s per interval after the first, total cost $) of one run."""
    scenario = Scenario.model_validate({**data, "paradigms": [paradigm], "simulators": {
        "feeder": "python", "market": "python", **simulators}})  # fmt: skip
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcome = run_scenario(scenario, Path(tmp), lambda *_: stamps.append(time.perf_counter()))
    if outcome.summary["status"] != "completed":
        raise RuntimeError(outcome.summary["error"])
    per = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return stamps[0] - t0 - per, per, outcome.summary["paradigms"][paradigm]["total_cost"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ldas", type=int, default=10)
    parser.add_argument("--intervals", type=int, default=16)
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--paradigm", default="total_dso")
    args = parser.parse_args()
    data = many_ldas(load_scenario(SCENARIO).model_dump(mode="json", by_alias=True), args.ldas)
    data["horizon"] = {"start": "2016-06-01 10:00", "intervals": args.intervals, "interval_min": 15}
    data["output"]["bus_voltages"] = False
    start, ref, cost = timed(data, args.paradigm, lda="python")
    print(f"{args.ldas} LDAs, {args.paradigm}, {args.intervals} intervals")
    print(
        f"in-process           {ref:6.3f} s/interval  (start-up {start:5.1f} s)  cost {cost:,.2f}"
    )
    for n in args.partitions:
        start, per, c = timed(data, args.paradigm, lda="cmd", partitions=n)
        print(
            f"{n} partition(s), cmd  {per:6.3f} s/interval  (start-up {start:5.1f} s)  "
            f"speed-up {ref / per:4.2f}x  same cost: {c == cost}"
        )


if __name__ == "__main__":
    main()
