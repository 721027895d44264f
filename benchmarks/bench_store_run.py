"""Result store on a real run: its size on disk and how fast it writes, against the run.

Runs a scenario (default ``scenarios/isone-reference.yaml``, all its paradigms) through
:func:`gridlayers.runner.run_scenario` with the store's database writes timed: every
``INSERT`` the store issues (:meth:`ResultStore._insert`) and every commit of a batch
(:meth:`ResultStore.flush`), plus the Parquet export at the end. Prints, per table, the
rows stored and their bytes in the Parquet files; then the DuckDB file's size, the rows
written per second of write time, and the write time as a share of the run's wall time
(the reference measured in the same run). ``--outputs`` switches on the optional
per-device and per-branch tables (``output.device_dispatch``, ``output.branch_loading``)
and per-bus voltages, the largest a run can write.

Run: ``.venv/bin/python benchmarks/bench_store_run.py [SCENARIO] [--outputs] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from gridlayers.results.store import TABLES, ResultStore
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario
from gridlayers.scenarios.resolve import resolve_scenario

ROOT = Path(__file__).resolve().parents[1]


class _Timer:
    """Seconds spent in wrapped store methods (nested calls counted once)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    def wrap(self, function):  # noqa: ANN001, ANN202 - a method of ResultStore
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self._depth += 1
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - t0
                    self.calls += 1

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/isone-reference.yaml"))
    parser.add_argument("--outputs", action="store_true", help="per-device, branch, bus rows")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: temp)")
    args = parser.parse_args()

    scenario = load_scenario(Path(args.scenario))
    resolve_scenario(scenario, Path(args.scenario))
    if args.outputs:
        output = scenario.output.model_copy(
            update={"bus_voltages": True, "device_dispatch": True, "branch_loading": True}
        )
        scenario = scenario.model_copy(update={"output": output})
    timer = _Timer()
    export = _Timer()
    for name in ("_insert", "flush"):
        setattr(ResultStore, name, timer.wrap(getattr(ResultStore, name)))
    ResultStore.export_parquet = export.wrap(ResultStore.export_parquet)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        t0 = time.perf_counter()
        outcome = run_scenario(scenario, out)
        wall = time.perf_counter() - t0
        db = out / "results.duckdb"
        con = duckdb.connect(str(db), read_only=True)
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608
        con.close()
        parquet = {t: (out / f"{t}.parquet").stat().st_size for t in TABLES if rows[t]}
        size = db.stat().st_size
        wal = db.with_suffix(".duckdb.wal")
        size += wal.stat().st_size if wal.exists() else 0

    total = sum(rows.values())
    print(f"scenario {scenario.name}: {outcome.summary['status']}, "
          f"{len(scenario.paradigms)} paradigm(s) x {scenario.horizon.intervals} intervals, "
          f"wall {wall:.1f} s")  # fmt: skip
    print(f"{'table':<22}{'rows':>12}{'parquet KiB':>14}")
    for table in TABLES:
        if rows[table]:
            print(f"{table:<22}{rows[table]:>12,}{parquet[table] / 1024:>14,.1f}")
    print(f"{'total':<22}{total:>12,}{sum(parquet.values()) / 1024:>14,.1f}")
    print(f"DuckDB file: {size / 2**20:.2f} MiB ({size / max(total, 1):.1f} bytes per row)")
    print(f"store writes: {timer.seconds:.2f} s in {timer.calls} INSERT/commit calls, "
          f"{total / max(timer.seconds, 1e-9):,.0f} rows/s; "
          f"{100 * timer.seconds / wall:.2f} % of the run's wall time")  # fmt: skip
    print(f"Parquet export: {export.seconds:.2f} s ({100 * export.seconds / wall:.2f} % of wall)")


if __name__ == "__main__":
    main()
