"""Property tests: no user input ends in an unhandled exception.

Mutated bundled scenarios, planning scenarios, plan files, network files, sweep files
and random bytes go to the validators. Each either validates or raises the project's validation
error (:class:`ScenarioError`, :class:`PlanFileError`; ``ValueError`` for a network
file) with a message naming the file. One CLI path is checked end to end: exit 2, one
line on stderr, no traceback.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import DEFAULT
from gridlayers.cli import app
from gridlayers.grid.networks import json_network
from gridlayers.loop.validate import PlanFileError, read_plan
from gridlayers.scenarios.load import ScenarioError, load_plan_scenario, load_scenario
from gridlayers.scenarios.resolve import resolve_plan_scenario

BUNDLED = sorted(DEFAULT.parent.glob("*.yaml"))
PLANNING = DEFAULT.with_name("lda-planning.yaml")
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ------------------------------------------------------------------ strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "nope.json", "../x.csv", "/etc/passwd", "a:b", "os:system", ".inf"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path into a nested dict/list document."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += _paths(child, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, document: Any, rounds: int = 3) -> Any:
    """``document`` with up to ``rounds`` keys deleted, values replaced or keys added."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, rounds))):
        paths = _paths(doc)
        if not paths:
            return draw(values)
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "add", "retype"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "retype":
            old = parent[path[-1]]
            parent[path[-1]] = [old] if not isinstance(old, list) else {"x": old}
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        else:
            parent.append(draw(values))
    return doc


def _write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _check_scenario_error(exc: ScenarioError, path: Path) -> None:
    assert path.name in str(exc)
    assert "\n" not in str(exc).strip()


# ------------------------------------------------------------------ scenarios


@pytest.mark.parametrize("bundled", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenarios_validate(bundled: Path) -> None:
    data = yaml.safe_load(bundled.read_text())
    loader = load_scenario if "ldas" in data else load_plan_scenario
    loader(bundled)


@SETTINGS
@given(data=st.data())
def test_mutated_scenarios_validate_or_raise_scenario_error(data: st.DataObject) -> None:
    bundled = data.draw(st.sampled_from(BUNDLED))
    document = yaml.safe_load(bundled.read_text())
    loader = load_scenario if "ldas" in document else load_plan_scenario
    document = data.draw(mutated(document))
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "mutant.yaml", document)
        try:
            loader(path)
        except ScenarioError as exc:
            _check_scenario_error(exc, path)


def _small_scenario() -> dict:
    """The default scenario cut to case9 and one LDA: cheap to resolve (0.1 s warm)."""
    data = yaml.safe_load(DEFAULT.read_text())
    data["ldas"] = data["ldas"][:1]
    data["ldas"][0]["interface_bus"] = 4
    data["transmission"] = {"case": "case9", "load_profile": "flat"}
    return data


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_mutated_scenarios_resolve_or_raise_scenario_error(data: st.DataObject) -> None:
    """Past the schema, resolving references (networks, profiles, strategies) never crashes."""
    from gridlayers.scenarios.resolve import resolve_scenario

    document = data.draw(mutated(_small_scenario(), rounds=2))
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "mutant.yaml", document)
        try:
            resolve_scenario(load_scenario(path), path)
        except ScenarioError as exc:
            _check_scenario_error(exc, path)


def test_an_endless_horizon_is_rejected(tmp_path: Path, default_data: dict) -> None:
    default_data["horizon"]["intervals"] = 10**12
    path = _write(tmp_path, "scenario.yaml", default_data)
    with pytest.raises(ScenarioError, match=r"horizon: the horizon spans .* at most 3660"):
        load_scenario(path)


@SETTINGS
@given(document=values)
def test_random_documents_raise_scenario_error(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "random.yaml", document)
        for loader in (load_scenario, load_plan_scenario):
            with pytest.raises(ScenarioError) as caught:
                loader(path)
            _check_scenario_error(caught.value, path)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes_raise_scenario_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bytes.yaml"
        path.write_bytes(raw)
        with pytest.raises(ScenarioError) as caught:
            load_scenario(path)
        _check_scenario_error(caught.value, path)


