"""Embedded analytical store for one run's results (DuckDB).

Rows are appended interval by interval, buffered in memory and written in batches
(see :class:`ResultStore`). During a run the collector hands over whole intervals only
and writes them with :meth:`ResultStore.commit`, together with their checkpoint and
progress record (:mod:`gridlayers.results.checkpoint`), in one transaction: the file
never holds part of an interval, whenever the process dies.
Tables (one row per paradigm, interval and element); money is $ over the interval,
power MW, energy MWh, prices $/MWh:

``feeder_interval``  realised physics per LDA (MW, Mvar, pu, %, counts)
``market_interval``  forward and real-time clearing, realised generation, payments
``lmp``              forward and real-time LMP per transmission bus
``bus_voltage``      voltage per feeder bus (pu), if enabled
``branch_interval``  loading (%) and from-bus flow (MW, Mvar) per feeder line and
                     transformer, if enabled
``interface_interval`` cleared and realised interchange per LDA (injection positive),
                     its forward and real-time LMP and two-settlement payments
``participant_interval`` cleared injection per market participant (DSO, aggregator)
``aggregator_interval`` true DER cost, as-offered cost, energy, curtailment, stored energy
``device_interval``  set-point, realised injection (MW), PV availability (MW) and stored
                     energy (MWh) per DER device, if enabled
``dso_interval``     redispatch cost ($), predicted violations, DLMP statistics per LDA
``feeder_slack``     Total TSO: slack the TSO's feeder models used (pu, MVA)
``coordination_interval`` iterative: ADMM rounds, residuals (MW, $/MWh), convergence,
                     final price ($/MWh) and TSO and DSO schedules (MW) per LDA
``area_interface``   Total DSO with sub-areas: per sub-area its resource's range (MW),
                     award (MW), price ($/MWh), PCC voltage (pu), realised AC export
                     (MW), values across its interface and inside it (docs/layers.md)
``event``            non-converged power flows, infeasible DSOs, slack use, failures
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS feeder_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR,
    p_import_mw DOUBLE, q_import_mvar DOUBLE, losses_mw DOUBLE,
    vm_min_pu DOUBLE, vm_max_pu DOUBLE, max_loading_percent DOUBLE,
    voltage_violations INTEGER, thermal_violations INTEGER,
    converged BOOLEAN, retried BOOLEAN
);
CREATE TABLE IF NOT EXISTS market_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP,
    forward_cost_usd DOUBLE, forward_generation_cost_usd DOUBLE, forward_unserved_mw DOUBLE,
    solve_seconds DOUBLE, status VARCHAR,
    generation_cost_usd DOUBLE, generation_mw DOUBLE, bulk_demand_mw DOUBLE, unserved_mw DOUBLE,
    rt_solve_seconds DOUBLE, rt_status VARCHAR,
    generator_payment_usd DOUBLE, bulk_load_payment_usd DOUBLE, congestion_rent_usd DOUBLE,
    tso_variables INTEGER, tso_constraints INTEGER, interface_values INTEGER
);
CREATE TABLE IF NOT EXISTS lmp (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, bus INTEGER, lmp_usd_per_mwh DOUBLE,
    lmp_rt_usd_per_mwh DOUBLE
);
CREATE TABLE IF NOT EXISTS bus_voltage (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR, bus INTEGER, vm_pu DOUBLE
);
CREATE TABLE IF NOT EXISTS branch_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR, branch VARCHAR,
    loading_percent DOUBLE, p_from_mw DOUBLE, q_from_mvar DOUBLE
);
CREATE TABLE IF NOT EXISTS interface_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR,
    cleared_injection_mw DOUBLE, realised_injection_mw DOUBLE,
    lmp_usd_per_mwh DOUBLE, lmp_rt_usd_per_mwh DOUBLE,
    forward_payment_usd DOUBLE, deviation_payment_usd DOUBLE
);
CREATE TABLE IF NOT EXISTS participant_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR, participant VARCHAR,
    cleared_injection_mw DOUBLE
);
CREATE TABLE IF NOT EXISTS aggregator_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR, aggregator VARCHAR,
    der_cost_usd DOUBLE, offer_cost_usd DOUBLE, der_energy_mwh DOUBLE, curtailed_mwh DOUBLE,
    setpoint_mw DOUBLE, realised_mw DOUBLE, stored_start_mwh DOUBLE, stored_end_mwh DOUBLE
);
CREATE TABLE IF NOT EXISTS device_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR, aggregator VARCHAR,
    device VARCHAR, kind VARCHAR, setpoint_mw DOUBLE, realised_mw DOUBLE, available_mw DOUBLE,
    stored_mwh DOUBLE
);
CREATE TABLE IF NOT EXISTS dso_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR,
    redispatch_cost_usd DOUBLE, violations_predicted INTEGER, dlmp_min_usd_per_mwh DOUBLE,
    dlmp_mean_usd_per_mwh DOUBLE, dlmp_max_usd_per_mwh DOUBLE, solve_seconds DOUBLE,
    values_exchanged INTEGER, infeasible BOOLEAN, flex_offered_mw DOUBLE, flex_usable_mw DOUBLE,
    slack_mw DOUBLE, voltage_slack_pu DOUBLE
);
CREATE TABLE IF NOT EXISTS feeder_slack (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR,
    voltage_slack_pu DOUBLE, thermal_slack_mva DOUBLE, buses INTEGER, branches INTEGER,
    slack_mw DOUBLE, penalty_usd DOUBLE
);
CREATE TABLE IF NOT EXISTS coordination_interval (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR, rounds INTEGER,
    converged BOOLEAN, primal_residual_mw DOUBLE, dual_residual_usd_per_mwh DOUBLE,
    price_usd_per_mwh DOUBLE, tso_schedule_mw DOUBLE, dso_schedule_mw DOUBLE,
    tso_seconds DOUBLE
);
CREATE TABLE IF NOT EXISTS area_interface (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, lda VARCHAR, area VARCHAR,
    parent VARCHAR, pcc_bus INTEGER, p_min_mw DOUBLE, p_max_mw DOUBLE, cleared_mw DOUBLE,
    price_usd_per_mwh DOUBLE, vm_pu DOUBLE, realised_mw DOUBLE, interface_values INTEGER,
    internal_values INTEGER, cost_usd_per_h DOUBLE, slack BOOLEAN, fallback VARCHAR,
    solve_seconds DOUBLE
);
CREATE TABLE IF NOT EXISTS event (
    paradigm VARCHAR, interval INTEGER, time TIMESTAMP, source VARCHAR, kind VARCHAR,
    message VARCHAR
);
"""

