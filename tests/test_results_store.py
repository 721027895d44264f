"""The result store's batched writes: reads see every row, errors and closing lose none."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pytest

from gridlayers.results.store import TABLES, ResultStore
from gridlayers.scenarios.schema import Scenario
from gridlayers.simulators.collector import Collector

T0 = dt.datetime(2016, 6, 1, 12, 0)


def _voltages(n: int, interval: int = 0, lda: str = "a") -> list[dict]:
    return [
        dict(paradigm="p", interval=interval, time=T0, lda=lda, bus=b, vm_pu=1.0 + b / 1e3)
        for b in range(n)
    ]


def _count(path: Path, table: str) -> int:
    """Rows of ``table`` as another connection sees them (written, not buffered)."""
    con = duckdb.connect(str(path))
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
    finally:
        con.close()


def test_query_sees_rows_appended_before_it(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    store.append("bus_voltage", _voltages(5))
    store.event("p", 0, T0, "a", "powerflow_retried", "retried")
    assert store.pending_rows() == 6  # buffered, not yet written
    assert store.query("SELECT count(*) AS n FROM bus_voltage")["n"].iloc[0] == 5
    store.append("bus_voltage", _voltages(3, interval=1))
    # the raw connection (used by the KPIs) sees them as well
    assert store.con.execute("SELECT count(*) FROM bus_voltage").fetchone()[0] == 8
    assert store.con.execute("SELECT kind FROM event").fetchall() == [("powerflow_retried",)]
    assert store.pending_rows() == 0
    store.close()


def test_rows_appended_before_an_error_survive_close(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)

    def run() -> None:
        try:
            store.append("bus_voltage", _voltages(7))
            store.event("p", 0, T0, "a", "failure", "boom")
            raise RuntimeError("simulator failed")
        finally:
            store.close()

    with pytest.raises(RuntimeError, match="simulator failed"):
        run()
    assert _count(path, "bus_voltage") == 7
    assert _count(path, "event") == 1
    with pytest.raises(RuntimeError, match="closed"):
        store.append("bus_voltage", _voltages(1))
    store.close()  # closing again does nothing


def test_buffer_is_written_at_the_row_threshold(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path, batch_rows=10)
    store.append("bus_voltage", _voltages(4))
    store.event("p", 0, T0, "a", "failure", "boom")
    assert _count(path, "bus_voltage") == 0
    store.append("bus_voltage", _voltages(7, interval=1))  # 11 rows >= 10: written
    assert _count(path, "bus_voltage") == 11
    assert store.pending_rows() == 1  # the event's buffer is below its threshold
    assert _count(path, "event") == 0
    store.flush()
    assert _count(path, "event") == 1
    store.close()


def test_a_row_that_cannot_be_written_loses_no_other(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)
    store.append("bus_voltage", _voltages(3))
    bad = dict(paradigm="p", interval=0, time=T0, lda="a", p_import_mw="not a number")
    store.append("feeder_interval", [bad])
    store.event("p", 0, T0, "a", "failure", "boom")
    with pytest.raises(duckdb.ConversionException):
        store.flush()
    assert store.pending_rows() == 0  # the bad row is dropped, not retried on close
    assert _count(path, "bus_voltage") == 3
    assert _count(path, "event") == 1
    assert _count(path, "feeder_interval") == 0
    store.close()


def test_batched_tables_equal_immediate_writes(tmp_path: Path) -> None:
    """Batching keeps every value, NULL (None and NaN), dtype and the row order."""

    def fill(store: ResultStore) -> None:
        for k in range(3):
            t = T0 + dt.timedelta(minutes=15 * k)
            key = dict(paradigm="p", interval=k, time=t)
            store.append(
                "dso_interval",
                [
                    dict(
                        **key,
                        lda=lda,
                        redispatch_cost_usd=1.5 * k,
                        violations_predicted=k,
                        infeasible=k == 1,
                        flex_offered_mw=None if k == 0 else 2.0,
                        slack_mw=float("nan") if k == 2 else 0.5,
                    )
                    for lda in ("a", "b")
                ],
            )
            store.append("bus_voltage", _voltages(4, interval=k))
            store.append(
                "feeder_interval",
                [dict(**key, lda="a", p_import_mw=1.0, converged=k != 1, retried=False)],
            )
            store.event("p", k, t, "a", "kind", f"message {k}")

    immediate = ResultStore(tmp_path / "immediate.duckdb", batch_rows=1)
    batched = ResultStore(tmp_path / "batched.duckdb")
    fill(immediate)
    fill(batched)
    assert immediate.pending_rows() == 0
    assert batched.pending_rows() > 0
    for table in TABLES:
        a = immediate.query(f"SELECT * FROM {table}")  # noqa: S608
        b = batched.query(f"SELECT * FROM {table}")  # noqa: S608
        assert list(a.columns) == list(b.columns)
        assert list(a.dtypes) == list(b.dtypes)
        assert a.equals(b), table
    nulls = batched.query("SELECT count(*) - count(flex_offered_mw) AS n FROM dso_interval")
    assert nulls["n"].iloc[0] == 2
    immediate.close()
    batched.close()


def test_column_wise_rows_equal_row_dicts(tmp_path: Path) -> None:
    """``append_columns`` (scalars repeated, sequences as given) stores what ``append`` does."""
    rows_store = ResultStore(tmp_path / "rows.duckdb")
    columns_store = ResultStore(tmp_path / "columns.duckdb")
    for k, lda in enumerate(("a", "b", "a")):
        t = T0 + dt.timedelta(minutes=15 * k)
        vm = {"3": 1.01, "1": float("nan") if k == 1 else 0.99, "2": 1.0 + k / 100}
        vm |= {str(10 + b): 1.0 for b in range(2 * k)}  # 3, 5 and 7 buses
        key = dict(paradigm="p", interval=k, time=t)
        rows_store.append(
            "bus_voltage", [dict(**key, lda=lda, bus=int(b), vm_pu=v) for b, v in vm.items()]
        )
        columns_store.append_columns(
            "bus_voltage", dict(**key, lda=lda, bus=[int(b) for b in vm], vm_pu=list(vm.values()))
        )
        lmp = {"7": [20.0, 21.0], "8": [22.0, None if k == 2 else 23.0]}
        rows_store.append(
            "lmp",
            [
                dict(**key, bus=int(b), lmp_usd_per_mwh=f, lmp_rt_usd_per_mwh=r)
                for b, (f, r) in lmp.items()
            ],
        )
        columns_store.append_columns(
            "lmp",
            dict(
                **key,
                bus=[int(b) for b in lmp],
                lmp_usd_per_mwh=[f for f, _ in lmp.values()],
                lmp_rt_usd_per_mwh=np.array([r for _, r in lmp.values()], dtype=float),
            ),
        )
    columns_store.append_columns("bus_voltage", dict(paradigm="p", interval=9, time=T0, bus=[]))
    rows_store.append("event", [dict(paradigm="p", interval=0, time=T0, kind="x")])
    columns_store.append_columns("event", dict(paradigm="p", interval=0, time=T0, kind="x"))
    assert columns_store.pending_rows() == rows_store.pending_rows() == 15 + 6 + 1
    for table in ("bus_voltage", "lmp", "event"):
        a = rows_store.query(f"SELECT * FROM {table}")  # noqa: S608
        b = columns_store.query(f"SELECT * FROM {table}")  # noqa: S608
        assert list(a.dtypes) == list(b.dtypes)
        assert a.equals(b), table
    nulls = columns_store.query("SELECT count(*) - count(vm_pu) AS n FROM bus_voltage")
    assert nulls["n"].iloc[0] == 1  # NaN is stored as NULL, as for row dicts
    with pytest.raises(ValueError, match="differ in length"):
        columns_store.append_columns("lmp", dict(bus=[1, 2], lmp_usd_per_mwh=[1.0]))
    rows_store.close()
    columns_store.close()


def test_unknown_table_or_column_is_refused_at_append(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.duckdb")
    with pytest.raises(ValueError, match="unknown result table"):
        store.append("nope", [{"paradigm": "p"}])
    with pytest.raises(ValueError, match="unknown column"):
        store.append("event", [{"paradigm": "p", "colour": "red"}])
    store.append("event", [])  # nothing to write
    assert store.pending_rows() == 0
    store.close()


def _collector(
    store: ResultStore, completed: list[int], intervals: int = 96, every: int = 1
) -> Collector:
    sim = Collector()
    sim.init(
        "Collector-0",
        store=store,
        paradigm="p",
        start=T0,
        interval_s=900,
        intervals=intervals,
        scenario_sha256="sha",
        checkpoint_intervals=every,
        on_interval=completed.append,
    )
    sim.create(1, "Collector", sources={"F-0.a": ["feeder", "a"], "M-0.tso": ["market", "tso"]})
    return sim


def _feeder_inputs(vm: dict[int, float], state: float = 0.0) -> dict[str, dict[str, float]]:
    values = {
        "P_import[MW]": 1.0,
        "Q_import[MVAr]": 0.2,
        "P_loss[MW]": 0.01,
        "Vm_min[pu]": min(vm.values()),
        "Vm_max[pu]": max(vm.values()),
        "loading_max[%]": 30.0,
        "voltage_violations[-]": 0,
        "thermal_violations[-]": 0,
        "converged[-]": False,
        "retried[-]": True,
        "Vm[pu]": vm,
        "state": {"v_re": [state], "v_im": [0.0]},
    }
    return {attr: {"F-0.a": value} for attr, value in values.items()}


def _record() -> dict[str, dict]:
    """The market's record of an interval (as ``MarketSim._record`` builds it), minimal."""
    stage = {"generation_cost_usd_per_h": 1.0, "unserved_mw": 0.0, "solve_seconds": 0.1}
    record = {
        "forward": {**stage, "cost_usd_per_h": 2.0, "status": "optimal"},
        "real_time": {**stage, "generation_mw": 5.0, "bulk_demand_mw": 5.0, "status": "optimal"},
        "payments_usd_per_h": {"generators": 1.0, "bulk_loads": -1.0, "congestion_rent": 0.0},
        "lmp": {"1": [20.0, 21.0]},
        "interface": {},
        "participants": {},
        "slack": {},
        "tso_variables": 10,
        "tso_constraints": 5,
        "interface_values": 0,
    }
    return {"record": {"M-0.tso": record}}