# ------------------------------------------------------------------ sweep files

SWEEP = DEFAULT.parent / "sweeps" / "load-and-pv.yaml"


@settings(max_examples=80, deadline=None, derandomize=True)
@given(data=st.data())
def test_mutated_sweeps_validate_or_raise_scenario_error(data: st.DataObject) -> None:
    """A mutated sweep file (its base scenario, grid, set, points) loads or is refused."""
    from gridlayers.sweep.config import load_sweep

    document = yaml.safe_load(SWEEP.read_text())
    document["scenario"] = str(DEFAULT)  # the mutant is written elsewhere
    if data.draw(st.booleans()):  # another base scenario: missing, a folder, not YAML...
        document["scenario"] = data.draw(scalars | st.sampled_from([".", "..", str(SWEEP)]))
    if data.draw(st.booleans()):  # a top-level field replaced (paradigms, grid, set...)
        document[data.draw(st.sampled_from(sorted(document)))] = data.draw(values)
    document = data.draw(mutated(document))
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "sweep.yaml", document)
        try:
            sweep = load_sweep(path)
        except ScenarioError as exc:
            _check_scenario_error(exc, path)
        else:
            assert sweep.points  # a valid sweep has at least one point


@settings(max_examples=60, deadline=None, derandomize=True)
@given(document=values)
def test_random_sweep_documents_raise_scenario_error(document: Any) -> None:
    from gridlayers.sweep.config import load_sweep

    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "sweep.yaml", document)
        with pytest.raises(ScenarioError) as caught:
            load_sweep(path)
        _check_scenario_error(caught.value, path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected a YAML mapping at top level, found NoneType"),
        ("- a\n- b\n", "expected a YAML mapping at top level, found list"),
        ("name: x\nhorizon: {start: 2016-13-45}\n", "invalid YAML value: month must be in 1..12"),
        ("a: " + "[" * 3000 + "]" * 3000, "invalid YAML: nested too deeply"),
        ("name: !!python/object/apply:os.system [echo]\n", "invalid YAML: line 1, column 7"),
        ("? [a]\n: 3\n", "invalid YAML"),
    ],
    ids=["empty", "list", "bad-date", "deep", "python-tag", "unhashable-key"],
)
def test_malformed_yaml_is_one_scenario_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    for loader in (load_scenario, load_plan_scenario):
        with pytest.raises(ScenarioError, match=re.escape(f"{path}: {problem}")):
            loader(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transmission.load_scaling", math.nan),
        ("transmission.meshed_branch_rating_factor", math.inf),
        ("ldas.0.feeder.load_scaling", math.inf),
        ("ldas.0.feeder.sgen_scaling", math.nan),
        ("ldas.0.limits.max_loading_percent", math.inf),
        ("forecast.pv_error_std", math.nan),
        ("settlement.imbalance_price_usd_per_mwh", math.inf),
    ],
)
def test_non_finite_numbers_are_rejected(
    tmp_path: Path, default_data: dict, field: str, value: float
) -> None:
    node = default_data
    *parents, last = field.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[last] = value
    path = _write(tmp_path, "scenario.yaml", default_data)
    with pytest.raises(ScenarioError, match="finite number") as caught:
        load_scenario(path)
    assert field.replace(".0.", "[0].") in str(caught.value)


# ------------------------------------------------------------------ planning scenarios


