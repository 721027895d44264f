"""A sweep on a local Dask cluster of 2 workers: one store, a failed point, a rerun.

Four points of the default scenario (Total DSO, 2 quarter-hours): bulk load scaled
by 1.3 and 1.4, a point whose LDA sits at a transmission bus that does not exist, and
one naming a DSO strategy to import (refused even with imports allowed in the
environment), so both fail in the worker. Checked against the points' own run folders (read
with duckdb directly) and against physics (more load costs more).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from gridlayers.cli import app
from gridlayers.sweep import ClusterOptions, load_sweep, run_sweep
from gridlayers.sweep.execute import dask_client

ROOT = Path(__file__).resolve().parents[1]
SCALING = "transmission.load_scaling"


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    folder = tmp_path_factory.mktemp("sweep")
    marker = folder / "imported"
    (folder / "sweep_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nStrategy = 1\n")
    path = folder / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "scenario": str(ROOT / "scenarios" / "default.yaml"),
                "paradigms": ["total_dso"],
                "set": {"horizon.intervals": 2, "output.bus_voltages": False},
                "grid": {SCALING: [1.3, 1.4]},
                "points": [
                    {"ldas[0].interface_bus": 5000},
                    {"ldas[0].dso_strategy": "sweep_evil:Strategy"},
                ],
                "workers": 2,
            },
            sort_keys=False,
        )
    )
    out = folder / "out"
    with pytest.MonkeyPatch.context() as mp:  # the workers inherit both
        mp.setenv("GRIDLAYERS_ALLOW_IMPORT", "1")
        mp.setenv("PYTHONPATH", str(folder))
        mp.syspath_prepend(str(folder))  # spawned workers start with the parent's sys.path
        outcome = run_sweep(load_sweep(path), out)
    assert not marker.exists()  # the strategy module was never imported
    return path, out, outcome


def _point(out: Path, point: str) -> Path:
    return out / "points" / point


def test_points_run_and_the_failed_one_is_recorded(swept: tuple) -> None:
    _, out, outcome = swept
    status = {r["point"]: r["status"] for r in outcome.records}
    assert status == {"p000": "completed", "p001": "completed", "p002": "failed", "p003": "failed"}
    assert outcome.computed == ["p000", "p001", "p002", "p003"]
    assert "would import and run user code" in outcome.records[3]["error"]
    failed = outcome.records[2]
    assert "interface_bus" in failed["error"]
    assert "5000" in failed["error"]
    for point in ("p000", "p001"):
        summary = json.loads((_point(out, point) / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert summary["paradigms"]["total_dso"]["intervals"] == 2
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["status"] == "failed"
    assert sweep["failed_points"] == ["p002", "p003"]


def test_store_holds_every_point_with_its_parameters(swept: tuple) -> None:
    _, out, _ = swept
    con = duckdb.connect(str(out / "sweep.duckdb"), read_only=True)
    try:
        points = con.execute(
            f'SELECT point, "{SCALING}", "ldas[0].interface_bus", status, error '
            "FROM sweep_point ORDER BY point"
        ).fetchall()
        assert [p[:4] for p in points] == [
            ("p000", 1.3, None, "completed"),
            ("p001", 1.4, None, "completed"),
            ("p002", None, 5000, "failed"),
            ("p003", None, None, "failed"),
        ]
        assert "5000" in points[2][4]
        for point, scaling in (("p000", 1.3), ("p001", 1.4)):
            own = duckdb.connect(str(_point(out, point) / "results.duckdb"), read_only=True)
            try:
                for table in ("feeder_interval", "market_interval", "lmp"):
                    expected = own.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
                    columns = [c[0] for c in own.execute(f"DESCRIBE {table}").fetchall()]
                    got = con.execute(
                        f"SELECT {', '.join(columns)} FROM {table} WHERE point = ? ORDER BY ALL",
                        [point],
                    ).fetchall()
                    assert got == expected, (point, table)
                    assert len(expected) > 0
                    scalings = con.execute(
                        f'SELECT DISTINCT "{SCALING}" FROM {table} WHERE point = ?', [point]
                    ).fetchall()
                    assert scalings == [(scaling,)]
            finally:
                own.close()
        kpi = dict(
            con.execute(
                "SELECT point, generation_cost FROM sweep_kpi WHERE paradigm = 'total_dso'"
            ).fetchall()
        )
    finally:
        con.close()
    for point in ("p000", "p001"):
        summary = json.loads((_point(out, point) / "summary.json").read_text())
        assert kpi[point] == summary["paradigms"]["total_dso"]["generation_cost"]
    assert kpi["p001"] > kpi["p000"] * 1.05  # 1.4 against 1.3 times the bulk load


def test_report_compares_the_points(swept: tuple) -> None:
    _, out, outcome = swept
    page = (out / "report.html").read_text()
    assert outcome.report == out / "report.html"
    assert page.count("data:image/png;base64,") == 1
    assert (out / "report" / "kpis.png").stat().st_size > 10_000
    for text in ("p000", "p001", "p002", "failed", SCALING, "resource cost [$]"):
        assert text in page


def test_rerun_computes_only_the_missing_point(swept: tuple) -> None:
    path, out, _ = swept
    before = {p: (_point(out, p) / "results.duckdb").stat().st_mtime_ns for p in ("p000", "p001")}
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(out), "--no-report"])
    assert result.exit_code == 1  # p002 and p003 fail again
    assert "2 point(s) failed: p002, p003" in result.stderr
    records = json.loads((out / "sweep.json").read_text())["points"]
    assert [(r["point"], r["skipped"], r["status"]) for r in records] == [
        ("p000", True, "completed"),
        ("p001", True, "completed"),
        ("p002", False, "failed"),
        ("p003", False, "failed"),
    ]
    after = {p: (_point(out, p) / "results.duckdb").stat().st_mtime_ns for p in ("p000", "p001")}
    assert after == before  # not run again
    con = duckdb.connect(str(out / "sweep.duckdb"), read_only=True)
    try:
        counts = dict(
            con.execute("SELECT point, count(*) FROM market_interval GROUP BY point").fetchall()
        )
    finally:
        con.close()
    assert counts == {"p000": 2, "p001": 2}  # the store still has the reused points


def test_local_cluster_binds_to_loopback() -> None:
    with dask_client(ClusterOptions(workers=1)) as client:
        info = client.scheduler_info()
        addresses = [client.scheduler.address, *info["workers"]]
    assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses


def test_point_past_its_time_limit_is_killed_and_recorded(tmp_path: Path) -> None:
    """``point_timeout_s``: a point still running is killed (whole session) and failed."""
    import time

    from gridlayers.scenarios.load import load_scenario
    from gridlayers.sweep.execute import run_point

    scenario = load_scenario(ROOT / "scenarios" / "default.yaml")
    data = scenario.model_dump(mode="json", by_alias=True)
    started = time.perf_counter()
    record = run_point("p000", data, str(tmp_path / "p000"), timeout_s=1.0)
    assert time.perf_counter() - started < 20  # a default run takes far longer than 1 s
    assert record["status"] == "failed"
    assert "point_timeout_s = 1 s" in record["error"]
    assert not (tmp_path / "p000" / "summary.json").exists()
    leftover = [
        proc.name
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and str(tmp_path) in _cmdline(proc)
    ]
    assert leftover == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
