"""What a user gets without asking: a time limit, progress, and a summary without paths.

Independent truth: the files themselves (their bytes and SHA-256 computed here), the
scenario files as written, and this machine's own paths, none of which may appear in
``plan_summary.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gridlayers.cli import app, progress_text
from gridlayers.planner import PlannerConfig, bundled_isone8_dir, plan, read_isone_inputs
from gridlayers.planner.inputs_isone import ISONE8_FILES
from gridlayers.planner.solve import SolveProgress
from gridlayers.scenarios.load import load_plan_scenario

ROOT = Path(__file__).resolve().parents[1]
#: The planning scenarios shipped in scenarios/ (a 'planner:' section, tracked in git).
BUNDLED_PLANNING = ("isone8-so", "isone8-mo", "lda-planning", "lda-loop")
#: One onshore zone, one day, one epoch: a plan in about a second.
TINY = {"zones": ["ME"], "days": [1], "n_epochs": 1, "multi_objective": False}


def _copy_data(tmp_path: Path) -> Path:
    data = tmp_path / "my-isone-copy"
    shutil.copytree(bundled_isone8_dir(), data)
    return data


def _strings(node: object) -> list[str]:
    """Every string (keys included) in a JSON document."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (str(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


# ------------------------------------------------------------------ provenance