@settings(max_examples=120, deadline=None, derandomize=True)
@given(data=st.data())
def test_mutated_planning_scenarios_validate_or_raise(data: st.DataObject) -> None:
    document = data.draw(mutated(yaml.safe_load(PLANNING.read_text()), rounds=2))
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "plan.yaml", document)
        try:
            load_plan_scenario(path)
        except ScenarioError as exc:
            _check_scenario_error(exc, path)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    field=st.sampled_from(["zones", "days", "data_dir", "zone"]),
    value=st.one_of(
        st.lists(st.sampled_from(["ME", "XX", "NH", ""]), min_size=1, max_size=3),
        st.lists(st.integers(-2, 12), min_size=1, max_size=3),
        st.text(max_size=12),
    ),
)
def test_planner_references_resolve_or_raise(field: str, value: Any) -> None:
    """Zones, days, data folder and LDA zones are checked against the planner data."""
    document = yaml.safe_load(PLANNING.read_text())
    if field == "zone":
        document["planner"]["lda"]["ldas"][0]["zone"] = value
    else:
        document["planner"][field] = value
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "plan.yaml", document)
        try:
            resolve_plan_scenario(load_plan_scenario(path), path)
        except ScenarioError as exc:
            _check_scenario_error(exc, path)


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (lambda p: p.update(zones=["ME", "XX"]), "planner.zones", "['XX'] not in nodes.csv"),
        (lambda p: p.update(days=[1, 99]), "planner.days", "[99] not among the data's days"),
        (lambda p: p.update(data_dir="no-such-folder"), "planner.data_dir", "found nothing"),
        (
            lambda p: p["lda"]["ldas"][1].update(zone="CT"),
            "planner.lda.ldas[1].zone",
            "expected an onshore zone of the model ['ME', 'NH', 'VT'], found 'CT'",
        ),
    ],
)
def test_planner_references_name_the_field(
    tmp_path: Path, edit: Any, field: str, problem: str
) -> None:
    document = yaml.safe_load(PLANNING.read_text())
    edit(document["planner"])
    path = _write(tmp_path, "plan.yaml", document)
    with pytest.raises(ScenarioError, match=re.escape(f"{path}: {field}: ")) as caught:
        resolve_plan_scenario(load_plan_scenario(path), path)
    assert problem in str(caught.value)


def _replace_second_line_value(text: str, value: str) -> str:
    lines = text.splitlines()
    cells = lines[1].split(",")
    cells[1] = value
    lines[1] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("file", "edit", "problem"),
    [
        ("load.csv", lambda t: _replace_second_line_value(t, "inf"), "non-finite value"),
        ("load.csv", lambda t: _replace_second_line_value(t, "lots"), "data row 1"),
        ("weights_of_scenarios.csv", lambda t: "-0.1\n" + t.split("\n", 1)[1], "negative"),
        ("weights_of_scenarios.csv", lambda t: "0\n" * 10, "sum to 0"),
        ("nodes.csv", lambda t: "\x00\x01 garbage", "nodes.csv"),
    ],
)
def test_planner_data_errors_name_file_and_field(
    tmp_path: Path, file: str, edit: Any, problem: str
) -> None:
    import shutil

    from gridlayers.planner.inputs_isone import bundled_isone8_dir

    data = tmp_path / "data"
    shutil.copytree(bundled_isone8_dir(), data)
    (data / file).write_text(edit((data / file).read_text(encoding="utf-8-sig")))
    document = yaml.safe_load(PLANNING.read_text())
    document["planner"]["data_dir"] = str(data)
    path = _write(tmp_path, "plan.yaml", document)
    with pytest.raises(ScenarioError, match=re.escape(f"{path}: planner.data_dir: ")) as caught:
        resolve_plan_scenario(load_plan_scenario(path), path)
    assert file in str(caught.value)
    assert problem in str(caught.value)


def test_planner_lda_names_are_unique(tmp_path: Path) -> None:
    document = yaml.safe_load(PLANNING.read_text())
    ldas = document["planner"]["lda"]["ldas"]
    ldas[1]["name"] = ldas[0]["name"]
    path = _write(tmp_path, "plan.yaml", document)
    with pytest.raises(ScenarioError, match=r"planner\.lda\.ldas: LDA names must be unique"):
        load_plan_scenario(path)


