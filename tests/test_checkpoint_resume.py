"""Crash-safe results and ``run --resume``: an interrupted run continues where it stopped.

The default scenario over four midday quarter-hours, every paradigm the comparison runs,
per-device dispatch stored (battery, EV and flexible-load states show in it). A run that
fails at an interval, or whose process is killed with SIGKILL at a random moment, keeps
only whole committed intervals; resumed, it gives every stored value of an
uninterrupted run (wall-clock timings excepted).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import stored_tables, write_scenario
from gridlayers.agents.aggregator import AggregatorSim
from gridlayers.cli import app
from gridlayers.results import load
from gridlayers.results.checkpoint import ResumeError, progress, stored_intervals
from gridlayers.results.store import TABLES
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario

PARADIGMS = ["total_tso", "minimal_dso", "total_dso"]
INTERVALS = 4
#: Tables with rows in every interval of every paradigm (``event`` and ``feeder_slack``
#: only when something happens, ``participant_interval`` not under Total TSO).
DENSE = (
    "feeder_interval",
    "market_interval",
    "lmp",
    "bus_voltage",
    "interface_interval",
    "aggregator_interval",
    "device_interval",
    "dso_interval",
)


def _scenario_path(data: dict, folder: Path) -> Path:
    data = {**data, "name": "resume", "paradigms": PARADIGMS}
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": INTERVALS, "interval_min": 15}
    # a commit per interval, so that a failure or kill at any interval has one behind it
    data["output"] = {"bus_voltages": True, "device_dispatch": True, "checkpoint_intervals": 1}
    return write_scenario(folder, data, "resume.yaml")


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    """Equal up to LP round-off: solver warm starts (HiGHS bases) are not checkpointed.

    A resumed forward clearing starts cold and reaches the same optimum, its objective
    differing in the last bits (seen: 1e-14 relative); everything else is bit for bit.
    """
    for table in TABLES:
        pd.testing.assert_frame_equal(a[table], b[table], rtol=1e-9, atol=1e-9, obj=table)
    assert len(a["feeder_interval"]) == 3 * INTERVALS * len(PARADIGMS)


def _kpis(summary: dict) -> dict:
    return {
        p: {k: v for k, v in kpis.items() if "seconds" not in k}
        for p, kpis in summary["paradigms"].items()
    }


def _flat(value: object, key: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        return {k: v for name, sub in value.items() for k, v in _flat(sub, f"{key}/{name}").items()}
    return {key: value}


def _assert_kpis(summary: dict, expected: dict) -> None:
    got, want = _flat(_kpis(summary)), _flat(expected)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        else:
            assert got[key] == value, key


def _assert_whole_intervals(folder: Path) -> dict[str, int]:
    """Every table holds exactly the committed intervals; return them per paradigm."""
    con = duckdb.connect(str(folder / "results.duckdb"), read_only=True)
    try:
        done = {p: k for p, (k, _, _) in progress(con).items()}
        for paradigm in PARADIGMS:
            found = stored_intervals(con, paradigm)
            expected = set(range(done.get(paradigm, -1) + 1))
            for table in DENSE:
                assert found.get(table, set()) == expected, (paradigm, table)
            for table in set(found) - set(DENSE):
                assert found[table] <= expected, (paradigm, table)
            if paradigm in done:
                rows = con.execute(
                    "SELECT DISTINCT interval FROM checkpoint WHERE paradigm = ?", [paradigm]
                ).fetchall()
                assert rows == [(done[paradigm],)]
    finally:
        con.close()
    return done


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An uninterrupted run: its scenario file and its tables and KPIs."""
    import yaml

    from conftest import DEFAULT

    folder = tmp_path_factory.mktemp("reference")
    path = _scenario_path(yaml.safe_load(DEFAULT.read_text()), folder)
    outcome = run_scenario(load_scenario(path), folder / "run")
    assert outcome.ok, outcome.summary["error"]
    return path, {"tables": stored_tables(folder / "run"), "kpis": _kpis(outcome.summary)}