def _interval(sim: Collector, k: int, vm: dict[int, float]) -> None:
    """Feed interval ``k``: the feeder at its dispatch phase, then the market's record."""
    sim.step(k * 900 + 2, {"collector": _feeder_inputs(vm, state=float(k))}, 0)
    sim.step(k * 900 + 2, {"collector": _record()}, 0)


def _progress(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path))
    try:
        progress = con.execute("SELECT paradigm, interval FROM progress").fetchall()
        states = con.execute("SELECT interval, simulator, state FROM checkpoint").fetchall()
        return progress + states
    finally:
        con.close()


def test_collector_commits_whole_intervals_with_their_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)
    completed: list[int] = []
    sim = _collector(store, completed)
    vm = {0: 1.01, 1: 0.99, 2: 1.0}
    sim.step(902, {"collector": _feeder_inputs(vm, state=1.0)}, 0)
    assert completed == []  # the market's record of interval 1 is missing
    assert store.pending_rows() == 0  # held by the collector, not in the store
    assert _count(path, "feeder_interval") == 0
    sim.step(902, {"collector": _record()}, 0)
    assert completed == [1]
    assert _count(path, "feeder_interval") == 1
    assert _count(path, "market_interval") == 1
    assert _count(path, "bus_voltage") == 3
    assert _progress(path) == [("p", 1), (1, "feeder:a", '{"v_re": [1.0], "v_im": [0.0]}')]
    store.close()