@pytest.mark.parametrize(
    ("index", "profile", "problem"),
    [
        (0, "/etc/passwd", "unknown SimBench standard generation profile '/etc/passwd'"),
        (2, "mv_rural", "expected 'bus' (the bus's own load), found 'mv_rural'"),
    ],
)
def test_der_profiles_are_resolved(tmp_path: Path, index: int, profile: str, problem: str) -> None:
    """The default's DER rules: 0 is PV, 2 a flexible load; an unknown profile is named."""
    from gridlayers.scenarios.resolve import resolve_scenario

    data = _small_scenario()
    rules = copy.deepcopy(data["ldas"][0]["der"]["penetration"])
    rules[index]["profile"] = profile
    data["ldas"][0]["der"]["penetration"] = rules
    path = _write(tmp_path, "scenario.yaml", data)
    field = f"ldas[0].der.penetration[{index}].profile: "
    with pytest.raises(ScenarioError, match=re.escape(f"{path}: {field}{problem}")):
        resolve_scenario(load_scenario(path), path)


# ------------------------------------------------------------------ plan files

HOURS = 24


def _valid_plan() -> dict:
    hourly = {"import_mw": [1.0] * HOURS, "der_support_mw": [0.5] * HOURS}
    lda = {
        "der_pv_mw": 10.0,
        "der_battery_mw": 5.0,
        "der_battery_mwh": 10.0,
        "interface_capacity_mw": 100.0,
        "hourly": {"1": hourly, "4": copy.deepcopy(hourly)},
    }
    return {"objective_busd": 1.0, "ldas": {"a": lda, "b": copy.deepcopy(lda)}}