def test_resume_after_a_failure_equals_the_uninterrupted_run(
    reference: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, expected = reference
    dispatch = AggregatorSim._dispatch

    def failing(self: AggregatorSim, ent: object, k: int, setpoints: dict) -> None:
        if self._paradigm == "minimal_dso" and k == 2:
            raise RuntimeError("injected failure")
        dispatch(self, ent, k, setpoints)

    monkeypatch.setattr(AggregatorSim, "_dispatch", failing)
    run = tmp_path / "run"
    failed = run_scenario(load_scenario(path), run)
    assert failed.summary["status"] == "failed"
    assert "injected failure" in failed.summary["error"]
    assert failed.summary["paradigms"]["minimal_dso"]["intervals"] == 2  # 0 and 1 kept
    assert _assert_whole_intervals(run) == {"total_tso": INTERVALS - 1, "minimal_dso": 1}

    monkeypatch.setattr(AggregatorSim, "_dispatch", dispatch)
    resumed = run_scenario(load_scenario(path), run, resume=True)
    assert resumed.ok, resumed.summary["error"]
    assert resumed.summary["metadata"]["resumed_at"] == {
        "total_tso": INTERVALS,
        "minimal_dso": 2,
        "total_dso": 0,
    }
    _assert_same(stored_tables(run), expected["tables"])
    _assert_kpis(resumed.summary, expected["kpis"])


_CHILD = """
import sys
from pathlib import Path
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario

def tell(paradigm, interval):
    print(paradigm, interval, flush=True)

run_scenario(load_scenario(Path(sys.argv[1])), Path(sys.argv[2]), on_interval=tell)
"""


def test_a_killed_run_keeps_whole_intervals_and_resumes(
    reference: tuple[Path, dict], tmp_path: Path
) -> None:
    """SIGKILL at a random moment after the first commit; the store opens and resumes.

    The kill lands a random 0-0.3 s after a random reported interval (of any paradigm,
    two intervals before the end at the latest), so inside the next interval's
    computation or commit, or a paradigm's start-up.
    """
    path, expected = reference
    run = tmp_path / "run"
    seed = random.randrange(2**31)
    rng = random.Random(seed)
    # a report in run order with at least two intervals after it (each takes > 0.3 s)
    target = rng.randrange(len(PARADIGMS) * INTERVALS - 2)
    delay = rng.uniform(0.0, 0.3)
    child = subprocess.Popen(  # noqa: S603 - our interpreter and script
        [sys.executable, "-c", textwrap.dedent(_CHILD), str(path), str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for _ in range(target + 1):  # each line: an interval reported (and committed)
            line = child.stdout.readline()
            assert line, f"seed {seed}: the run ended before report {target}"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL, f"seed {seed}: not killed"
    finally:
        child.kill()
        child.wait()
    done = _assert_whole_intervals(run)
    assert done, f"seed {seed}: nothing committed"
    complete = {p: INTERVALS - 1 for p in PARADIGMS}
    assert done != complete, f"seed {seed}: killed after the run had finished"
    loaded = load(run)  # opens and reads like any run folder
    for table in DENSE:
        assert len(loaded[table]) > 0, (seed, table)
    resumed = run_scenario(load_scenario(path), run, resume=True)
    assert resumed.ok, resumed.summary["error"]
    _assert_same(stored_tables(run), expected["tables"])
    _assert_kpis(resumed.summary, expected["kpis"])


def test_resume_refuses_another_scenario_or_no_store(
    reference: tuple[Path, dict], tmp_path: Path
) -> None:
    path, _ = reference
    with pytest.raises(ResumeError, match="no results.duckdb"):
        run_scenario(load_scenario(path), tmp_path / "empty", resume=True)
    other = load_scenario(path).model_copy(update={"seed": 7})
    with pytest.raises(ResumeError, match="different scenario"):  # before writing anything
        run_scenario(other, path.parent / "run", resume=True)
    result = CliRunner().invoke(
        app, ["run", str(path), "--resume", str(tmp_path / "empty"), "--quiet", "--no-report"]
    )
    assert result.exit_code == 2
    assert "--resume" in result.output
    assert "no results.duckdb" in result.output