def test_collector_drops_an_interval_a_failure_left_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)
    completed: list[int] = []
    sim = _collector(store, completed)
    vm = {0: 1.01, 1: 0.99, 2: 1.0}
    _interval(sim, 0, vm)
    sim.step(902, {"collector": _feeder_inputs(vm)}, 0)
    with pytest.raises(KeyError):  # a broken record ends the run in interval 1
        sim.step(902, {"collector": {"record": {"M-0.tso": {}}}}, 0)
    sim.finalize()  # the world shuts down
    assert completed == [0]
    for table in ("feeder_interval", "market_interval", "lmp"):
        assert _count(path, table) == 1, table
    assert _count(path, "bus_voltage") == 3
    assert _count(path, "event") == 1  # interval 0's non-converged power flow
    assert _progress(path)[0] == ("p", 0)
    assert store.pending_rows() == 0
    store.close()


def test_collector_commits_every_n_intervals_and_the_rest_at_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)
    sim = _collector(store, [], every=3)
    vm = {0: 1.0}
    for k in range(2):
        _interval(sim, k, vm)
    assert store.pending_rows() > 0  # two complete intervals, not committed yet
    assert _count(path, "feeder_interval") == 0
    _interval(sim, 2, vm)
    assert store.pending_rows() == 0
    assert _count(path, "feeder_interval") == 3
    assert _progress(path)[0] == ("p", 2)
    _interval(sim, 3, vm)
    sim.finalize()  # a shorter run (or a failure) commits what is complete
    assert _count(path, "feeder_interval") == 4
    assert _progress(path)[:2] == [("p", 3), (3, "feeder:a", '{"v_re": [3.0], "v_im": [0.0]}')]
    store.close()


