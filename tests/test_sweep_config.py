"""Sweep files: field paths, overrides, validation errors, and the skip rule (no cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gridlayers.cli import app
from gridlayers.scenarios.load import ScenarioError
from gridlayers.sweep import is_done, load_sweep, scenario_hash
from gridlayers.sweep.config import parse_path, set_path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "scenarios" / "default.yaml"
BUNDLED_SWEEPS = sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))


def _sweep(tmp_path: Path, **fields: object) -> Path:
    data = {"name": "t", "scenario": str(DEFAULT), **fields}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_parse_path() -> None:
    assert parse_path("horizon.intervals") == ["horizon", "intervals"]
    assert parse_path("ldas[2].der.penetration[0].hours") == [
        "ldas", 2, "der", "penetration", 0, "hours"
    ]  # fmt: skip
    assert parse_path("ldas[*].limits.vm_max_pu") == ["ldas", "*", "limits", "vm_max_pu"]
    for bad in ("", ".a", "a..b", "[0].a", "a[x]", "a[0", "a b"):
        with pytest.raises(ValueError, match="is not a field path"):
            parse_path(bad)


def test_set_path_creates_mappings_and_fans_out_over_lists() -> None:
    data = {"ldas": [{"name": "a"}, {"name": "b", "limits": {"vm_max_pu": 1.05}}]}
    set_path(data, "ldas[*].limits.vm_max_pu", 1.04)
    set_path(data, "settlement.deviation", "penalty")
    assert data == {
        "ldas": [
            {"name": "a", "limits": {"vm_max_pu": 1.04}},
            {"name": "b", "limits": {"vm_max_pu": 1.04}},
        ],
        "settlement": {"deviation": "penalty"},
    }
    with pytest.raises(ValueError, match=r"ldas\[5\] does not exist \(ldas has 2"):
        set_path(data, "ldas[5].name", "c")
    with pytest.raises(ValueError, match="is not a list"):
        set_path(data, "settlement[0]", 1)


def test_grid_points_override_one_lda_without_touching_yaml_anchor_siblings(
    tmp_path: Path,
) -> None:
    # default.yaml shares one `der: &der` mapping between its three LDAs (a YAML alias)
    path = _sweep(
        tmp_path,
        paradigms=["total_dso"],
        set={"horizon.intervals": 3},
        grid={
            "transmission.load_scaling": [1.2, 1.3],
            "ldas[0].der.penetration[0].kw_per_kw_peak_load": [0.5, 2.0],
        },
        points=[{"seed": 9}],
    )
    sweep = load_sweep(path)
    assert [p.id for p in sweep.points] == ["p000", "p001", "p002", "p003", "p004"]
    assert sweep.parameters == [
        "transmission.load_scaling",
        "ldas[0].der.penetration[0].kw_per_kw_peak_load",
        "seed",
    ]
    combos = [
        (p.scenario["transmission"]["load_scaling"], p.scenario["ldas"][0]["der"])
        for p in sweep.points
    ]
    assert [(s, d["penetration"][0]["kw_per_kw_peak_load"]) for s, d in combos] == [
        (1.2, 0.5), (1.2, 2.0), (1.3, 0.5), (1.3, 2.0), (1.4, 1.2)
    ]  # fmt: skip
    for p in sweep.points:
        assert p.scenario["horizon"]["intervals"] == 3
        assert p.scenario["paradigms"] == ["total_dso"]
        assert [
            lda["der"]["penetration"][0]["kw_per_kw_peak_load"] for lda in p.scenario["ldas"][1:]
        ] == [1.2, 1.2]
    assert sweep.points[4].scenario["seed"] == 9
    assert len({p.sha256 for p in sweep.points}) == 5
    assert load_sweep(path).points[1].sha256 == sweep.points[1].sha256  # stable across loads


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"grid": {"horizon.intervals": [2, -1]}},
            r"sweep\.yaml: grid: horizon\.intervals = -1: Input should be greater than 0 .*"
            r"Fix: give a value the scenario schema accepts",
        ),
        (
            {"set": {"horizon.intervalz": 3}, "grid": {"seed": [1]}},
            r"sweep\.yaml: set: horizon\.intervalz = 3: unknown field .*Fix: remove it or check",
        ),
        (
            {"points": [{"ldas[7].limits.vm_max_pu": 1.0}]},
            r"sweep\.yaml: points\[0\]: ldas\[7\]\.limits\.vm_max_pu: ldas\[7\] does not exist",
        ),
        ({"grid": {"seed": []}}, r"sweep\.yaml: grid: .*have no values"),
        ({}, r"sweep\.yaml: .*needs 'grid' or 'points'"),
        ({"grid": {"seed": [1]}, "paradigms": ["central"]}, r"sweep\.yaml: paradigms\[0\]"),
        ({"grid": {"seed": [1]}, "workerz": 2}, r"sweep\.yaml: workerz: unknown field"),
    ],
)
def test_invalid_sweep_names_the_sweep_file_and_the_parameter(
    tmp_path: Path, fields: dict, expected: str
) -> None:
    path = _sweep(tmp_path, **fields)
    with pytest.raises(ScenarioError, match=expected) as info:
        load_sweep(path)
    assert info.value.file == path


def test_cli_invalid_sweep_exits_2_with_one_line(tmp_path: Path) -> None:
    path = _sweep(tmp_path, grid={"transmission.load_scaling": ["high"]})
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: grid: transmission.load_scaling = 'high': ")
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_sweep_file_is_data_only(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    path = tmp_path / "evil.yaml"
    path.write_text(
        f"name: !!python/object/apply:pathlib.Path.write_text [{str(marker)!r}, x]\n"
        f"scenario: {DEFAULT}\ngrid: {{seed: [1]}}\n"
    )
    result = CliRunner().invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2
    assert "invalid YAML" in result.stderr
    assert not marker.exists()


def _fake_run(folder: Path, scenario: dict, status: str) -> None:
    folder.mkdir(parents=True)
    (folder / "scenario.resolved.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    (folder / "summary.json").write_text(json.dumps({"status": status}))


def test_is_done_needs_a_completed_run_of_the_same_scenario(tmp_path: Path) -> None:
    sweep = load_sweep(_sweep(tmp_path, grid={"seed": [1, 2]}))
    one, two = sweep.points
    assert scenario_hash(one.scenario) == one.sha256
    _fake_run(tmp_path / "a", one.scenario, "completed")
    _fake_run(tmp_path / "b", one.scenario, "failed")
    assert is_done(tmp_path / "a", one.sha256)
    assert not is_done(tmp_path / "a", two.sha256)  # another scenario ran there
    assert not is_done(tmp_path / "b", one.sha256)  # failed
    assert not is_done(tmp_path / "missing", one.sha256)
    (tmp_path / "a" / "summary.json").unlink()
    assert not is_done(tmp_path / "a", one.sha256)


def test_a_changed_network_file_is_another_scenario(tmp_path: Path) -> None:
    """Same values, same path, other file contents: resume refuses, the sweep reruns."""
    from gridlayers.results.checkpoint import fingerprint
    from gridlayers.scenarios.files import referenced_files
    from gridlayers.sweep.execute import FILES

    net = tmp_path / "tx.json"
    net.write_text('{"bus": 1}')
    scenario = yaml.safe_load(DEFAULT.read_text())
    scenario["transmission"] = {"json": str(net)}
    before_print, before_files = fingerprint(scenario), referenced_files(scenario)
    assert before_files == {str(net): referenced_files({"x": [str(net)]})[str(net)]}
    folder = tmp_path / "p"
    _fake_run(folder, scenario, "completed")
    (folder / FILES).write_text(json.dumps(before_files))
    sha = scenario_hash(scenario)
    assert is_done(folder, sha, referenced_files(scenario))
    net.write_text('{"bus": 2}')
    assert fingerprint(scenario) != before_print
    assert not is_done(folder, sha, referenced_files(scenario))
    net.write_text('{"bus": 1}')  # the same contents again: the same scenario
    assert fingerprint(scenario) == before_print
    assert is_done(folder, sha, referenced_files(scenario))


@pytest.mark.parametrize("path", BUNDLED_SWEEPS, ids=lambda p: p.stem)
def test_bundled_sweeps_load(path: Path) -> None:
    sweep = load_sweep(path)
    assert len(sweep.points) >= 2
