"""Run a sweep's points on Dask: a local cluster of worker processes, or an existing one.

Each point is one ordinary run (:func:`gridlayers.runner.run_scenario`) into
``OUT/points/<point>/``. A point whose folder already holds a ``completed``
``summary.json`` and a ``scenario.resolved.yaml`` with the point's scenario hash is
skipped, so a rerun computes only what is missing or changed. A point that fails
(its run, or its worker) is recorded with its error; the others go on.

Workers receive the point's scenario as a JSON-ready dict and the folder as a string,
and run the point in a child process (:mod:`gridlayers.sweep.point`), so that the
scenario's step time-out works and a crash ends the child, not the worker; the result
comes back as a dict of plain values. A worker never imports code a scenario
names (a DSO strategy ``package.module:Class`` fails the point), whatever its
environment says.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gridlayers.scenarios.files import referenced_files
from gridlayers.sweep.config import Point, Sweep, scenario_hash

log = logging.getLogger(__name__)

POINTS = "points"
POINT_FILE = "point.json"
#: Path -> SHA-256 of the data files a point's scenario named when it ran.
FILES = "referenced_files.json"


def point_dir(out: Path, point: Point) -> Path:
    """Return the run folder of ``point`` under the sweep's folder ``out``."""
    return out / POINTS / point.id


def is_done(folder: Path, sha256: str, files: dict[str, str] | None = None) -> bool:
    """Whether ``folder`` holds a completed run of the scenario with hash ``sha256``.

    The hash is taken of the ``scenario.resolved.yaml`` the run wrote, so a point
    whose scenario changed (other values, another base scenario) is run again. With
    ``files`` (path -> SHA-256 of the data files the point's scenario names now,
    :func:`gridlayers.scenarios.files.referenced_files`), the contents recorded when the
    point ran (``referenced_files.json``) must equal them too.
    """
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        ran = yaml.safe_load((folder / "scenario.resolved.yaml").read_text(encoding="utf-8"))
        ran_files = json.loads((folder / FILES).read_text(encoding="utf-8")) if files else {}
    except (OSError, ValueError, yaml.YAMLError):
        return False
    same_files = not files or ran_files == files
    return summary.get("status") == "completed" and scenario_hash(ran) == sha256 and same_files