def test_a_valid_plan_reads(tmp_path: Path) -> None:
    path = tmp_path / "plan_summary.json"
    path.write_text(json.dumps(_valid_plan()))
    assert read_plan(path, ["a", "b"], [1, 4])["ldas"]["a"]["der_pv_mw"] == 10.0


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda p: p["ldas"]["a"].update(interface_capacity_mw=-1.0), "interface_capacity_mw"),
        (lambda p: p["ldas"]["a"].update(der_pv_mw="lots"), "der_pv_mw"),
        (lambda p: p["ldas"]["a"].update(der_battery_mwh=None), "der_battery_mwh"),
        (lambda p: p["ldas"]["a"].update(der_battery_mw=True), "der_battery_mw"),
        (lambda p: p["ldas"]["b"]["hourly"].pop("4"), "ldas.b.hourly.4"),
        (lambda p: p["ldas"]["a"]["hourly"]["1"]["import_mw"].pop(), "hourly.1.import_mw"),
        (lambda p: p.update(ldas=[1, 2]), "ldas"),
    ],
)
def test_malformed_plans_name_the_field(tmp_path: Path, edit: Any, field: str) -> None:
    plan = _valid_plan()
    edit(plan)
    path = tmp_path / "plan_summary.json"
    path.write_text(json.dumps(plan))
    with pytest.raises(PlanFileError, match="plan_summary.json") as caught:
        read_plan(path, ["a", "b"], [1, 4])
    assert field in str(caught.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_plan_numbers_are_rejected(tmp_path: Path, constant: str) -> None:
    path = tmp_path / "plan_summary.json"
    path.write_text(json.dumps(_valid_plan()).replace("100.0", constant))
    with pytest.raises(PlanFileError, match=f"plan_summary.json.*{constant}"):
        read_plan(path, ["a", "b"], [1, 4])


@SETTINGS
@given(data=st.data())
def test_mutated_plans_read_or_raise_plan_file_error(data: st.DataObject) -> None:
    document = data.draw(st.one_of(mutated(_valid_plan(), rounds=2), values))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan_summary.json"
        path.write_text(json.dumps(document))
        try:
            read_plan(path, ["a", "b"], [1, 4])
        except PlanFileError as exc:
            message = str(exc)
        else:
            message = "plan_summary.json: read"
        assert "plan_summary.json" in message


# ------------------------------------------------------------------ network files


@settings(max_examples=100, deadline=None, derandomize=True)
@given(document=values)
def test_random_network_files_raise_value_error_naming_the_file(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.json"
        path.write_text(json.dumps(document))
        with pytest.raises(ValueError, match=r"net\.json: "):
            json_network(path)


@functools.cache
def _case9_json() -> str:
    import pandapower as pp
    import pandapower.networks as pn

    return pp.to_json(pn.case9())


@st.composite
def _mutated_net(draw: st.DrawFn) -> dict:
    """A pandapower JSON net with a table's JSON replaced or a key dropped or retyped."""
    document = json.loads(_case9_json())
    tables = sorted(document["_object"])
    table = draw(st.sampled_from(tables))
    action = draw(st.sampled_from(["drop", "replace", "object", "module"]))
    if action == "drop":
        del document["_object"][table]
    elif action == "replace":
        document["_object"][table] = draw(values)
    elif action == "object" and isinstance(document["_object"][table], dict):
        document["_object"][table]["_object"] = draw(st.text(max_size=40) | values.map(json.dumps))
    else:
        document["_object"][table] = {"_module": draw(st.text(max_size=12)), "_class": "x"}
    return document


@settings(max_examples=15, deadline=None, derandomize=True)
@given(document=_mutated_net())
def test_mutated_network_files_load_or_raise_value_error(document: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.json"
        path.write_text(json.dumps(document))
        try:
            json_network(path)
        except ValueError as exc:
            assert "net.json: " in str(exc)  # noqa: PT017 - any outcome but a crash is fine


# ------------------------------------------------------------------ CLI end to end


def test_cli_validate_takes_planning_scenarios() -> None:
    result = CliRunner().invoke(app, ["validate", str(PLANNING)])
    assert result.exit_code == 0, result.stderr
    assert "valid planning scenario (3 LDAs" in result.stdout


def test_cli_run_of_a_planning_scenario_says_use_plan() -> None:
    result = CliRunner().invoke(app, ["run", str(PLANNING)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {PLANNING}: not a co-simulation scenario")
    assert "gridlayers plan" in result.stderr


def test_cli_exits_2_without_traceback(tmp_path: Path, default_data: dict) -> None:
    """A mutated scenario through the real console entry point (a subprocess)."""
    default_data["ldas"][0]["feeder"] = {"json": "missing-feeder.json"}
    default_data["forecast"]["load_error_std"] = math.inf
    path = _write(tmp_path, "broken.yaml", default_data)
    done = subprocess.run(
        [sys.executable, "-m", "gridlayers.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith(f"error: {path}: forecast.load_error_std:")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["plan", "{plan}", "--threads", "0"], "--threads"),
        (["plan", "{plan}", "--time-limit", "inf"], "--time-limit"),
        (["plan", "{plan}", "--out", "{file}"], "--out"),
        (["plan", "{bad}"], "planner.days"),
        (["run", "{scenario}", "--out", "{file}"], "--out"),
    ],
)
def test_cli_options_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    bad = yaml.safe_load(PLANNING.read_text())
    bad["planner"]["days"] = [99]
    names = {
        "plan": str(PLANNING),
        "file": str(DEFAULT),
        "bad": str(_write(tmp_path, "bad.yaml", bad)),
        "scenario": str(DEFAULT),
    }
    result = CliRunner().invoke(app, [a.format(**names) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_validate_plan_checks_the_plan_before_co_simulating(tmp_path: Path) -> None:
    scenario = DEFAULT.with_name("lda-loop.yaml")
    names = [a["name"] for a in yaml.safe_load(scenario.read_text())["planner"]["lda"]["ldas"]]
    plan = _valid_plan()
    plan["ldas"] = {n: copy.deepcopy(plan["ldas"]["a"]) for n in names}
    plan["ldas"][names[0]]["interface_capacity_mw"] = -1.0
    path = tmp_path / "plan_summary.json"
    path.write_text(json.dumps(plan))
    args = ["validate-plan", str(scenario), "--plan", str(path), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: {path}: ldas.{names[0]}.interface_capacity_mw: expected a finite number >= 0"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"[1, 2]", b"\xc5\x00 not text", b"{bad json"])
def test_cli_report_of_a_malformed_run_folder_exits_2(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "summary.json").write_bytes(content)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'summary.json'}: ")