TABLES = (
    "feeder_interval",
    "market_interval",
    "lmp",
    "bus_voltage",
    "branch_interval",
    "interface_interval",
    "participant_interval",
    "aggregator_interval",
    "device_interval",
    "dso_interval",
    "feeder_slack",
    "coordination_interval",
    "area_interface",
    "event",
)


#: Values :meth:`ResultStore.append_columns` takes as a column (anything else is a scalar).
_SEQUENCES = (list, tuple, np.ndarray)


class _Columns:
    """Rows of consecutive :meth:`ResultStore.append_columns` calls of one shape.

    Sequence columns are concatenated; a scalar column keeps one value per call and is
    repeated when the frame is built (its dtype inferred from the same values as from the
    repeated list, but faster).
    """

    __slots__ = ("counts", "runs", "shape", "values")

    def __init__(self, shape: tuple[tuple[str, bool], ...]) -> None:
        self.shape = shape  # (column, is a sequence) in the caller's order
        self.counts: list[int] = []
        self.runs: dict[str, list[Any]] = {name: [] for name, seq in shape if not seq}
        self.values: dict[str, list[Any]] = {name: [] for name, seq in shape if seq}

    def add(self, columns: dict[str, Any], n: int) -> None:
        self.counts.append(n)
        for name, value in columns.items():
            if name in self.values:
                self.values[name].extend(value)
            else:
                self.runs[name].append(value)

    def frame(self) -> pd.DataFrame:
        data = {}
        for name, seq in self.shape:
            if seq:
                data[name] = _column(self.values[name])
            else:
                data[name] = pd.Series(self.runs[name]).repeat(self.counts).reset_index(drop=True)
        return pd.DataFrame(data)


def _column(values: list[Any]) -> pd.Series:
    """``pd.Series(values)``; numbers and booleans through numpy, which is faster.

    The dtype is the one pandas infers, except that numpy also takes booleans mixed with
    numbers (as 0/1), where pandas makes an object column that DuckDB refuses.
    """
    try:
        array = np.array(values)
    except (TypeError, ValueError, OverflowError):
        array = None
    if array is not None and array.dtype in _NUMPY_FAST:  # same dtype as pandas infers
        return pd.Series(array)
    return pd.Series(values)


#: dtypes numpy gives a list of Python (or numpy) floats, ints or bools, as pandas does.
_NUMPY_FAST = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_))


