"""Parameter sweeps: a base scenario × a grid of field overrides × paradigms, on Dask.

``run_sweep(load_sweep("sweep.yaml"), out)`` runs every point (one ordinary run each,
in ``out/points/<point>/``) on a Dask cluster, skips points already computed, and
writes ``out/sweep.duckdb`` (every table of every point, with the point's parameters
as columns), ``out/sweep.json`` and ``out/report.html``. See docs/running-at-scale.md.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridlayers.sweep.collect import write_store, write_summary
from gridlayers.sweep.config import Point, Sweep, load_sweep, scenario_hash
from gridlayers.sweep.execute import ClusterOptions, is_done, point_dir, run_points

__all__ = [
    "ClusterOptions",
    "Point",
    "Sweep",
    "SweepOutcome",
    "is_done",
    "load_sweep",
    "point_dir",
    "run_sweep",
    "scenario_hash",
]


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep wrote: its folder, one record per point, and the files."""

    out_dir: Path
    records: list[dict[str, Any]]
    store: Path
    summary: Path
    report: Path | None

    @property
    def ok(self) -> bool:
        """Whether every point completed."""
        return all(r["status"] == "completed" for r in self.records)

    @property
    def computed(self) -> list[str]:
        """Ids of the points run now (not reused from an earlier run)."""
        return [r["point"] for r in self.records if not r["skipped"]]


def run_sweep(
    sweep: Sweep,
    out: Path,
    options: ClusterOptions | None = None,
    report: bool = True,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> SweepOutcome:
    """Run a sweep's missing points on Dask, then write its store, summary and report.

    Parameters
    ----------
    sweep : Sweep
        From :func:`load_sweep`.
    out : Path
        The sweep's folder (created). With an existing scheduler, every worker must
        see it at the same path.
    options : ClusterOptions, optional
        Default: a local cluster of ``sweep.config.workers`` processes.
    report : bool
        Write ``out/report.html`` and ``out/report/kpis.png``.
    on_point : callable, optional
        Called with each point's record as it finishes.

    Returns
    -------
    SweepOutcome

    """
    options = options or ClusterOptions(workers=sweep.config.workers)
    out.mkdir(parents=True, exist_ok=True)
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    records = run_points(sweep, out, options, on_point)
    metadata = {
        "sweep_file": str(sweep.file),
        "base_scenario": str(sweep.base),
        "cluster": options.scheduler or f"local, {options.workers} worker processes",
        "started": started_at,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    store, kpis = write_store(out, records, sweep.parameters)
    summary = write_summary(out, sweep.config.name, records, kpis, metadata)
    html = None
    if report:
        from gridlayers.sweep.report import write_sweep_report

        html = write_sweep_report(out, sweep.config.name, records, sweep.parameters, kpis, metadata)
    return SweepOutcome(out, records, store, summary, html)
