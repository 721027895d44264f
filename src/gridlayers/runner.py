"""Run a scenario end to end: output folder, metadata, co-simulation, KPIs, summary.

A run writes into its output folder:

``scenario.resolved.yaml``  the validated scenario with every default filled in
``results.duckdb``          every interval's results (see :mod:`gridlayers.results.store`)
``<table>.parquet``         the same tables as Parquet files
``summary.json``            status, metadata (versions, seed, timings) and KPIs per paradigm

Results are committed in whole intervals, together with a checkpoint of the
simulators' state (:mod:`gridlayers.results.checkpoint`); if a simulator fails, hangs
past ``simulators.step_timeout_s`` or the process is killed, the store keeps every
committed interval. A failed run is marked ``failed`` with the error, and the KPIs of
everything computed so far are still written. ``resume=True`` (``gridlayers run
--resume RUN_DIR``) continues each paradigm after its last stored interval.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from gridlayers.conventions import interval_hours
from gridlayers.results.checkpoint import resume_plan, truncate
from gridlayers.results.kpis import paradigm_kpis
from gridlayers.results.store import ResultStore
from gridlayers.scenarios.schema import Scenario

log = logging.getLogger(__name__)

_VERSIONED = (
    "gridlayers",
    "mosaik",
    "mosaik-api-v3",
    "pandapower",
    "simbench",
    "pyomo",
    "highspy",
    "numpy",
    "pandas",
    "duckdb",
)


@dataclass(frozen=True)
class RunOutcome:
    """Where a run wrote its results and what it measured."""

    out_dir: Path
    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether every paradigm completed."""
        return self.summary["status"] == "completed"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_scenario(
    scenario: Scenario,
    out_dir: Path,
    on_interval: Callable[[str, int], None] | None = None,
    resume: bool = False,
) -> RunOutcome:
    """Run every paradigm of a scenario and write results under ``out_dir``.

    Parameters
    ----------
    scenario : Scenario
        The validated (and resolved) scenario.
    out_dir : Path
        Output folder (created; an existing results database is replaced unless
        ``resume``).
    on_interval : callable, optional
        Progress callback ``(paradigm, interval)``.
    resume : bool
        Continue the run in ``out_dir``: each paradigm after its last stored interval,
        from its checkpoint (:func:`~gridlayers.results.checkpoint.resume_plan`);
        paradigms already complete are not run again. Rows after the last stored
        interval are deleted first.

    Returns
    -------
    RunOutcome

    Raises
    ------
    ResumeError
        With ``resume``, if ``out_dir`` has no results of this scenario.

    """
    from gridlayers.cosim import run_world

    db = out_dir / "results.duckdb"
    # where each paradigm starts, read before anything in the folder changes
    fresh = {p: (0, None) for p in scenario.paradigms}
    starts = resume_plan(db, scenario) if resume else fresh
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = scenario.model_dump(mode="json", by_alias=True)
    (out_dir / "scenario.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    if not resume:
        db.unlink(missing_ok=True)
    store = ResultStore(db)
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "status": "completed",
        "error": None,
        "metadata": {
            "seed": scenario.seed,
            "versions": _versions(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        "paradigms": {},
    }
    if resume:
        summary["metadata"]["resumed_at"] = {p: k for p, (k, _) in starts.items()}
    interfaces = {lda.name: lda.interface_bus for lda in scenario.ldas}
    hours = interval_hours(scenario.horizon.interval_min)
    started = time.perf_counter()
    try:
        for paradigm in scenario.paradigms:
            t0 = time.perf_counter()
            failure: Exception | None = None
            callback = (lambda k, p=paradigm: on_interval(p, k)) if on_interval else None
            first, states = starts[paradigm]
            if first:
                log.info("%s: resuming at interval %d", paradigm, first)
            log.info("%s: co-simulating %d intervals", paradigm, scenario.horizon.intervals - first)
            try:
                if resume:
                    truncate(store.con, paradigm, first - 1)
                if first < scenario.horizon.intervals:
                    run_world(scenario, paradigm, store, callback, start=first, states=states)
            except Exception as exc:  # noqa: BLE001 - record, keep what was computed
                summary["status"] = "failed"
                summary["error"] = f"{paradigm}: {type(exc).__name__}: {exc}"
                (out_dir / "error.log").write_text(traceback.format_exc())
                failure = exc
            settle = scenario.settlement
            penalty = settle.imbalance_price_usd_per_mwh if settle.deviation == "penalty" else 0.0
            kpis = paradigm_kpis(store, paradigm, hours, interfaces, penalty)
            if failure is not None:  # a numerical fault that ended the run counts too
                kind = getattr(failure, "kind", None)
                faults = kpis.get("numerical_faults")
                if isinstance(faults, dict) and kind in faults:
                    faults[kind] += 1
                    summary["failure_kind"] = kind
            kpis["wall_seconds"] = round(time.perf_counter() - t0, 3)
            kpis["intervals_planned"] = scenario.horizon.intervals
            summary["paradigms"][paradigm] = kpis
            log.info("%s: %s in %.1f s", paradigm, summary["status"], kpis["wall_seconds"])
            if summary["status"] == "failed":
                break
        summary["metadata"]["wall_seconds"] = round(time.perf_counter() - started, 3)
        summary["outputs"] = [p.name for p in store.export_parquet(out_dir)]
    finally:
        store.close()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("wrote %s", out_dir / "summary.json")
    return RunOutcome(out_dir, summary)
