"""Where an interval's time goes: per LDA-interval split of a Total DSO co-simulation.

One command: ``python benchmarks/bench_interval_split.py [--ldas 3 10] [--intervals 24]
[--paradigm total_dso]``.

Runs the default scenario with its LDAs repeated at other 115 kV buses
(:func:`gridlayers.scenarios.variants.many_ldas`) through the full mosaik
co-simulation, once per LDA count, and times, with wall-clock wrappers (no profiler):

- each simulator's ``step``/``get_data`` (aggregators, DSOs, feeders, market, collector),
- inside them, HiGHS (``highspy.Highs.run``) and the AC power-flow solver's Newton
  iterations (``ACPowerFlow._newton``): the "solver" time,
- start-up (scenario resolution, LDA models, wiring) apart from the run;
- everything else in ``world.run`` is mosaik's scheduling and data exchange.

Prints, per LDA count, ms per LDA-interval for each part, the framework/solver ratio
(everything outside HiGHS and the power-flow solver over the time inside them; the
issue's target is ≤ 1) and, between the two LDA counts, the marginal ms per added
LDA-interval (the issue's target is ≤ 5 ms).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import highspy
import mosaik

from gridlayers.agents.aggregator import AggregatorSim
from gridlayers.agents.dso import DSOSim
from gridlayers.grid.acpf import ACPowerFlow
from gridlayers.scenarios import load_scenario
from gridlayers.scenarios.schema import Scenario
from gridlayers.scenarios.variants import many_ldas
from gridlayers.simulators.collector import Collector
from gridlayers.simulators.feeder import FeederSim
from gridlayers.simulators.market import MarketSim

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"
PARTS = {
    "aggregators": AggregatorSim,
    "DSOs": DSOSim,
    "feeders": FeederSim,
    "market": MarketSim,
    "store": Collector,
}
TIMES: dict[str, float] = defaultdict(float)
_STACK: list[str] = []


def _timed(part: str, fn):
    def wrapper(*args, **kwargs):
        _STACK.append(part)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[part] += time.perf_counter() - t0
            _STACK.pop()

    return wrapper


def _solver(kind: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            owner = _STACK[-1] if _STACK else "start-up"
            TIMES[f"{kind}:{owner}"] += time.perf_counter() - t0

    return wrapper


def instrument() -> None:
    for part, cls in PARTS.items():
        for name in ("step", "get_data"):
            if name in vars(cls):
                setattr(cls, name, _timed(part, vars(cls)[name]))
    highspy.Highs.run = _solver("HiGHS", highspy.Highs.run)
    mosaik.World.run = _timed("world.run", mosaik.World.run)
    ACPowerFlow._newton = _solver("power flow", ACPowerFlow._newton)


def run(base: Scenario, n: int, intervals: int, paradigm: str) -> dict[str, float]:
    from gridlayers.cosim import run_world
    from gridlayers.results.store import ResultStore

    data = many_ldas(base.model_dump(mode="json", by_alias=True), n)
    data["horizon"]["intervals"] = intervals
    data["output"]["bus_voltages"] = True
    scenario = Scenario.model_validate(data)
    TIMES.clear()
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "results.duckdb")
        t0 = time.perf_counter()
        run_world(scenario, paradigm, store, on_interval=_first_interval(t0))
        TIMES["total"] = time.perf_counter() - t0
        TIMES["start-up"] = TIMES["total"] - TIMES["world.run"]
        store.close()
    return dict(TIMES)


def _first_interval(t0: float):
    def mark(k: int) -> None:
        if k == 0 and "until first interval" not in TIMES:
            TIMES["until first interval"] = time.perf_counter() - t0

    return mark


def print_parts(t: dict[str, float], per: float) -> None:
    """Print each part's ms per LDA-interval (``per``: LDA-intervals / 1000), then mosaik's."""
    for part in PARTS:
        inside = sum(v for k, v in t.items() if k.endswith(f":{part}"))
        print(
            f"  {part:<12} {t.get(part, 0.0) / per:8.2f} ms/LDA-interval "
            f"(HiGHS / power flow inside {inside / per:6.2f})"
        )
    mosaik = t["world.run"] - sum(t.get(p, 0.0) for p in PARTS)
    print(f"  {'mosaik':<12} {mosaik / per:8.2f} ms/LDA-interval (scheduling, data exchange)")


def report(n: int, intervals: int, t: dict[str, float]) -> float:
    per = n * intervals / 1e3  # ms per LDA-interval
    solver = sum(v for k, v in t.items() if ":" in k and not k.endswith("start-up"))
    run_s = t["total"] - t.get("until first interval", 0.0)
    print(f"\n{n} LDAs x {intervals} intervals: {t['total']:.1f} s wall")
    print(
        f"  start-up (resolution, LDA models, wiring) {t['start-up']:.1f} s; "
        f"until the first interval is stored {t.get('until first interval', 0):.1f} s"
    )
    print_parts(t, per)
    framework = t["world.run"] - solver
    print(
        f"  solver (HiGHS + power flow) {solver / per:.2f} ms, framework {framework / per:.2f} ms"
        f" per LDA-interval in the run: framework/solver {framework / solver:.1f}x"
    )
    return run_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ldas", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--intervals", type=int, default=24)
    parser.add_argument("--paradigm", default="total_dso")
    args = parser.parse_args()
    instrument()
    base = load_scenario(SCENARIO)
    walls = {}
    for n in args.ldas:
        walls[n] = report(n, args.intervals, run(base, n, args.intervals, args.paradigm))
    if len(args.ldas) >= 2:
        a, b = args.ldas[0], args.ldas[-1]
        marginal = (walls[b] - walls[a]) / ((b - a) * (args.intervals - 1)) * 1e3
        print(
            f"\nmarginal cost after the first interval: {marginal:.1f} ms per added LDA-interval "
            f"({a} -> {b} LDAs; target <= 5 ms)"
        )


if __name__ == "__main__":
    main()