#: A buffered piece of a table: row dicts, column-wise rows or a DataFrame.
_Chunk = list[dict[str, Any]] | _Columns | pd.DataFrame


class ResultStore:
    """A DuckDB file holding one run's time series.

    Appended rows are buffered in memory, per table, and written in batches: one
    ``INSERT ... SELECT`` per table, all in one transaction (a commit syncs the log to
    disk, milliseconds each). A table's buffer is written as soon as it
    holds ``batch_rows`` rows, and every buffer on :meth:`flush`, before every read
    (:meth:`query`, :attr:`con`, :meth:`export_parquet`) and on :meth:`close`, so
    reads see every row appended before them and closing (also after an error) keeps
    every row appended.

    Parameters
    ----------
    path : Path
        Database file; created if missing, appended to otherwise.
    batch_rows : int
        Rows a table's buffer may hold before it is written; 1 writes every append
        immediately.

    """

    def __init__(self, path: Path, batch_rows: int = 50_000) -> None:
        if batch_rows < 1:
            msg = f"batch_rows must be at least 1, got {batch_rows}"
            raise ValueError(msg)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_rows = batch_rows
        self._con = duckdb.connect(str(self.path))
        self._con.execute(SCHEMA)
        columns: dict[str, set[str]] = {table: set() for table in TABLES}
        for table, column in self._con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall():
            columns.setdefault(table, set()).add(column)
        self._columns = {table: frozenset(columns[table]) for table in TABLES}
        # per table: chunks in append order, each a list of row dicts with the same keys or
        # column-wise rows (consecutive appends of the same shape share one chunk), or a
        # DataFrame
        self._buffers: dict[str, list[_Chunk]] = {table: [] for table in TABLES}
        self._pending = dict.fromkeys(TABLES, 0)
        self._closed = False
        #: Whether a table's buffer is written as soon as it holds ``batch_rows`` rows.
        #: A caller that commits whole intervals (:meth:`commit`) turns it off, so no
        #: part of an interval reaches the database on its own.
        self.auto_write = True

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The database connection, after writing every buffered row (so reads see them)."""
        self.flush()
        return self._con

    def append(self, table: str, rows: list[dict[str, Any]] | pd.DataFrame) -> None:
        """Append rows (dicts with the table's column names, or a DataFrame) to ``table``.

        The rows are buffered (so they must not be modified afterwards) and reach the
        database at the next flush (see the class).
        """
        if self._closed:
            msg = f"result store {self.path} is closed"
            raise RuntimeError(msg)
        if isinstance(rows, pd.DataFrame):
            if rows.empty:
                return
            self._check(table, rows.columns)
            self._buffers[table].append(rows.copy())
        else:
            if not rows or not any(rows):
                return
            self._check(table, rows[0].keys())
            chunks = self._buffers[table]
            last = chunks[-1] if chunks else None
            if isinstance(last, list) and last[0].keys() == rows[0].keys():
                last.extend(rows)
            else:
                chunks.append(list(rows))
        self._pending[table] += len(rows)
        if self.auto_write and self._pending[table] >= self.batch_rows:
            self._write(table)

    def append_columns(self, table: str, columns: dict[str, Any]) -> None:
        """Append rows to ``table`` given column-wise (buffered like :meth:`append`).

        ``columns`` maps column names to equally long sequences (lists, tuples, arrays)
        or to scalars, which are repeated on every row; all scalars make one row.
        """
        if self._closed:
            msg = f"result store {self.path} is closed"
            raise RuntimeError(msg)
        self._check(table, columns.keys())
        lengths = {len(v) for v in columns.values() if isinstance(v, _SEQUENCES)}
        if len(lengths) > 1:
            msg = f"columns for {table!r} differ in length: {sorted(lengths)}"
            raise ValueError(msg)
        n = lengths.pop() if lengths else 1
        if not n or not columns:
            return
        shape = tuple((name, isinstance(v, _SEQUENCES)) for name, v in columns.items())
        chunks = self._buffers[table]
        last = chunks[-1] if chunks else None
        if not (isinstance(last, _Columns) and last.shape == shape):
            last = _Columns(shape)
            chunks.append(last)
        last.add(columns, n)
        self._pending[table] += n
        if self.auto_write and self._pending[table] >= self.batch_rows:
            self._write(table)

    def _check(self, table: str, columns: Any) -> None:
        if table not in TABLES:
            msg = f"unknown result table {table!r}"
            raise ValueError(msg)
        unknown = set(columns) - self._columns[table]
        if unknown:
            msg = f"unknown column(s) {sorted(unknown)} for result table {table!r}"
            raise ValueError(msg)

    def _write(self, table: str) -> None:
        """Insert ``table``'s buffered rows (one INSERT per chunk) and empty its buffer.

        A chunk that fails to insert is dropped (after the others are written) and its
        error raised, so a retry cannot fail on it again.
        """
        chunks, self._buffers[table], self._pending[table] = self._buffers[table], [], 0
        error: Exception | None = None
        for chunk in chunks:
            try:
                self._insert(table, chunk)
            except Exception as exc:  # noqa: BLE001 - write the rest, then raise
                error = error or exc
        if error is not None:
            raise error

    def _insert(self, table: str, chunk: _Chunk) -> None:
        if isinstance(chunk, _Columns):
            frame = chunk.frame()
        elif isinstance(chunk, list):
            frame = pd.DataFrame(chunk)
        else:
            frame = chunk
        if frame.empty:
            return
        columns = ", ".join(frame.columns)
        self._con.register("_rows", frame)
        try:
            self._con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _rows")  # noqa: S608
        finally:
            self._con.unregister("_rows")

    def flush(self) -> None:
        """Write every buffered row to the database.

        In one transaction, so one commit (one sync of the write-ahead log, which costs
        milliseconds). If an INSERT fails, the transaction is rolled back and the buffers
        are written chunk by chunk instead: every chunk that can be written is, and the
        first error is raised.
        """
        tables = [table for table in TABLES if self._pending[table]]
        if not tables:
            return
        try:
            self._con.begin()
        except duckdb.Error:  # a transaction is open already (the caller's): write into it
            self._write_each(tables)
            return
        try:
            for table in tables:
                for chunk in self._buffers[table]:
                    self._insert(table, chunk)
            self._con.commit()
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                self._con.rollback()
            if not isinstance(exc, Exception):  # interrupted: the buffers are kept
                raise
            self._write_each(tables)
            return
        for table in tables:
            self._buffers[table], self._pending[table] = [], 0

    def commit(self, extra: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> None:
        """Write every buffered row and ``extra(con)`` in one transaction, or nothing.

        Unlike :meth:`flush` there is no chunk-by-chunk fallback: if any INSERT or
        ``extra`` fails, the transaction is rolled back, the buffers are kept and the
        error is raised, so the database holds all of it or none of it (a process killed
        during the commit leaves the previous commit). Used to store whole intervals
        together with their checkpoint (:mod:`gridlayers.results.checkpoint`).
        """
        tables = [table for table in TABLES if self._pending[table]]
        self._con.begin()
        try:
            for table in tables:
                for chunk in self._buffers[table]:
                    self._insert(table, chunk)
            if extra is not None:
                extra(self._con)
            self._con.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self._con.rollback()
            raise
        for table in tables:
            self._buffers[table], self._pending[table] = [], 0

    def discard(self) -> int:
        """Drop every buffered row (never written); return how many were dropped."""
        dropped = self.pending_rows()
        self._buffers = {table: [] for table in TABLES}
        self._pending = dict.fromkeys(TABLES, 0)
        return dropped

    def _write_each(self, tables: list[str]) -> None:
        """Write ``tables`` one INSERT (and commit) per chunk; raise the first error."""
        error: Exception | None = None
        for table in tables:
            try:
                self._write(table)
            except Exception as exc:  # noqa: BLE001 - write the other tables, then raise
                error = error or exc
        if error is not None:
            raise error

    def pending_rows(self) -> int:
        """Rows appended but not yet written to the database."""
        return sum(self._pending.values())

    def event(
        self, paradigm: str, interval: int, time: dt.datetime, source: str, kind: str, message: str
    ) -> None:
        """Record a notable event (non-convergence, failure, retry)."""
        self.append(
            "event",
            [
                dict(
                    paradigm=paradigm,
                    interval=interval,
                    time=time,
                    source=source,
                    kind=kind,
                    message=message,
                )
            ],
        )

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a SQL query (after writing every buffered row) and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def export_parquet(self, folder: Path) -> list[Path]:
        """Write every non-empty table to ``folder/<table>.parquet`` and return the paths."""
        con = self.con
        written = []
        for table in TABLES:
            if con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:  # noqa: S608
                path = Path(folder) / f"{table}.parquet"
                con.execute(f"COPY {table} TO '{path}' (FORMAT PARQUET)")
                written.append(path)
        return written

    def close(self) -> None:
        """Write every buffered row and close the database (closing again does nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._con.close()
