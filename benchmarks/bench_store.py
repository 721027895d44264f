"""Result writes: the collector and store on one day's rows, committed per interval or per day.

Feeds :class:`~gridlayers.simulators.collector.Collector` the outputs of one Total DSO
day of the default scenario (3 LDAs x 96 intervals; per LDA a feeder with its bus
voltages, 3 aggregators and a DSO report, per interval the TSO's two-settlement record
with 200 LMPs) in the same row shapes and counts as a real run, each source in its own
collector step, with synthetic values. The collector commits whole intervals with their
checkpoint (:meth:`~gridlayers.results.store.ResultStore.commit`, one transaction): once
every interval (``output.checkpoint_intervals: 1``, the default) and (fastest of three)
once per day (``checkpoint_intervals: 96``). Timed: the collector's steps (with their
commits), and the final commit and close of the store. Prints both as ms per
LDA-interval (total, steps, final commit and close), their ratio and the INSERTs each
made, and exits with an error unless both databases hold the same rows.

Run: ``.venv/bin/python benchmarks/bench_store.py [n_intervals]``.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridlayers.results.store import TABLES, ResultStore
from gridlayers.simulators.collector import Collector

N_INTERVALS = int(sys.argv[1]) if len(sys.argv) > 1 else 96
INTERVAL_S = 900
START = dt.datetime(2016, 6, 1)
BUSES = {"rural": 97, "semiurban": 117, "urban": 144}  # feeder buses of the default LDAs
AGGREGATORS = ("pv", "battery", "flex")  # three per LDA
LMP_BUSES = 200  # ACTIVSg200


def _sources() -> dict[str, list[str]]:
    sources = {}
    for lda in BUSES:
        sources[f"Feeder-{lda}.feeder"] = ["feeder", lda]
        sources[f"DSO-{lda}.dso"] = ["dso", lda]
        for agg in AGGREGATORS:
            sources[f"Aggregator-{lda}.{agg}"] = ["aggregator", f"{lda}.{agg}"]
    sources["Market-0.tso"] = ["market", "tso"]
    return sources


def _feeder(rng: np.random.Generator, lda: str, k: int) -> dict[str, Any]:
    vm = {str(b): float(v) for b, v in enumerate(1.0 + 0.04 * rng.random(BUSES[lda]))}
    return {
        "P_import[MW]": float(rng.normal(5, 1)),
        "Q_import[MVAr]": float(rng.normal(1, 0.2)),
        "P_loss[MW]": float(rng.random() * 0.1),
        "Vm_min[pu]": min(vm.values()),
        "Vm_max[pu]": max(vm.values()),
        "loading_max[%]": float(rng.random() * 40),
        "voltage_violations[-]": 0,
        "thermal_violations[-]": 0,
        "converged[-]": True,
        "retried[-]": k % 48 == 7,  # an occasional event
        "Vm[pu]": vm,
    }


def _aggregator(rng: np.random.Generator) -> dict[str, Any]:
    keys = ("cost_usd", "offer_cost_usd", "energy_mwh", "curtailed_mwh", "setpoint_mw")
    report = {key: float(rng.random()) for key in keys}
    report |= {"realised_mw": 0.5, "stored_start_mwh": 1.0, "stored_end_mwh": 1.1}
    return {"der_report": report}


def _dso(rng: np.random.Generator, k: int) -> dict[str, Any]:
    report = {
        "redispatch_cost_usd_per_h": float(rng.random()),
        "violations_predicted": 0,
        "dlmp_min": 20.0,
        "dlmp_mean": float(rng.normal(23, 1)),
        "dlmp_max": 26.0,
        "solve_seconds": 0.01,
        "values_exchanged": 24,
        "infeasible": ["offer: soft-limit fallback used"] if k in (1, 2) else [],
        "flex_offered_mw": 1.0,
        "flex_usable_mw": 0.8,
    }
    return {"dso_report": report}


def _market(rng: np.random.Generator) -> dict[str, Any]:
    clearing = {
        "cost_usd_per_h": 30_000.0,
        "generation_cost_usd_per_h": 30_000.0,
        "unserved_mw": 0.0,
        "solve_seconds": 0.01,
        "status": "optimal",
        "generation_mw": 1500.0,
        "bulk_demand_mw": 1480.0,
    }
    interface = {
        "cleared_mw": -5.0,
        "realised_mw": -5.1,
        "lmp_forward": 23.0,
        "lmp_real_time": 23.1,
        "forward_payment_usd_per_h": -115.0,
        "deviation_payment_usd_per_h": -2.3,
    }
    lmp = 23.0 + rng.random((LMP_BUSES, 2))
    record = {
        "forward": clearing,
        "real_time": clearing,
        "payments_usd_per_h": {"generators": 3e4, "bulk_loads": -3e4, "congestion_rent": 500.0},
        "tso_variables": 1333,
        "tso_constraints": 476,
        "interface_values": 69,
        "lmp": {str(b): [float(f), float(r)] for b, (f, r) in enumerate(lmp)},
        "interface": dict.fromkeys(BUSES, interface),
        "participants": {f"dso:{lda}": {"lda": lda, "cleared_mw": -5.0} for lda in BUSES},
        "slack": {},
    }
    return {"record": record}


def day(sources: dict[str, list[str]]) -> list[tuple[int, dict[str, Any]]]:
    """One day's collector steps, one source each: ``(time, inputs)``."""
    rng = np.random.default_rng(42)
    steps = []
    for k in range(N_INTERVALS):
        t = k * INTERVAL_S
        for full_id, (kind, name) in sources.items():
            if kind == "feeder":
                values = _feeder(rng, name, k)
            elif kind == "aggregator":
                values = _aggregator(rng)
            elif kind == "dso":
                values = _dso(rng, k)
            else:
                values = _market(rng)
            inputs = {attr: {full_id: value} for attr, value in values.items()}
            steps.append((t, {"collector": inputs}))
    return steps


