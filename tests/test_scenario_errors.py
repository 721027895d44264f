"""Scenario validation: every malformed input gets exit 2 and one line naming file and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEFAULT, write_scenario
from gridlayers.scenarios import ScenarioError, load_scenario
from gridlayers.scenarios.resolve import resolve_scenario


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridlayers.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_default_scenario_validates_and_resolves() -> None:
    scenario = load_scenario(DEFAULT)
    resolve_scenario(scenario, DEFAULT)
    assert [lda.name for lda in scenario.ldas] == ["rural", "semiurban", "urban"]
    assert scenario.horizon.intervals == 96


def test_year_scenario_is_ten_ldas_on_four_feeders_for_a_year() -> None:
    path = DEFAULT.with_name("year.yaml")
    scenario = load_scenario(path)
    resolve_scenario(scenario, path)
    assert len(scenario.ldas) == 10
    assert len({lda.interface_bus for lda in scenario.ldas}) == 10
    assert len({lda.feeder.simbench for lda in scenario.ldas}) == 4
    assert scenario.horizon.intervals == 365 * 96
    assert scenario.paradigms == ["total_dso"]


def test_cli_validate_default_exits_zero() -> None:
    result = _cli("validate", str(DEFAULT))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_cli_schema_is_json_schema() -> None:
    result = _cli("schema")
    schema = json.loads(result.stdout)
    assert schema["title"] == "Scenario"
    assert {"transmission", "ldas", "horizon"} <= set(schema["required"])


def _set(data: dict, path: str, value: object) -> dict:
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()

# (field to change, new value, field path expected in the message, words expected in it)
STRUCTURAL = [
    ("ldas.0.feeder.load_scaling", -1, "ldas[0].feeder.load_scaling", "greater than or equal"),
    ("ldas.1.feeder.colour", "red", "ldas[1].feeder.colour", "unknown field"),
    ("horizon.interval_min", 7, "horizon.interval_min", "multiple or divisor of 15"),
    ("horizon.intervals", _DELETE, "horizon.intervals", "missing"),
    ("ldas.0.limits", {"vm_min_pu": 1.1}, "ldas[0].limits", "below vm_max_pu"),
    ("ldas.2.name", "rural", "ldas", "unique"),
    ("paradigms", ["grand_central"], "paradigms[0]", "passive"),
    ("settlement", {"deviation": "flat"}, "settlement.deviation", "'real_time' or 'penalty'"),
    ("forecast", {"bulk_load_error_std": -0.1}, "forecast.bulk_load_error_std", "greater than"),
    ("ldas.0.limits", {"voltage_margin_pu": 0.2}, "ldas[0].limits.voltage_margin_pu", "less than"),
    (
        "ldas.0.limits",
        {"slack_penalty_usd_per_mwh": 0},
        "ldas[0].limits.slack_penalty_usd_per_mwh",
        "greater than",
    ),
    ("output.device_dispatch", "sometimes", "output.device_dispatch", "valid boolean"),
    ("output.branch_loading", 2, "output.branch_loading", "valid boolean"),
    ("output.branch_loadings", True, "output.branch_loadings", "unknown field"),
    ("coordination", {"tolerance_mw": 0}, "coordination.tolerance_mw", "greater than"),
    ("coordination", {"max_rounds": 0}, "coordination.max_rounds", "greater than or equal"),
]


@pytest.mark.parametrize(("path", "value", "field", "words"), STRUCTURAL)
def test_structural_errors_name_field(
    tmp_path: Path, default_data: dict, path: str, value: object, field: str, words: str
) -> None:
    file = write_scenario(tmp_path, _set(default_data, path, value))
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert info.value.field == field
    assert words in str(info.value)
    assert str(file) in str(info.value)


REFERENCES = [
    (
        "ldas.0.feeder",
        {"simbench": "1-MV-nowhere--0-sw"},
        "ldas[0].feeder.simbench",
        "unknown SimBench code",
    ),
    ("ldas.1.interface_bus", 5000, "ldas[1].interface_bus", "not in the transmission net"),
    ("transmission", {"case": "case_missing"}, "transmission.case", "no network function"),
    ("transmission", {"json": "nowhere.json"}, "transmission.json", "not found"),
    ("transmission.load_profile", "nonsense", "transmission.load_profile", "unknown SimBench"),
    ("transmission.case", "case118", "transmission.generator_technologies", "another case"),
]


@pytest.mark.parametrize(("path", "value", "field", "words"), REFERENCES)
def test_unresolvable_references_name_field(
    tmp_path: Path, default_data: dict, path: str, value: object, field: str, words: str
) -> None:
    file = write_scenario(tmp_path, _set(default_data, path, value))
    with pytest.raises(ScenarioError) as info:
        resolve_scenario(load_scenario(file), file)
    assert info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_malformed_exits_2_with_one_line(
    tmp_path: Path, default_data: dict, command: str
) -> None:
    file = write_scenario(tmp_path, _set(default_data, "ldas.0.feeder.load_scaling", "lots"))
    result = _cli(command, str(file))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: {file}: ldas[0].feeder.load_scaling:")
    assert "'lots'" in lines[0]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: [unclosed\n", "invalid YAML: line"),
        ("- just\n- a list\n", "YAML mapping"),
        ("", "YAML mapping"),
        ("name: !!python/object:os.system x\n", "invalid YAML"),
    ],
)
def test_cli_bad_yaml_exits_2(tmp_path: Path, text: str, words: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    result = _cli("validate", str(file))
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    result = _cli("validate", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "file not found" in result.stderr


def test_relative_json_paths_resolve_against_scenario_folder(
    tmp_path: Path, default_data: dict
) -> None:
    import pandapower as pp
    import pandapower.networks as pn

    (tmp_path / "nets").mkdir()
    pp.to_json(pn.case_illinois200(), str(tmp_path / "nets" / "tx.json"))
    default_data["transmission"] = {"json": "nets/tx.json"}
    file = write_scenario(tmp_path, default_data)
    scenario = load_scenario(file)
    assert scenario.transmission.json_path == tmp_path / "nets" / "tx.json"
    resolve_scenario(scenario, file)
