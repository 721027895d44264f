"""Read a finished (or failed) run folder back into pandas: :func:`load`.

A run folder (written by :func:`gridlayers.runner.run_scenario`) holds
``results.duckdb``, the same tables as ``<table>.parquet``, ``summary.json`` and
``scenario.resolved.yaml``; ``gridlayers plan`` and ``gridlayers loop`` add
``plan_summary.json`` and ``loop.json`` (a loop over several paradigms writes one
sub-folder per paradigm, each with its ``loop.json``). :func:`load` reads every table from the
database (read-only), or from the Parquet files when the database is missing or
cannot be opened (e.g. another process holds its write lock). Units are those of
:mod:`gridlayers.results.store` (MW, MWh, pu, %, $ over the interval, $/MWh).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from gridlayers.results.store import SCHEMA, TABLES

DATABASE = "results.duckdb"
SUMMARY = "summary.json"
SCENARIO = "scenario.resolved.yaml"
PLAN = "plan_summary.json"
LOOP = "loop.json"
#: Order of the paradigms of a loop folder over several paradigms (others follow by name).
_LOOP_ORDER = ("total_tso", "minimal_dso", "total_dso")


class RunFolderError(ValueError):
    """The folder is not a run folder, or its results cannot be read."""


@dataclass(frozen=True)
class RunResults:
    """Everything a run folder holds, as pandas and plain dicts.

    Attributes
    ----------
    path : Path
        The run folder.
    tables : dict of str to pandas.DataFrame
        One frame per stored table (every name in :data:`gridlayers.results.store.TABLES`,
        empty with the documented columns when the run stored no rows in it).
    summary : dict
        ``summary.json`` (status, metadata, KPIs per paradigm); empty if absent.
    scenario : dict or None
        ``scenario.resolved.yaml`` (every default filled in), if present.
    plan : dict or None
        ``plan_summary.json`` of ``gridlayers plan`` or ``gridlayers loop``, if present.
    loop : dict or None
        ``loop.json`` of ``gridlayers loop``, if present.
    loops : dict of str to dict
        ``<paradigm>/loop.json`` per paradigm of a ``gridlayers loop`` over several
        paradigms (``--paradigm`` repeated), keyed by the record's paradigm (Total TSO,
        Minimal DSO, Total DSO, then others by name); empty otherwise.
    source : str
        Where the tables came from: ``"duckdb"``, ``"parquet"`` or ``"none"``.

    """

    path: Path
    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any] = field(default_factory=dict)
    scenario: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    loop: dict[str, Any] | None = None
    loops: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "none"

    def __getitem__(self, table: str) -> pd.DataFrame:
        """Return the frame of ``table`` (``run["lmp"]``)."""
        return self.tables[table]

    @property
    def paradigms(self) -> list[str]:
        """Paradigms in run order (``summary.json``), else in order of appearance."""
        names = list((self.summary.get("paradigms") or {}).keys())
        for table in ("market_interval", "feeder_interval", "interface_interval"):
            for name in self.tables[table].get("paradigm", pd.Series(dtype=object)).unique():
                if name not in names:
                    names.append(str(name))
        return names


@functools.cache
def _empty_tables() -> dict[str, pd.DataFrame]:
    """Return an empty frame per table with the schema's columns and dtypes."""
    con = duckdb.connect()
    try:
        con.execute(SCHEMA)
        return {table: con.execute(f"SELECT * FROM {table}").df() for table in TABLES}  # noqa: S608
    finally:
        con.close()


def _conform(table: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """``frame`` with every documented column of ``table`` (missing ones all-NA) first."""
    empty = _empty_tables()[table]
    if frame is None:
        return empty.copy()
    extra = [c for c in frame.columns if c not in empty.columns]
    return frame.reindex(columns=[*empty.columns, *extra])


def _read_duckdb(path: Path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        present = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
        return {t: con.execute(f"SELECT * FROM {t}").df() for t in TABLES if t in present}  # noqa: S608
    finally:
        con.close()


def _read_parquet(folder: Path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect()
    try:
        return {
            t: con.execute("SELECT * FROM read_parquet(?)", [str(folder / f"{t}.parquet")]).df()
            for t in TABLES
            if (folder / f"{t}.parquet").is_file()
        }
    finally:
        con.close()


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid JSON ({exc})"
        raise RunFolderError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: expected a JSON object, found {type(data).__name__}"
        raise RunFolderError(msg)
    return data


def _read_tables(folder: Path) -> tuple[dict[str, pd.DataFrame], str]:
    """Tables from the database, else from Parquet; ``({}, "none")`` if neither exists."""
    db = folder / DATABASE
    has_parquet = any((folder / f"{t}.parquet").is_file() for t in TABLES)
    if db.is_file():
        try:
            return _read_duckdb(db), "duckdb"
        except duckdb.Error as exc:
            if not has_parquet:
                msg = f"{db}: cannot be read ({exc}) and there are no Parquet tables beside it"
                raise RunFolderError(msg) from None
    if has_parquet:
        return _read_parquet(folder), "parquet"
    return {}, "none"


def _read_loops(folder: Path) -> dict[str, dict[str, Any]]:
    """``<sub>/loop.json`` of every sub-folder, keyed by the record's paradigm."""
    loops = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        record = _read_json(sub / LOOP)
        if isinstance(record, dict) and isinstance(record.get("plan"), dict):
            loops[str(record.get("paradigm") or sub.name)] = record
    rank = {p: k for k, p in enumerate(_LOOP_ORDER)}
    return dict(sorted(loops.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def load(run_dir: Path | str) -> RunResults:
    """Read a run folder's tables, ``summary.json`` and side files.

    Parameters
    ----------
    run_dir : Path or str
        Folder written by ``gridlayers run``/``compare`` (``results.duckdb`` or the
        Parquet tables, ``summary.json``), or by ``gridlayers plan``/``loop``
        (``plan_summary.json``, ``loop.json``; their tables are then empty), or the
        folder of a loop over several paradigms (one ``<paradigm>/loop.json`` each).

    Returns
    -------
    RunResults
        A frame per stored table (columns and units as in docs/results.md), the summary
        and, when present, the resolved scenario, plan summary and loop record.

    Raises
    ------
    RunFolderError
        ``run_dir`` is not a folder, holds none of the files above, or a file in it
        cannot be read; the message names the path and what is missing.

    """
    folder = Path(run_dir)
    if not folder.is_dir():
        msg = f"{folder}: not a run folder (no such directory)"
        raise RunFolderError(msg)
    tables, source = _read_tables(folder)
    summary, plan, loop = (_read_json(folder / name) for name in (SUMMARY, PLAN, LOOP))
    loops = _read_loops(folder) if loop is None else {}
    if source == "none" and summary is None and plan is None and loop is None and not loops:
        msg = (
            f"{folder}: not a run folder: found none of {DATABASE}, <table>.parquet, "
            f"{SUMMARY}, {PLAN}, {LOOP} or <paradigm>/{LOOP} "
            "(write one with 'gridlayers run SCENARIO --out DIR')"
        )
        raise RunFolderError(msg)
    scenario_path = folder / SCENARIO
    scenario = yaml.safe_load(scenario_path.read_text()) if scenario_path.is_file() else None
    return RunResults(
        path=folder,
        tables={t: _conform(t, tables.get(t)) for t in TABLES},
        summary=summary or {},
        scenario=scenario,
        plan=plan,
        loop=loop,
        loops=loops,
        source=source,
    )