def test_commit_writes_every_table_or_none(tmp_path: Path) -> None:
    """One transaction: a failure anywhere in it leaves the previous commit, buffers kept."""
    path = tmp_path / "r.duckdb"
    store = ResultStore(path)
    store.append("bus_voltage", _voltages(3))
    store.append("event", [dict(paradigm="p", interval=0, time=T0, source="a", kind="k")])

    def fail(con: duckdb.DuckDBPyConnection) -> None:
        raise RuntimeError("checkpoint failed")

    with pytest.raises(RuntimeError, match="checkpoint failed"):
        store.commit(fail)
    assert _count(path, "bus_voltage") == 0
    assert _count(path, "event") == 0
    assert store.pending_rows() == 4
    store.commit()
    assert _count(path, "bus_voltage") == 3
    assert _count(path, "event") == 1
    store.close()


def test_no_automatic_write_while_intervals_are_committed_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    store = ResultStore(path, batch_rows=2)
    store.auto_write = False
    store.append("bus_voltage", _voltages(5))
    assert _count(path, "bus_voltage") == 0
    store.commit()
    assert _count(path, "bus_voltage") == 5
    store.close()


def test_failed_run_keeps_rows_written_before_the_failure(
    tmp_path: Path, default_data: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's exception path: the failing paradigm's rows are in results.duckdb."""
    from gridlayers import cosim
    from gridlayers.runner import run_scenario

    def failing_world(scenario, paradigm, store, on_interval=None, **resume) -> None:
        store.append("bus_voltage", _voltages(9))
        store.event(paradigm, 0, T0, "a", "failure", "about to fail")
        raise RuntimeError("simulator failed")

    monkeypatch.setattr(cosim, "run_world", failing_world)
    default_data["paradigms"] = ["total_dso"]
    outcome = run_scenario(Scenario.model_validate(default_data), tmp_path / "run")
    assert outcome.summary["status"] == "failed"
    assert "simulator failed" in outcome.summary["error"]
    assert _count(tmp_path / "run" / "results.duckdb", "bus_voltage") == 9
    assert _count(tmp_path / "run" / "results.duckdb", "event") == 1
