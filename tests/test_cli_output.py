"""Console output of the long commands: progress bar, summary table, --quiet, -v.

The commands run as subprocesses with stdout and stderr piped, as in a script.
``TTY_INTERACTIVE=1`` makes rich treat both streams as interactive terminals, so the
progress bar is drawn wherever the code sends it: stdout must still be only the table
and the paths, and the bar must be on stderr.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gridlayers.cli import app
from gridlayers.planner.api import PLAN_PHASES, plan
from gridlayers.scenarios.load import load_plan_scenario

REPO = Path(__file__).resolve().parents[1]
LOOP_SMALL = REPO / "tests" / "data" / "loop-small.yaml"
LONG_COMMANDS = ("run", "compare", "plan", "loop", "validate-plan")
#: A progress bar's description of a co-simulated interval ("total_dso interval 2").
BAR_INTERVAL = re.compile(r"total_dso interval \d")

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TTY_INTERACTIVE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "gridlayers.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default scenario cut to two 15-min intervals under Total DSO only."""
    data = yaml.safe_load((REPO / "scenarios" / "default.yaml").read_text())
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 2, "interval_min": 15}
    data["paradigms"] = ["total_dso"]
    return _write(tmp_path_factory.mktemp("tiny") / "tiny.yaml", data)


@pytest.fixture(scope="module")
def benders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """loop-small with the planner solved by Benders, stopped after one loop round."""
    data = yaml.safe_load(LOOP_SMALL.read_text())
    data["planner"]["solve_method"] = "benders"
    data["loop"]["max_iterations"] = 1
    return _write(tmp_path_factory.mktemp("benders") / "benders.yaml", data)


def _no_bar(stdout: str) -> None:
    assert "\x1b" not in stdout, "escape sequences on stdout"
    assert not BAR_INTERVAL.search(stdout), "progress bar on stdout"
    assert "Running HiGHS" not in stdout, "HiGHS banner on stdout"


# ------------------------------------------------------------------ run


def test_run_pipes_a_clean_summary_table_and_draws_the_bar_on_stderr(
    tiny: Path, tmp_path: Path
) -> None:
    done = _cli("run", tiny, "--out", tmp_path / "o", "--no-report")
    assert done.returncode == 0, done.stderr[-2000:]
    _no_bar(done.stdout)
    assert "default (completed)" in done.stdout
    assert "total resource cost [$]" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1] == f"results: {tmp_path / 'o'}"
    assert BAR_INTERVAL.search(done.stderr), "no progress bar on stderr"
    assert "2/2" in done.stderr
    assert "INFO" not in done.stderr  # library chatter stays off by default


def test_run_quiet_prints_only_the_results_path(tiny: Path, tmp_path: Path) -> None:
    done = _cli("run", tiny, "--out", tmp_path / "o", "--no-report", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"results: {tmp_path / 'o'}"]
    assert done.stderr == ""
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["paradigms"]["total_dso"]["intervals"] == 2


def test_run_verbose_shows_gridlayers_and_mosaik_logs(tiny: Path, tmp_path: Path) -> None:
    done = _cli("run", tiny, "--out", tmp_path / "o", "--no-report", "-v")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "INFO: gridlayers.runner: total_dso: co-simulating 2 intervals" in done.stderr
    assert "INFO: mosaik" in done.stderr  # mosaik's loguru, silenced by default
    assert "DEBUG" not in done.stderr  # -v is INFO; -vv is DEBUG
    _no_bar(done.stdout)
    assert "total resource cost [$]" in done.stdout


# ------------------------------------------------------------------ plan


def test_plan_reports_each_phase_and_every_benders_iteration(benders: Path, tmp_path: Path) -> None:
    config = load_plan_scenario(benders).planner
    phases: list[str] = []
    reports = []
    summary = plan(config, tmp_path, on_phase=phases.append, on_iteration=reports.append)
    assert phases == list(PLAN_PHASES)
    assert summary["benders_iterations"] > 1
    *during, end = reports
    assert [p.iteration for p in during] == list(range(1, summary["benders_iterations"] + 1))
    # Incumbent and bound in $bn over the horizon, as in the summary.
    assert end.objective == pytest.approx(summary["objective_busd"])
    assert end.bound == pytest.approx(summary["objective_bound_busd"])
    assert end.gap == pytest.approx(summary["mip_gap"], abs=1e-12)


def test_plan_ends_with_its_table_on_a_clean_stdout(benders: Path, tmp_path: Path) -> None:
    done = _cli("plan", benders, "--out", tmp_path, "--no-report")
    assert done.returncode == 0, done.stderr[-2000:]
    _no_bar(done.stdout)
    table, last = done.stdout.rstrip().rsplit("\n", 1)
    assert "loop-small: capacity expansion" in table
    assert re.search(r"benders_iterations\s+│\s+\d+", table)
    assert re.search(r"proven lower bound \[\$bn\]\s+│\s+\d+\.\d{3}", table)
    assert re.search(r"gap \[%\]\s+│\s+\d+\.\d{3}", table)
    assert re.search(r"time_limit_s\s+│\s+600", table)
    # The limit is announced before the solve.
    assert "loop-small: solve method benders, MIP gap 0.0001, time limit 600 s" in done.stderr
    assert table.rstrip().endswith("┘")  # the table is the last thing before the path
    assert last == f"results: {tmp_path / 'plan_summary.json'}"
    assert "loop-small: planned" in done.stderr  # the bar, at its end
    assert "4/4" in done.stderr


