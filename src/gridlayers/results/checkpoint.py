"""Checkpoints and progress records in the result store: what ``run --resume`` reads.

Two bookkeeping tables live next to the result tables in ``results.duckdb`` (they are
not exported to Parquet and :func:`gridlayers.results.load` does not return them):

``progress``    one row per paradigm: ``interval`` (the last complete interval stored,
                ``-1`` before the first), ``intervals`` (the horizon), ``scenario_sha256``
                (fingerprint of the results-relevant scenario, see :func:`fingerprint`)
                and ``updated`` (UTC time of the commit)
``checkpoint``  one row per paradigm and stateful entity: ``interval`` (the progress
                interval: the state *after* it), ``simulator`` (``kind:name``, e.g.
                ``aggregator:rural.flex`` or ``feeder:rural``, independent of the
                partition layout) and ``state`` (JSON text, no pickle)

:meth:`gridlayers.results.store.ResultStore.commit` writes the buffered rows of whole
intervals, the checkpoint and the progress record in one transaction (through
:func:`write`), so the store never holds a partial interval and the checkpoint always
belongs to the last stored interval.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from gridlayers.results.store import TABLES

if TYPE_CHECKING:
    from gridlayers.scenarios.schema import Scenario

SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
    paradigm VARCHAR PRIMARY KEY, interval INTEGER, intervals INTEGER,
    scenario_sha256 VARCHAR, updated TIMESTAMP
);
CREATE TABLE IF NOT EXISTS checkpoint (
    paradigm VARCHAR, interval INTEGER, simulator VARCHAR, state VARCHAR
);
"""

#: Scenario sections that do not change any stored value (how the simulators run, where
#: the results go, how often they are committed), left out of :func:`fingerprint`.
_NOT_RESULTS = ("simulators", "description")
_OUTPUT_NOT_RESULTS = ("dir", "checkpoint_intervals")


class ResumeError(ValueError):
    """A run folder cannot be resumed (no store, other scenario, nothing to resume)."""


