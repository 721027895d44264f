"""Results API (gridlayers.results.load) and the HTML report (gridlayers report)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import DEFAULT, REPO, write_scenario
from gridlayers.cli import app
from gridlayers.report import OPERATION, PARADIGM_PLANS, PLANNING, write_report
from gridlayers.report.planning import plans_by_paradigm
from gridlayers.results import RunFolderError, load
from gridlayers.results.store import TABLES
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario

#: Columns of every table as docs/results.md documents them (keys first).
DOCUMENTED = {
    "feeder_interval": "paradigm interval time lda p_import_mw q_import_mvar losses_mw "
    "vm_min_pu vm_max_pu max_loading_percent voltage_violations thermal_violations converged "
    "retried",
    "market_interval": "paradigm interval time forward_cost_usd forward_generation_cost_usd "
    "forward_unserved_mw solve_seconds status generation_cost_usd generation_mw bulk_demand_mw "
    "unserved_mw rt_solve_seconds rt_status generator_payment_usd bulk_load_payment_usd "
    "congestion_rent_usd tso_variables tso_constraints interface_values",
    "lmp": "paradigm interval time bus lmp_usd_per_mwh lmp_rt_usd_per_mwh",
    "bus_voltage": "paradigm interval time lda bus vm_pu",
    "branch_interval": "paradigm interval time lda branch loading_percent p_from_mw q_from_mvar",
    "interface_interval": "paradigm interval time lda cleared_injection_mw "
    "realised_injection_mw lmp_usd_per_mwh lmp_rt_usd_per_mwh forward_payment_usd "
    "deviation_payment_usd",
    "participant_interval": "paradigm interval time lda participant cleared_injection_mw",
    "aggregator_interval": "paradigm interval time lda aggregator der_cost_usd offer_cost_usd "
    "der_energy_mwh curtailed_mwh setpoint_mw realised_mw stored_start_mwh stored_end_mwh",
    "device_interval": "paradigm interval time lda aggregator device kind setpoint_mw "
    "realised_mw available_mw stored_mwh",
    "dso_interval": "paradigm interval time lda redispatch_cost_usd violations_predicted "
    "dlmp_min_usd_per_mwh dlmp_mean_usd_per_mwh dlmp_max_usd_per_mwh solve_seconds "
    "values_exchanged infeasible flex_offered_mw flex_usable_mw slack_mw voltage_slack_pu",
    "feeder_slack": "paradigm interval time lda voltage_slack_pu thermal_slack_mva buses "
    "branches slack_mw penalty_usd",
    "coordination_interval": "paradigm interval time lda rounds converged primal_residual_mw "
    "dual_residual_usd_per_mwh price_usd_per_mwh tso_schedule_mw dso_schedule_mw tso_seconds",
    "area_interface": "paradigm interval time lda area parent pcc_bus p_min_mw p_max_mw "
    "cleared_mw price_usd_per_mwh vm_pu realised_mw interface_values internal_values "
    "cost_usd_per_h slack fallback solve_seconds",
    "event": "paradigm interval time source kind message",
}
#: Key columns, described in the docs' "one row per" column rather than by name.
KEYS = {"paradigm", "interval", "time", "lda", "bus", "aggregator"}
PARADIGMS = ["total_tso", "minimal_dso", "total_dso"]
#: Tables a three-paradigm run with DER and every per-element output fills, and for which
#: paradigms.
FILLED = {
    "feeder_interval": PARADIGMS,
    "market_interval": PARADIGMS,
    "lmp": PARADIGMS,
    "bus_voltage": PARADIGMS,
    "branch_interval": PARADIGMS,
    "interface_interval": PARADIGMS,
    "participant_interval": ["minimal_dso", "total_dso"],  # Total TSO: no bids
    "aggregator_interval": PARADIGMS,
    "device_interval": PARADIGMS,
    "dso_interval": PARADIGMS,
    "feeder_slack": ["total_tso"],  # the TSO's own feeder models
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three paradigms, three quarter-hours around noon, with DER and every per-element output."""
    data = yaml.safe_load(DEFAULT.read_text())
    data["horizon"] = {"start": "2016-06-01 12:00", "intervals": 3, "interval_min": 15}
    data["paradigms"] = PARADIGMS
    data["output"] = {"bus_voltages": True, "branch_loading": True, "device_dispatch": True}
    folder = tmp_path_factory.mktemp("report")
    outcome = run_scenario(load_scenario(write_scenario(folder, data)), folder / "run")
    assert outcome.ok, outcome.summary["error"]
    return outcome.out_dir


