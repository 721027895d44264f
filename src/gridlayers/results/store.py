"""Embedded analytical store for one run's results (DuckDB).

Rows are written interval by interval, so a run that fails part-way keeps every
interval it finished. Tables (one row per paradigm, interval and element); money is $
over the interval, power MW, energy MWh, prices $/MWh:

``feeder_interval``  realised physics per LDA (MW, Mvar, pu, %, counts)
``market_interval``  forward and real-time clearing, realised generation, payments
``lmp``              forward and real-time LMP per transmission bus
``bus_voltage``      voltage per feeder bus (pu), if enabled
``interface_interval`` cleared and realised interchange per LDA (injection positive),
                     its forward and real-time LMP and two-settlement payments
``participant_interval`` cleared injection per market participant (DSO, aggregator)
``aggregator_interval`` true DER cost, as-offered cost, energy, curtailment, stored energy
``dso_interval``     redispatch cost ($), predicted violations, DLMP statistics per LDA
``feeder_slack``     Total TSO: slack the TSO's feeder models used (pu, MVA)
``event``            non-converged power flows, infeasible DSOs, slack use, failures
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
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
    "interface_interval",
    "participant_interval",
    "aggregator_interval",
    "dso_interval",
    "feeder_slack",
    "event",
)


class ResultStore:
    """A DuckDB file holding one run's time series.

    Parameters
    ----------
    path : Path
        Database file; created if missing, appended to otherwise.

    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.path))
        self.con.execute(SCHEMA)

    def append(self, table: str, rows: list[dict[str, Any]] | pd.DataFrame) -> None:
        """Append rows (dicts with the table's column names, or a DataFrame) to ``table``."""
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        if frame.empty:
            return
        if table not in TABLES:
            msg = f"unknown result table {table!r}"
            raise ValueError(msg)
        columns = ", ".join(frame.columns)
        self.con.register("_rows", frame)
        try:
            self.con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _rows")  # noqa: S608
        finally:
            self.con.unregister("_rows")

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
        """Run a SQL query and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def export_parquet(self, folder: Path) -> list[Path]:
        """Write every non-empty table to ``folder/<table>.parquet`` and return the paths."""
        written = []
        for table in TABLES:
            if self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:  # noqa: S608
                path = Path(folder) / f"{table}.parquet"
                self.con.execute(f"COPY {table} TO '{path}' (FORMAT PARQUET)")
                written.append(path)
        return written

    def close(self) -> None:
        """Flush and close the database."""
        self.con.close()
