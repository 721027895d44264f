"""The year run (scenarios/year.yaml: 10 LDAs, 35,040 quarter-hours, Total DSO), measured.

One command: ``python benchmarks/bench_year.py [--days 2] [--out DIR]``.

Builds the whole year exactly as ``gridlayers run scenarios/year.yaml`` does (LDA models,
profiles and forecasts for all 35,040 intervals), runs the first ``--days`` days
through the full co-simulation into a results store, and prints:

- start-up (scenario resolution, year-long LDA models, wiring) in seconds;
- seconds per interval after the first day's first interval, and its split (the
  wrappers of ``bench_interval_split``: aggregators, DSOs, feeders, market, store,
  mosaik; HiGHS and power flow inside them);
- peak resident memory of this process and, sampled every 0.5 s, the peak of the sum
  over this process and all its descendants (the partitions' simulator processes) of
  resident memory (RSS) and of proportional set size (PSS: shared pages split among
  the processes sharing them), and the results store's size per simulated day;
- the projected year: start-up + 35,040 × seconds per interval, against the issue's
  target of 20 minutes and 4 GiB, and the store size of a year.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

from bench_interval_split import TIMES, instrument, print_parts

from gridlayers.cosim import run_world
from gridlayers.results.store import ResultStore
from gridlayers.scenarios import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "year.yaml"
TARGET_S, TARGET_GIB = 20 * 60, 4.0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _tree_kib(root: int) -> tuple[int, int]:
    """Return (RSS, PSS) summed over ``root`` and its descendants (KiB), from /proc."""
    rss = pss = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        stack.extend(_children(pid))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:  # the process ended meanwhile
            continue
    return rss, pss


class TreeMemory(threading.Thread):
    """Sample the process tree's memory every ``period_s`` seconds; keep the peaks (KiB)."""

    def __init__(self, period_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.period_s, self.peak_rss, self.peak_pss = period_s, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.period_s):
            rss, pss = _tree_kib(os.getpid())
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--out", type=Path, help="keep the results store here")
    parser.add_argument(
        "--partitions", type=int, help="run the LDA simulators in N partitions of subprocesses"
    )
    args = parser.parse_args()
    instrument()
    tree = TreeMemory()
    tree.start()
    t0 = time.perf_counter()
    scenario = load_scenario(SCENARIO)
    if args.partitions:  # the split then covers the main process only (TSO, store, mosaik)
        sims = scenario.simulators.model_copy(update={"lda": "cmd", "partitions": args.partitions})
        scenario = scenario.model_copy(update={"simulators": sims})
    per_day = round(24 * 60 / scenario.horizon.interval_min)
    n = max(2, round(args.days * per_day))
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "results.duckdb"
        db.unlink(missing_ok=True)
        store = ResultStore(db)
        run_world(scenario, "total_dso", store, lambda _k: stamps.append(time.perf_counter()), n)
        store.close()
        size = db.stat().st_size
    wall = time.perf_counter() - t0
    later = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    startup = stamps[0] - t0 - later  # first interval counted as a regular one
    year = scenario.horizon.intervals
    projected = startup + year * later
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    ldas = len(scenario.ldas)
    print(f"{ldas} LDAs, {n} of {year} intervals run in {wall:.0f} s")
    print(f"start-up (year-long LDA models, wiring): {startup:.1f} s")
    print(f"per interval: {later:.3f} s = {later / ldas * 1e3:.1f} ms per LDA-interval")
    per = n * ldas / 1e3
    print_parts(TIMES, per)
    tree.done.set()
    print(f"peak memory of this process: {rss_gib:.2f} GiB (target {TARGET_GIB} GiB)")
    print(
        f"peak memory of all processes (sampled): RSS {tree.peak_rss / 1024**2:.2f} GiB, "
        f"PSS {tree.peak_pss / 1024**2:.2f} GiB"
    )
    days = n / per_day
    print(
        f"results store: {size / 1e6:.1f} MB for {days:.1f} days "
        f"-> year ~{size / days * 365 / 1e9:.2f} GB"
    )
    print(
        f"projected year: {projected / 60:.0f} min = {projected / TARGET_S:.1f}x the 20 min target"
    )


if __name__ == "__main__":
    main()