@pytest.fixture(scope="module")
def report(run_dir: Path):
    return write_report(run_dir)


# ------------------------------------------------------------------ results API


def test_load_returns_every_table_with_the_documented_columns(run_dir: Path) -> None:
    run = load(run_dir)
    assert run.source == "duckdb"
    assert set(run.tables) == set(TABLES) == set(DOCUMENTED)
    for table, columns in DOCUMENTED.items():
        assert list(run[table].columns) == columns.split(), table
    for table, paradigms in FILLED.items():
        assert set(run[table]["paradigm"]) == set(paradigms), table
        assert run[table]["interval"].nunique() == 3, table
    assert run.paradigms == PARADIGMS
    assert run.summary["status"] == "completed"
    assert set(run.summary["paradigms"]) == set(PARADIGMS)
    assert run.scenario["horizon"]["intervals"] == 3  # the resolved scenario
    assert run.plan is None
    assert run.loop is None
    # units as documented: $ per interval, pu, MWh
    assert run["feeder_interval"]["vm_max_pu"].between(0.8, 1.2).all()
    kpis = run.summary["paradigms"]["total_dso"]
    assert run["market_interval"].query("paradigm == 'total_dso'")[
        "generation_cost_usd"
    ].sum() == pytest.approx(kpis["generation_cost"], rel=1e-9)