def quiet_worker() -> None:
    """Keep mosaik's and pandapower's chatter out of a worker's log (errors only)."""
    import sys
    import warnings

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="ERROR", format="{level}: {message}")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def run_point(
    point_id: str, scenario: dict[str, Any], folder: str, timeout_s: float | None = None
) -> dict[str, Any]:
    """Run one point (the Dask task) in a child process: validate, resolve, co-simulate.

    The child (:mod:`gridlayers.sweep.point`) runs in its own main thread, so the
    scenario's ``simulators.step_timeout_s`` ends a hung point, and a crash ends the
    child, not the worker; either way the point is recorded as failed. A point still
    running after ``timeout_s`` (the sweep's ``point_timeout_s``) is killed with every
    process it started (its own session) and recorded as failed.

    Parameters
    ----------
    point_id : str
        The point's id (``p000``).
    scenario : dict
        JSON-ready dump of the point's validated scenario (paths absolute).
    folder : str
        The point's run folder.
    timeout_s : float, optional
        Wall-clock limit of the point (s); None: no limit.

    Returns
    -------
    dict
        ``point``, ``status`` (``completed``/``failed``), ``error`` (or None) and
        ``wall_seconds`` (s).

    """
    import subprocess
    import sys

    from gridlayers.dso.strategies import ALLOW_IMPORT_ENV
    from gridlayers.sweep.point import SCENARIO_FILE

    started = time.perf_counter()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "error.log"):  # this attempt's outcome only
        (target / stale).unlink(missing_ok=True)
    (target / SCENARIO_FILE).write_text(json.dumps(scenario), encoding="utf-8")
    files = json.dumps(referenced_files(scenario), indent=2)  # the contents this run reads
    (target / FILES).write_text(files + "\n", encoding="utf-8")
    env = {**os.environ, ALLOW_IMPORT_ENV: "0"}  # a sweep never imports code a scenario names
    child = subprocess.Popen(  # noqa: S603 - our interpreter and module
        [sys.executable, "-m", "gridlayers.sweep.point", str(target)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a time-out kills its simulators too
    )
    try:
        _, stderr = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        status = "failed"
        error = (
            f"point did not finish within point_timeout_s = {timeout_s:g} s; its processes "
            "were killed (raise point_timeout_s, or set simulators.step_timeout_s to find a "
            "hung simulator)"
        )
    else:
        status, error = _outcome(target, child.returncode, stderr)
    seconds = round(time.perf_counter() - started, 3)
    return {"point": point_id, "status": status, "error": error, "wall_seconds": seconds}


def _outcome(folder: Path, returncode: int, stderr: str) -> tuple[str, str | None]:
    """``(status, error)`` of a point's child process from what it left in ``folder``."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    if isinstance(summary, dict) and returncode in (0, 1):
        return summary.get("status", "failed"), summary.get("error")
    log_file = folder / "error.log"
    if log_file.is_file():  # the run could not start (validation, resolution)
        lines = log_file.read_text().strip().splitlines()
        return "failed", lines[-1] if lines else "failed before running"
    tail = stderr.strip().splitlines()[-1:] if stderr else []
    detail = f": {tail[0]}" if tail else ""
    return "failed", f"point process ended with exit code {returncode}{detail}"


@dataclass(frozen=True)
class ClusterOptions:
    """Where the points run.

    Attributes
    ----------
    workers : int
        Worker processes of the local cluster (one thread each).
    scheduler : str or None
        Address of an existing Dask scheduler (``tcp://host:8786``); None starts a
        local cluster bound to 127.0.0.1.
    dashboard : str or None
        Address of the local cluster's dashboard (needs ``bokeh``); None: none.

    """

    workers: int = 2
    scheduler: str | None = None
    dashboard: str | None = None


@contextmanager
def dask_client(options: ClusterOptions) -> Iterator[Any]:
    """Yield a ``distributed.Client``: to ``options.scheduler`` or to a new local cluster."""
    from distributed import Client, LocalCluster

    if options.scheduler:
        with Client(options.scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=options.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=options.dashboard,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _record(point: Point, folder: Path, result: dict[str, Any], skipped: bool) -> dict[str, Any]:
    record = {
        "point": point.id,
        "parameters": point.parameters,
        "scenario_sha256": point.sha256,
        "folder": str(folder),
        "skipped": skipped,
        **{k: result.get(k) for k in ("status", "error", "wall_seconds")},
    }
    (folder / POINT_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def run_points(
    sweep: Sweep,
    out: Path,
    options: ClusterOptions,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every point of ``sweep`` not already done, on Dask; return one record per point.

    Parameters
    ----------
    sweep : Sweep
        The loaded sweep.
    out : Path
        The sweep's folder; point ``pNNN`` runs in ``out/points/pNNN``.
    options : ClusterOptions
        Local cluster size or the scheduler to use.
    on_point : callable, optional
        Called with each point's record as it finishes (skipped points first).

    Returns
    -------
    list of dict
        Per point, in sweep order: ``point``, ``parameters``, ``scenario_sha256``,
        ``folder``, ``skipped``, ``status``, ``error``, ``wall_seconds`` (s).

    """
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for point in sweep.points:
        folder = point_dir(out, point)
        if is_done(folder, point.sha256, referenced_files(point.scenario)):
            previous = _previous_seconds(folder)
            done = {"status": "completed", "error": None, "wall_seconds": previous}
            records[point.id] = _record(point, folder, done, skipped=True)
            if on_point:
                on_point(records[point.id])
        else:
            todo.append(point)
    if todo:
        with dask_client(options) as client:
            futures = {
                client.submit(
                    run_point,
                    p.id,
                    p.scenario,
                    str(point_dir(out, p).resolve()),
                    sweep.config.point_timeout_s,
                    key=f"{sweep.config.name}-{p.id}-{p.sha256[:12]}",
                    pure=False,
                    retries=0,
                ): p
                for p in todo
            }
            from distributed import as_completed

            for future in as_completed(futures):
                point = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. the worker died (KilledWorker)
                    result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                folder = point_dir(out, point)
                folder.mkdir(parents=True, exist_ok=True)
                records[point.id] = _record(point, folder, result, skipped=False)
                log.info("%s: %s", point.id, records[point.id]["status"])
                if on_point:
                    on_point(records[point.id])
    return [records[p.id] for p in sweep.points]


def _previous_seconds(folder: Path) -> float | None:
    """Wall time of the point's earlier run (``point.json``), s, if recorded."""
    try:
        return json.loads((folder / POINT_FILE).read_text()).get("wall_seconds")
    except (OSError, ValueError):
        return None