def fingerprint(scenario: dict[str, Any]) -> str:
    """Return the SHA-256 (hex) of the results-relevant part of a JSON-ready scenario.

    Everything but how simulators are started (``simulators``: partitions, processes,
    time-out), ``description``, ``output.dir`` and ``output.checkpoint_intervals``, none
    of which changes a stored value. The seed is included: every random draw of a run
    (forecast errors, DER placement, EV sessions) is made from it when the simulators
    are set up, so no generator state is carried between intervals. The contents of the
    data files the scenario names (network JSON, profiles; ``referenced_files``) are
    included, so a changed file is another scenario; the installed code is not, so a run
    that failed on a bug can be resumed with the fix.
    """
    from gridlayers.scenarios.files import referenced_files

    data = {k: v for k, v in scenario.items() if k not in _NOT_RESULTS}
    data["output"] = {
        k: v for k, v in (data.get("output") or {}).items() if k not in _OUTPUT_NOT_RESULTS
    }
    data["referenced_files"] = referenced_files(data)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``progress`` and ``checkpoint`` tables if missing."""
    con.execute(SCHEMA)


def write(
    con: duckdb.DuckDBPyConnection,
    paradigm: str,
    interval: int,
    intervals: int,
    scenario_sha256: str,
    states: dict[str, Any],
) -> None:
    """Replace ``paradigm``'s checkpoint and progress (inside the caller's transaction).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store's connection, in a transaction.
    paradigm : str
        The paradigm.
    interval : int
        Last complete interval now stored (-).
    intervals : int
        Intervals of the horizon (-).
    scenario_sha256 : str
        :func:`fingerprint` of the run's scenario.
    states : dict of str to JSON-ready value
        State of each stateful entity after ``interval``, by ``kind:name``.

    """
    con.execute("DELETE FROM checkpoint WHERE paradigm = ?", [paradigm])
    if states:
        con.executemany(
            "INSERT INTO checkpoint VALUES (?, ?, ?, ?)",
            [[paradigm, interval, name, json.dumps(state)] for name, state in states.items()],
        )
    con.execute(
        "INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?)",
        [paradigm, interval, intervals, scenario_sha256, dt.datetime.now(dt.UTC)],
    )


def progress(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int, str]]:
    """Return ``{paradigm: (last complete interval, horizon intervals, scenario_sha256)}``.

    Empty if the store has no ``progress`` table (written before checkpoints existed).
    """
    if not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'progress' "
        "AND database_name = current_database() AND schema_name = 'main'"
    ).fetchone()[0]:
        return {}
    rows = con.execute("SELECT paradigm, interval, intervals, scenario_sha256 FROM progress")
    return {p: (int(k), int(n), sha) for p, k, n, sha in rows.fetchall()}


def states(con: duckdb.DuckDBPyConnection, paradigm: str, interval: int) -> dict[str, Any]:
    """Return the checkpointed state of every entity of ``paradigm`` after ``interval``.

    Raises
    ------
    ResumeError
        If the checkpoint is of another interval than asked for.

    """
    rows = con.execute(
        "SELECT interval, simulator, state FROM checkpoint WHERE paradigm = ?", [paradigm]
    ).fetchall()
    stale = sorted({int(k) for k, _, _ in rows} - {interval})
    if stale:
        msg = f"{paradigm}: checkpoint of interval {stale[0]} but progress says {interval}"
        raise ResumeError(msg)
    return {name: json.loads(state) for _, name, state in rows}


def truncate(con: duckdb.DuckDBPyConnection, paradigm: str, last: int) -> int:
    """Delete ``paradigm``'s result rows of intervals after ``last``; return how many.

    One transaction. ``last = -1`` deletes every row of the paradigm (and its
    checkpoint and progress record).
    """
    deleted = 0
    create(con)  # a store written before checkpoints existed has neither table
    con.begin()
    try:
        for table in TABLES:
            sql = f"DELETE FROM {table} WHERE paradigm = ? AND interval > ?"  # noqa: S608
            deleted += con.execute(sql, [paradigm, last]).fetchone()[0]
        if last < 0:
            con.execute("DELETE FROM checkpoint WHERE paradigm = ?", [paradigm])
            con.execute("DELETE FROM progress WHERE paradigm = ?", [paradigm])
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return deleted


def stored_intervals(con: duckdb.DuckDBPyConnection, paradigm: str) -> dict[str, set[int]]:
    """Return the set of intervals each non-empty result table holds for ``paradigm``."""
    out = {}
    for table in TABLES:
        sql = f"SELECT DISTINCT interval FROM {table} WHERE paradigm = ?"  # noqa: S608
        found = {int(k) for (k,) in con.execute(sql, [paradigm]).fetchall()}
        if found:
            out[table] = found
    return out


def resume_plan(db: Path, scenario: Scenario) -> dict[str, tuple[int, dict[str, Any] | None]]:
    """Return where each paradigm of ``scenario`` resumes in store ``db``, and from what.

    Parameters
    ----------
    db : Path
        ``results.duckdb`` of the run to continue (opened read-only).
    scenario : Scenario
        The scenario to continue; its :func:`fingerprint` must be the stored one.

    Returns
    -------
    dict of str to (int, dict or None)
        Per paradigm: the first interval to run (the horizon's length if it is
        complete; 0 if nothing of it was committed) and the checkpointed states to
        start from (``None`` when starting at 0).

    Raises
    ------
    ResumeError
        If ``db`` is missing or holds results of another scenario.

    """
    if not db.is_file():
        msg = f"{db.parent}: no results.duckdb to resume (run without --resume first)"
        raise ResumeError(msg)
    sha = fingerprint(scenario.model_dump(mode="json", by_alias=True))
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = progress(con)
        plan: dict[str, tuple[int, dict[str, Any] | None]] = {}
        for paradigm in scenario.paradigms:
            if paradigm not in stored:
                plan[paradigm] = (0, None)
                continue
            last, _, stored_sha = stored[paradigm]
            if stored_sha != sha:
                msg = (
                    f"{db.parent}: {paradigm} was run with a different scenario (a setting "
                    "that changes results differs); resume with the scenario of that run"
                )
                raise ResumeError(msg)
            plan[paradigm] = (last + 1, states(con, paradigm, last))
    finally:
        con.close()
    return plan