def test_docs_name_every_column_load_returns() -> None:
    text = (REPO / "docs" / "results.md").read_text()
    text = text.replace(
        "`dlmp_min/mean/max_usd_per_mwh`",
        "`dlmp_min_usd_per_mwh`, `dlmp_mean_usd_per_mwh`, `dlmp_max_usd_per_mwh`",
    )
    for table, columns in DOCUMENTED.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{table}` |"))
        missing = [c for c in columns.split() if c not in KEYS and f"`{c}`" not in row]
        assert not missing, f"docs/results.md, {table}: {missing}"
    assert "gridlayers.results.load" in text


def test_load_falls_back_to_parquet(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("results.duckdb", "report*"))
    from_db, from_parquet = load(run_dir), load(copy)
    assert from_parquet.source == "parquet"
    for table in TABLES:
        assert list(from_parquet[table].columns) == list(from_db[table].columns), table
        assert len(from_parquet[table]) == len(from_db[table]), table
    assert from_parquet.summary == from_db.summary


def test_load_names_the_folder_and_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    with pytest.raises(RunFolderError, match=re.escape(str(tmp_path))) as info:
        load(tmp_path)
    assert "results.duckdb" in str(info.value)
    assert "summary.json" in str(info.value)
    with pytest.raises(RunFolderError, match="no such directory"):
        load(tmp_path / "missing")


# ------------------------------------------------------------------ report


def test_report_embeds_one_image_per_figure_with_its_title(report) -> None:
    text = report.html.read_text()
    assert report.html.name == "report.html"
    assert not report.skipped
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,[A-Za-z0-9+/=]+">', text)
    assert images == [spec.title for spec in OPERATION]
    assert text.count("<img") == len(OPERATION)
    for title in (
        "Resource cost by paradigm",
        "Payments between parties",
        "Interface schedule vs realised flow",
        "LMP per transmission bus over time",
        "DLMP per LDA over time",
        "Feeder voltage envelopes",
        "Feeder bus voltages",
        "Branch loading",
        "Limit violations and events over time",
        "DER dispatch and curtailment by technology",
        "Computation time and information exchanged",
    ):
        assert f'<h3>{title}</h3><img alt="{title}" src="data:image/png;base64,' in text
    assert "Planned capacity mix" not in text  # no plan in a run folder
    assert "http://" not in text
    assert "https://" not in text


def test_report_writes_every_figure_as_a_non_trivial_png(report) -> None:
    from matplotlib.image import imread

    names = sorted(p.name for p in (report.html.parent / "report").iterdir())
    assert names == sorted(f"{spec.name}.png" for spec in OPERATION)
    assert report.figures == [report.html.parent / "report" / f"{s.name}.png" for s in OPERATION]
    for path in report.figures:
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert path.stat().st_size > 15_000, path.name
        pixels = imread(path)
        assert pixels.shape[1] >= 1000, path.name  # 11 in at 100 dpi
        assert pixels.shape[0] >= 300, path.name
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50, path.name


def test_report_notes_figures_whose_table_is_empty(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "partial"
    skip = shutil.ignore_patterns(
        "results.duckdb", "report*", "dso_interval.parquet", "bus_voltage.parquet", "summary.json"
    )
    shutil.copytree(run_dir, copy, ignore=skip)
    written = write_report(copy)
    assert set(written.skipped) == {"dlmp", "bus_voltage", "resource_cost", "payments"}
    text = written.html.read_text()
    assert "not drawn: bus_voltage is empty" in text
    assert "not drawn: dso_interval has no DLMPs" in text
    assert text.count("<img") == len(OPERATION) - 4
    assert not (copy / "report" / "dlmp.png").exists()


def _plan_folder(folder: Path) -> Path:
    """A plan_summary.json and loop.json shaped like those of ``gridlayers loop``."""
    lda = {"der_pv_mw": 30.0, "der_battery_mw": 5.0, "interface_capacity_mw": 450.0}
    plan = {
        "objective_busd": 5.9,
        "investment_busd": 2.4,
        "operation_busd": 3.5,
        "externalities_busd": 7.2,
        "capacity_mw": {"gas_ct": 0.0, "wind": 120.0, "pv": 4700.0, "battery": 2300.0},
        "ldas": {"me_south": lda},
    }
    rounds = [
        {
            "round": k,
            "plan": {**plan, "objective_busd": 6.2 - 0.1 * k},
            "plan_change_mw": None if k == 1 else 10.0 / k**2,
            "parameters": {"me_south": {"loss_factor": 0.06 / k}},
        }
        for k in (1, 2, 3, 4)
    ]
    loop = {"scenario": "x", "status": "converged", "settings": {"tolerance_mw": 1.0}}
    folder.mkdir()
    (folder / "plan_summary.json").write_text(json.dumps(plan))
    (folder / "loop.json").write_text(json.dumps({**loop, "rounds": rounds, "plan": plan}))
    return folder


def test_report_of_a_loop_folder_draws_the_plan_and_convergence(tmp_path: Path) -> None:
    written = write_report(_plan_folder(tmp_path / "loop"))
    text = written.html.read_text()
    images = re.findall(r'<img alt="([^"]*)"', text)
    assert images == [spec.title for spec in PLANNING]
    assert "Resource cost by paradigm" not in text  # no co-simulation results here
    assert [p.name for p in written.figures] == ["plan_capacity.png", "loop_convergence.png"]


# ------------------------------------------------------------------ command line


def test_cli_report_writes_to_out(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "site" / "day.html"
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report: {target} ({len(OPERATION)} figures)"
    assert target.is_file()
    assert len(list((tmp_path / "site" / "day").glob("*.png"))) == len(OPERATION)


def test_cli_report_of_a_folder_without_results_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {tmp_path}: not a run folder: found none of")
    assert not (tmp_path / "report.html").exists()


def test_report_of_a_loop_over_paradigms_draws_the_plans_side_by_side(tmp_path: Path) -> None:
    base = tmp_path / "loops"
    base.mkdir()
    for k, paradigm in enumerate(("total_tso", "total_dso")):
        folder = _plan_folder(base / paradigm)
        record = json.loads((folder / "loop.json").read_text())
        record["paradigm"] = paradigm
        record["plan"]["capacity_mw"]["wind"] = 120.0 + 100.0 * k
        (folder / "loop.json").write_text(json.dumps(record))
    run = load(base)
    assert list(run.loops) == ["total_tso", "total_dso"]
    assert run.loops["total_dso"]["plan"]["capacity_mw"]["wind"] == 220.0
    figure = plans_by_paradigm(run)
    ax = figure.axes[0]
    # one bar per technology and paradigm, the heights the plans' capacities
    heights = {c.get_label(): [round(b.get_height(), 6) for b in c] for c in ax.containers}
    assert heights == {
        "Total TSO": [0.0, 120.0, 4700.0, 2300.0],
        "Total DSO": [0.0, 220.0, 4700.0, 2300.0],
    }
    written = write_report(base)
    text = written.html.read_text()
    assert re.findall(r'<img alt="([^"]*)"', text) == [s.title for s in PARADIGM_PLANS]
    assert [p.name for p in written.figures] == ["plans_by_paradigm.png", "loops_by_paradigm.png"]


def test_a_paradigm_loop_folder_is_not_read_as_several_paradigms(tmp_path: Path) -> None:
    run = load(_plan_folder(tmp_path / "loop"))
    assert run.loops == {}
    assert plans_by_paradigm(run).startswith("no <paradigm>/loop.json")