def test_plan_quiet_prints_only_the_paths(benders: Path, tmp_path: Path) -> None:
    done = _cli("plan", benders, "--out", tmp_path, "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        f"results: {tmp_path / 'plan_summary.json'}",
        f"report: {tmp_path / 'report.html'}",
    ]
    assert done.stderr == ""
    assert (tmp_path / "report.html").is_file()


def test_plan_very_verbose_logs_the_benders_iterations(benders: Path, tmp_path: Path) -> None:
    done = _cli("plan", benders, "--out", tmp_path, "--no-report", "-vv")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "INFO: gridlayers.planner.api: built the model" in done.stderr
    assert re.search(r"DEBUG: gridlayers\.planner\.solve: benders +1 lp", done.stderr)
    assert "Running HiGHS" in done.stderr  # the banner moves to the DEBUG log
    _no_bar(done.stdout)


# ------------------------------------------------------------------ loop, validate-plan


def test_loop_default_prints_rounds_table_and_status_lines(benders: Path, tmp_path: Path) -> None:
    done = _cli("loop", benders, "--paradigm", "total_dso", "--out", tmp_path, "--no-report")
    assert done.returncode == 0, done.stderr[-2000:]
    _no_bar(done.stdout)
    assert "loop-small loop under total_dso: max_iterations" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1] == f"results: {tmp_path / 'loop.json'}"
    assert "total_dso: round 1: planning" in done.stderr


def test_loop_quiet_prints_only_the_results_path(benders: Path, tmp_path: Path) -> None:
    done = _cli("loop", benders, "--paradigm", "total_dso", "--out", tmp_path, "--no-report", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"results: {tmp_path / 'loop.json'}"]
    assert done.stderr == ""
    assert json.loads((tmp_path / "loop.json").read_text())["status"] == "max_iterations"


@pytest.fixture(scope="module")
def plan_file(benders: Path) -> Path:
    """A plan of loop-small (written by ``gridlayers plan -q``)."""
    planned = _cli("plan", benders, "--out", benders.parent / "plan", "--no-report", "-q")
    assert planned.returncode == 0, planned.stderr[-2000:]
    return benders.parent / "plan" / "plan_summary.json"


def test_validate_plan_ends_with_its_table(benders: Path, plan_file: Path, tmp_path: Path) -> None:
    done = _cli("validate-plan", benders, "--plan", plan_file, "--out", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    _no_bar(done.stdout)
    table, last = done.stdout.rstrip().rsplit("\n", 1)
    assert "loop-small: DER plan under total_dso" in table
    assert table.rstrip().endswith("┘")
    assert last == f"results: {tmp_path / 'validate_plan.json'}"
    assert "total_dso: day 4, interval 24" in done.stderr  # the bar
    assert "24/24" in done.stderr


def test_validate_plan_quiet_prints_only_the_results_path(
    benders: Path, plan_file: Path, tmp_path: Path
) -> None:
    done = _cli("validate-plan", benders, "--plan", plan_file, "--out", tmp_path / "v", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"results: {tmp_path / 'v' / 'validate_plan.json'}"]
    assert done.stderr == ""
    assert set(json.loads((tmp_path / "v" / "validate_plan.json").read_text())["ldas"]) == {
        "me_south",
        "vt_chittenden",
    }


# ------------------------------------------------------------------ flags


def _args(command: str, scenario: Path) -> list[str]:
    extra = {"loop": ["--paradigm", "total_dso"], "validate-plan": ["--plan", str(scenario)]}
    return [command, str(scenario), *extra.get(command, [])]


@pytest.mark.parametrize("command", LONG_COMMANDS)
def test_every_long_command_documents_quiet_and_verbose(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--quiet" in result.output
    assert "--verbose" in result.output


@pytest.mark.parametrize("command", LONG_COMMANDS)
def test_quiet_with_verbose_exits_2_before_any_work(command: str, tmp_path: Path) -> None:
    target = tmp_path / "out"
    result = CliRunner().invoke(app, [*_args(command, LOOP_SMALL), "-q", "-v", "--out", target])
    assert result.exit_code == 2
    assert "--quiet and --verbose exclude each other" in result.stderr
    assert not target.exists()


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("--loud", "No such option: --loud"),
        ("-x", "No such option: -x"),
        ("--quiet=yes", "Option '--quiet' does not take a value"),
        ("--verbose=2", "Option '--verbose' does not take a value"),
    ],
)
def test_unknown_or_malformed_flags_exit_2(flag: str, why: str) -> None:
    result = CliRunner().invoke(app, ["run", str(LOOP_SMALL), flag], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert why in result.output
