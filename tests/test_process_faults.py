"""Process faults: a hung, stopped or killed simulator ends the run, by name, keeping results.

The default scenario, Total DSO, three midday quarter-hours. A simulator that does not
answer within ``simulators.step_timeout_s`` (in-process: a step that sleeps; in a
subprocess: a process stopped with SIGSTOP) or whose process dies (SIGKILL) ends the
run as failed with a message naming it; the intervals committed before are kept whole.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import duckdb
import psutil
import pytest
from typer.testing import CliRunner

from conftest import write_scenario
from gridlayers.cli import app
from gridlayers.results.checkpoint import progress, stored_intervals
from gridlayers.runner import run_scenario
from gridlayers.scenarios import ScenarioError, load_scenario
from gridlayers.simulators.feeder import FeederSim


def _scenario(data: dict, folder: Path, **simulators: object) -> Path:
    data = {**data, "name": "faults", "paradigms": ["total_dso"]}
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 3, "interval_min": 15}
    data["simulators"] = {"feeder": "python", "market": "python", **simulators}
    return write_scenario(folder, data, "faults.yaml")


def _committed(run: Path) -> tuple[int, dict[str, set[int]]]:
    con = duckdb.connect(str(run / "results.duckdb"), read_only=True)
    try:
        last = progress(con)["total_dso"][0]
        return last, stored_intervals(con, "total_dso")
    finally:
        con.close()


def _feeder_processes() -> list[psutil.Process]:
    """The feeder simulator processes mosaik started (``feeder: cmd``), live ones only."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except psutil.Error:  # exited (a zombie until mosaik reaps it)
            continue
        if "gridlayers.simulators.serve" in cmdline and "feeder" in cmdline:
            found.append(proc)
    return found


def test_an_in_process_step_past_the_time_out_ends_the_run_by_name(
    default_data: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = FeederSim.step

    def hanging(self: FeederSim, time_: int, inputs: dict, max_advance: int) -> int | None:
        if time_ // self._step == 1:
            time.sleep(120)  # interrupted by the watchdog
        return step(self, time_, inputs, max_advance)

    monkeypatch.setattr(FeederSim, "step", hanging)
    path = _scenario(default_data, tmp_path, step_timeout_s=10)  # steps take < 1 s
    started = time.monotonic()
    outcome = run_scenario(load_scenario(path), tmp_path / "run")
    assert time.monotonic() - started < 100
    assert outcome.summary["status"] == "failed"
    assert (
        "simulator Feeder-0 (partition 0: rural, semiurban, urban) did not answer step at "
        "interval 1 (mosaik time 902) within 10 s"
    ) in outcome.summary["error"]
    assert outcome.summary["paradigms"]["total_dso"]["intervals"] == 1
    last, tables = _committed(tmp_path / "run")
    assert last == 0
    assert all(found == {0} for found in tables.values()), tables


@pytest.mark.parametrize(
    ("fault", "pattern"),
    [
        (
            signal.SIGSTOP,
            r"simulator Feeder-\d \(LDA \w+\) did not answer step at interval 1 "
            r"\(mosaik time 902\) within 5 s",
        ),
        (
            signal.SIGKILL,
            r"simulator Feeder-\d \(LDA \w+\) closed its connection during step at interval "
            r"1 \(mosaik time 902\) \(its process crashed or was killed\)",
        ),
    ],
    ids=["stopped", "killed"],
)
def test_a_subprocess_that_stops_or_dies_ends_the_run_by_name(
    default_data: dict, tmp_path: Path, fault: signal.Signals, pattern: str
) -> None:
    path = _scenario(default_data, tmp_path, feeder="cmd", step_timeout_s=5)
    hit: list[psutil.Process] = []

    def fault_after_first(paradigm: str, interval: int) -> None:
        if not hit:
            hit.append(_feeder_processes()[0])
            hit[0].send_signal(fault)

    try:
        outcome = run_scenario(load_scenario(path), tmp_path / "run", on_interval=fault_after_first)
    finally:
        for proc in _feeder_processes():
            proc.kill()
    assert outcome.summary["status"] == "failed"
    assert re.search(pattern, outcome.summary["error"]), outcome.summary["error"]
    assert outcome.summary["paradigms"]["total_dso"]["intervals"] == 1
    last, tables = _committed(tmp_path / "run")
    assert last == 0
    assert all(found == {0} for found in tables.values()), tables


@pytest.mark.parametrize("value", [0, -5, "soon"])
def test_an_invalid_time_out_is_a_one_line_scenario_error(
    default_data: dict, tmp_path: Path, value: object
) -> None:
    path = _scenario(default_data, tmp_path, step_timeout_s=value)
    with pytest.raises(ScenarioError, match="step_timeout_s") as info:
        load_scenario(path)
    assert "\n" not in str(info.value)
    result = CliRunner().invoke(app, ["run", str(path), "--quiet", "--no-report"])
    assert result.exit_code == 2
    assert "step_timeout_s" in result.output