def test_plan_summary_names_the_data_set_without_any_path(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    summary = plan(PlannerConfig(data_dir=data, **TINY), tmp_path / "out")
    text = (tmp_path / "out" / "plan_summary.json").read_text()
    for path in (tmp_path, ROOT, bundled_isone8_dir(), Path.home(), Path.cwd()):
        assert str(path) not in text, f"{path} written into plan_summary.json"
    assert not [s for s in _strings(json.loads(text)) if s.startswith(("/", "\\")) or ":\\" in s]
    data_set = summary["data_set"]
    assert data_set["name"] == "my-isone-copy"  # the folder's name, not its path
    assert data_set["bundled"] is False
    assert data_set["path"] is None  # given as an absolute path: not recorded
    expected = {
        name: hashlib.sha256((data / name).read_bytes()).hexdigest() for name in ISONE8_FILES
    }
    assert data_set["files"] == dict(sorted(expected.items()))
    assert "data_source" not in summary


def test_checksum_changes_with_any_data_file_and_only_then(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    bundled = read_isone_inputs(PlannerConfig()).data_set
    copy = read_isone_inputs(PlannerConfig(data_dir=data)).data_set
    assert bundled.name == "isone8"
    assert bundled.bundled is True
    assert copy.sha256 == bundled.sha256  # same bytes, same checksum, wherever they live
    load = data / "load.csv"
    load.write_text(load.read_text().replace(",", ", ", 1))  # same numbers, other bytes
    changed = read_isone_inputs(PlannerConfig(data_dir=data)).data_set
    assert changed.sha256 != copy.sha256
    assert {n for n in copy.files if copy.files[n] != changed.files[n]} == {"load.csv"}
    (data / "README.md").write_text("not read by the adapter\n")
    assert read_isone_inputs(PlannerConfig(data_dir=data)).data_set.sha256 == changed.sha256


def test_relative_data_dir_is_kept_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    data_set = read_isone_inputs(PlannerConfig(data_dir=Path("my-isone-copy"))).data_set
    assert data_set.path == "my-isone-copy"
    assert data_set.name == "my-isone-copy"


# ------------------------------------------------------------------ time limit


def test_every_bundled_planning_scenario_has_a_time_limit() -> None:
    for name in BUNDLED_PLANNING:
        raw = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
        assert raw["planner"].get("time_limit_s"), f"{name}: no planner.time_limit_s"
        limit = load_plan_scenario(ROOT / "scenarios" / f"{name}.yaml").planner.time_limit_s
        assert 0 < limit <= 3600
    # A scenario that says nothing still stops: the field's default is finite.
    assert PlannerConfig().time_limit_s == 600.0
    assert PlannerConfig(time_limit_s=None).time_limit_s is None  # null: no limit


def test_each_planning_scenario_uses_its_measured_solve_method() -> None:
    """docs/planner.md: no monolithic plan on ISO-NE at 600 s; lda-planning faster monolithic."""
    expected = {"isone8-so": "benders", "isone8-mo": "benders", "lda-planning": "monolithic"}
    for name, method in expected.items():
        assert (
            load_plan_scenario(ROOT / "scenarios" / f"{name}.yaml").planner.solve_method == method
        )


@pytest.mark.parametrize(
    ("value", "words"),
    [(-5, "greater than 0"), (0, "greater than 0"), ("soon", "valid number")],
)
def test_invalid_time_limit_exits_2_with_one_line(
    tmp_path: Path, value: object, words: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump({"name": "bad", "planner": {**TINY, "time_limit_s": value}}))
    result = CliRunner().invoke(app, ["plan", str(file), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {file}: planner.time_limit_s:")
    assert words in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag", ["-1", "0"])
def test_invalid_time_limit_flag_exits_2_with_one_line(tmp_path: Path, flag: str) -> None:
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump({"name": "tiny", "planner": TINY}))
    result = CliRunner().invoke(app, ["plan", str(file), "--time-limit", flag])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --time-limit must be a positive number of seconds, got {float(flag)}"
    ]


def test_plan_prints_its_time_limit_first_and_the_flag_overrides_it(tmp_path: Path) -> None:
    file = tmp_path / "tiny.yaml"
    file.write_text(yaml.safe_dump({"name": "tiny", "planner": {**TINY, "time_limit_s": 77}}))
    runner = CliRunner(env={"COLUMNS": "200"})
    first = runner.invoke(app, ["plan", str(file), "--out", str(tmp_path / "a"), "--no-report"])
    assert first.exit_code == 0, first.output
    assert first.stderr.splitlines()[0] == (
        "tiny: solve method monolithic, MIP gap 0.0001, time limit 77 s "
        "(change it with --time-limit SECONDS)"
    )
    assert json.loads((tmp_path / "a" / "plan_summary.json").read_text())["time_limit_s"] == 77
    args = ["plan", str(file), "--out", str(tmp_path / "b"), "--no-report", "--time-limit", "9"]
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "time limit 9 s" in second.stderr.splitlines()[0]
    assert json.loads((tmp_path / "b" / "plan_summary.json").read_text())["time_limit_s"] == 9
    assert re.search(r"time_limit_s\s+│\s+9\s", second.stdout)


# ------------------------------------------------------------------ progress


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        (
            SolveProgress(12, "lp", None, 63.8012, None, 40.0),
            "Benders iteration 12, no plan yet, bound 63.80 $bn",
        ),
        (
            SolveProgress(480, "node", 64.1912, 63.9645, 0.00353, 300.0),
            "Benders iteration 480, plan 64.19 $bn, bound 63.96 $bn, gap 0.35 %",
        ),
        (
            SolveProgress(7, "mip", 1.5, 1.2, 0.2, 3.0),
            "node 7, plan 1.50 $bn, bound 1.20 $bn, gap 20.00 %",
        ),
    ],
)
def test_progress_line_shows_incumbent_bound_and_gap(progress: SolveProgress, text: str) -> None:
    assert progress_text(progress) == text


def test_monolithic_progress_reaches_the_callback_in_busd(tmp_path: Path) -> None:
    """HiGHS's MIP callbacks feed ``on_iteration`` too; the last report matches the summary."""
    reports: list[SolveProgress] = []
    config = PlannerConfig(**{**TINY, "zones": ["ME", "NH", "VT"], "days": [1, 4]})
    summary = plan(config, tmp_path, on_iteration=reports.append)
    assert reports, "no progress from the monolithic MIP"
    assert {p.phase for p in reports} == {"mip"}
    with_plan = [p for p in reports if p.objective is not None]
    assert with_plan
    assert with_plan[-1].objective >= summary["objective_busd"] * (1 - 1e-9)
    assert all(p.bound <= summary["objective_busd"] * (1 + 1e-9) for p in with_plan)


def test_checksum_does_not_depend_on_where_the_copy_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _copy_data(tmp_path)
    first = read_isone_inputs(PlannerConfig(data_dir=data)).data_set
    moved = tmp_path / "elsewhere" / "my-isone-copy"
    moved.parent.mkdir()
    data.rename(moved)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(moved.parent)
    assert read_isone_inputs(PlannerConfig(data_dir=moved)).data_set == first
