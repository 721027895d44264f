"""One store for a whole sweep: ``OUT/sweep.duckdb`` and ``OUT/sweep.json``.

``sweep.duckdb`` holds

- ``sweep_point``: one row per point: ``point``, one column per parameter (named by its
  field path, e.g. ``"transmission.load_scaling"``), ``status``, ``error``,
  ``skipped`` (reused from an earlier run), ``wall_seconds`` (s), ``folder``,
  ``scenario_sha256``;
- ``sweep_kpi``: one row per point and paradigm: ``point``, the parameters,
  ``paradigm``, ``status`` and every scalar KPI of the point's ``summary.json`` (units
  as in docs/results.md; dict KPIs one level deep as ``payments.generators``);
- every result table of a run (``feeder_interval``, ``market_interval``, ...; see
  :mod:`gridlayers.results.store`) with the rows of every point, prefixed by
  ``point`` and the parameter columns.

It is rebuilt from the point folders (read with :func:`gridlayers.results.load`) after
every sweep, so it always matches them.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from gridlayers.results.load import RunFolderError, load
from gridlayers.results.store import SCHEMA, TABLES

DATABASE = "sweep.duckdb"
SUMMARY = "sweep.json"


def _q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def parameter_types(records: list[dict[str, Any]], parameters: list[str]) -> dict[str, str]:
    """DuckDB type per parameter: BOOLEAN, BIGINT, DOUBLE or VARCHAR (JSON of other values)."""
    types = {}
    for name in parameters:
        values = [r["parameters"][name] for r in records if name in r["parameters"]]
        if all(isinstance(v, bool) for v in values):
            types[name] = "BOOLEAN"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            types[name] = "BIGINT"
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            types[name] = "DOUBLE"
        else:
            types[name] = "VARCHAR"
    return types


def _value(value: Any, kind: str) -> Any:
    if value is None or kind != "VARCHAR":
        return value
    return value if isinstance(value, str) else json.dumps(value)


def _flat_kpis(kpis: dict[str, Any]) -> dict[str, Any]:
    """Scalar KPIs, and dict KPIs of scalars one level deep as ``key.sub``."""
    out: dict[str, Any] = {}
    for key, value in kpis.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                if isinstance(inner, int | float | str | bool) or inner is None:
                    out[f"{key}.{sub}"] = inner
        elif isinstance(value, int | float | str | bool) or value is None:
            out[key] = value
    return out


def _prefix(record: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    params = record["parameters"]
    return {"point": record["point"], **{p: _value(params.get(p), t) for p, t in types.items()}}


def _frame_with(prefix: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    head = pd.DataFrame({k: [v] * len(frame) for k, v in prefix.items()}, index=frame.index)
    return pd.concat([head, frame], axis=1)


@functools.cache
def run_columns() -> dict[str, tuple[tuple[str, str], ...]]:
    """``(column, DuckDB type)`` of every run table, from the store's schema."""
    con = duckdb.connect()
    try:
        con.execute(SCHEMA)
        return {
            t: tuple((row[0], row[1]) for row in con.execute(f"DESCRIBE {t}").fetchall())
            for t in TABLES
        }
    finally:
        con.close()


def _ensure(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]]) -> None:
    """Create ``table`` with ``columns``, or add those it lacks."""
    present = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    if table not in present:
        spec = ", ".join(f"{_q(name)} {kind}" for name, kind in columns)
        con.execute(f"CREATE TABLE {_q(table)} ({spec})")
        return
    have = {row[0] for row in con.execute(f"DESCRIBE {_q(table)}").fetchall()}
    for name, kind in columns:
        if name not in have:  # a column only some points have
            con.execute(f"ALTER TABLE {_q(table)} ADD COLUMN {_q(name)} {kind}")


def _append(
    con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, fixed: dict[str, str]
) -> None:
    """Insert ``frame``'s rows into ``table`` by column name (``fixed``: known column types)."""
    if frame.empty:
        return
    con.register("frame_", frame)
    try:
        described = con.execute("DESCRIBE frame_").fetchall()
        columns = [
            (name, fixed.get(name) or ("VARCHAR" if "NULL" in kind else kind))
            for name, kind, *_ in described
        ]
        _ensure(con, table, columns)
        con.execute(f"INSERT INTO {_q(table)} BY NAME SELECT * FROM frame_")  # noqa: S608
    finally:
        con.unregister("frame_")


def write_store(
    out: Path, records: list[dict[str, Any]], parameters: list[str]
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Write ``out/sweep.duckdb`` from the point folders; return its path and KPIs per point.

    Parameters
    ----------
    out : Path
        The sweep's folder.
    records : list of dict
        One record per point (:func:`gridlayers.sweep.execute.run_points`).
    parameters : list of str
        The sweep's parameter field paths (one column each).

    Returns
    -------
    (Path, dict)
        The database and, per point, ``summary.json``'s KPIs per paradigm (empty if the
        point stored none).

    """
    types = parameter_types(records, parameters)
    db = out / DATABASE
    # built beside it and moved over it at the end: a sweep killed while writing leaves
    # the previous sweep.duckdb whole (or none), never half of a new one
    building = out / f".{DATABASE}.building"
    building.unlink(missing_ok=True)
    kpis: dict[str, dict[str, Any]] = {}
    kpi_rows = []
    fixed = {"point": "VARCHAR", **types}
    con = duckdb.connect(str(building))
    try:
        for table, columns in run_columns().items():
            _ensure(con, table, [*fixed.items(), *columns])
        for record in records:
            prefix = _prefix(record, types)
            try:
                run = load(record["folder"])
            except RunFolderError:
                run = None
            kpis[record["point"]] = (run.summary.get("paradigms") or {}) if run else {}
            for paradigm, values in kpis[record["point"]].items():
                row = {**prefix, "paradigm": paradigm, "status": record["status"]}
                kpi_rows.append({**row, **_flat_kpis(values)})
            for table in TABLES if run is not None else ():
                _append(con, table, _frame_with(prefix, run.tables[table]), fixed)
        points = pd.DataFrame(
            [
                {
                    **_prefix(r, types),
                    **{k: r.get(k) for k in ("status", "error", "skipped", "wall_seconds")},
                    "folder": r["folder"],
                    "scenario_sha256": r["scenario_sha256"],
                }
                for r in records
            ]
        )
        point_types = {**fixed, "status": "VARCHAR", "error": "VARCHAR", "skipped": "BOOLEAN"}
        _append(con, "sweep_point", points, {**point_types, "wall_seconds": "DOUBLE"})
        _append(con, "sweep_kpi", pd.DataFrame(kpi_rows), {**fixed, "paradigm": "VARCHAR"})
        con.execute("CHECKPOINT")  # everything in the file, nothing left in a .wal
    finally:
        con.close()
    building.with_name(building.name + ".wal").unlink(missing_ok=True)
    building.replace(db)  # atomic on one file system
    return db, kpis


def write_summary(
    out: Path,
    name: str,
    records: list[dict[str, Any]],
    kpis: dict[str, dict[str, Any]],
    metadata: dict[str, Any],
) -> Path:
    """Write ``out/sweep.json``: status, metadata and per point its record and KPIs.

    ``status`` is ``completed`` if every point completed, else ``failed``; wall times in s.
    """
    failed = [r["point"] for r in records if r["status"] != "completed"]
    summary = {
        "sweep": name,
        "status": "failed" if failed else "completed",
        "failed_points": failed,
        "metadata": metadata,
        "points": [{**r, "paradigms": kpis.get(r["point"], {})} for r in records],
    }
    path = out / SUMMARY
    path.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