class CountingStore(ResultStore):
    """A store that counts the INSERTs it makes."""

    inserts = 0

    def _insert(self, table: str, chunk: list[dict[str, Any]] | pd.DataFrame) -> None:
        self.inserts += 1
        super()._insert(table, chunk)


def run(path: Path, every: int, steps: list, sources: dict) -> tuple[float, float, int]:
    """Seconds of the collector's steps and of the final commit and close; INSERTs made.

    ``every``: complete intervals per commit (``output.checkpoint_intervals``).
    """
    path.unlink(missing_ok=True)
    store = CountingStore(path)
    collector = Collector()
    collector.init(
        "Collector-0",
        store=store,
        paradigm="total_dso",
        start=START,
        interval_s=INTERVAL_S,
        intervals=N_INTERVALS,
        checkpoint_intervals=every,
    )
    collector.create(1, "Collector", sources=sources)
    t0 = time.perf_counter()
    for t, inputs in steps:
        collector.step(t, inputs, t + INTERVAL_S)
    t1 = time.perf_counter()
    collector.finalize()
    store.close()
    return t1 - t0, time.perf_counter() - t1, store.inserts


def tables(path: Path) -> dict[str, pd.DataFrame]:
    store = ResultStore(path)
    out = {table: store.query(f"SELECT * FROM {table}") for table in TABLES}  # noqa: S608
    store.close()
    return out


def main() -> None:
    sources = _sources()
    steps = day(sources)
    lda_intervals = len(BUSES) * N_INTERVALS
    with tempfile.TemporaryDirectory() as tmp:
        immediate, batched = Path(tmp) / "interval.duckdb", Path(tmp) / "day.duckdb"
        results = {"commit every interval": run(immediate, 1, steps, sources)}
        # cheap: the fastest of three, against noise on a shared machine
        runs = [run(batched, 96, steps, sources) for _ in range(3)]
        results["commit every 96 intervals"] = min(runs, key=lambda r: r[0] + r[1])
        a, b = tables(immediate), tables(batched)
    rows = sum(len(frame) for frame in b.values())
    print(f"{len(BUSES)} LDAs x {N_INTERVALS} intervals, {len(steps)} collector steps, {rows} rows")
    print("ms per LDA-interval: total = collector steps (with commits) + final commit and close")
    for label, (steps_s, close_s, inserts) in results.items():
        ms = [x * 1e3 / lda_intervals for x in (steps_s + close_s, steps_s, close_s)]
        print(
            f"{label:28s} {ms[0]:7.3f} = {ms[1]:7.3f} + {ms[2]:6.3f}  "
            f"({steps_s + close_s:6.2f} s, {inserts} INSERTs)"
        )
    (a_steps, a_close, _), (b_steps, b_close, _) = results.values()
    print(f"ratio interval/day {(a_steps + a_close) / (b_steps + b_close):5.1f}x")
    different = [table for table in TABLES if not a[table].equals(b[table])]
    if different:
        sys.exit(f"per-interval and per-day databases differ in {different}")


if __name__ == "__main__":
    main()
