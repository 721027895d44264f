"""Security of user input: no implied code import, loopback listeners, no unpickling.

* A scenario names DSO strategies by import path only with the opt-in
  (``--allow-import`` or ``GRIDLAYERS_ALLOW_IMPORT=1``); without it nothing is imported.
* ``gridlayers serve`` binds to 127.0.0.1 unless ``--host`` says otherwise; mosaik's own
  socket keeps its loopback default.
* A network, plan or scenario file is never unpickled, and a network file cannot make
  pandapower import a module of its choice.
"""

from __future__ import annotations

import inspect
import json
import pickle
import sys
from pathlib import Path

import pandapower as pp
import pandapower.networks as pn
import pytest
import yaml
from typer.testing import CliRunner

from conftest import DEFAULT, write_scenario
from gridlayers.cli import app
from gridlayers.dso.strategies import (
    ALLOW_IMPORT_ENV,
    ImportNotAllowedError,
    resolve_dso_strategy,
)
from gridlayers.grid.networks import json_network
from gridlayers.loop.validate import PlanFileError, read_plan
from gridlayers.scenarios import ScenarioError, load_scenario

MARKER_MODULE = """
from pathlib import Path
Path({marker!r}).write_text("imported")


class Strategy:
    def __init__(self, *args, **kwargs):
        pass
"""


class _Payload:
    """Unpickling this writes a marker file (what a malicious pickle would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.write_text, (self.marker, "unpickled"))


@pytest.fixture
def marker_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An importable module (unique name) that writes a marker file when imported."""
    name = f"gl_marker_{tmp_path.name.replace('-', '_')}"
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(MARKER_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setenv(ALLOW_IMPORT_ENV, "0")  # restored (unset) after the test
    return name, marker


# ------------------------------------------------------------------ import opt-in


def test_import_path_is_refused_without_opt_in(marker_module: tuple[str, Path]) -> None:
    name, marker = marker_module
    with pytest.raises(ImportNotAllowedError, match="--allow-import"):
        resolve_dso_strategy(f"{name}:Strategy")
    assert not marker.exists()
    assert name not in sys.modules


def test_import_path_is_imported_with_opt_in(
    marker_module: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, marker = marker_module
    monkeypatch.setenv(ALLOW_IMPORT_ENV, "1")
    assert resolve_dso_strategy(f"{name}:Strategy").__name__ == "Strategy"
    assert marker.read_text() == "imported"


def test_registered_strategies_need_no_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_IMPORT_ENV, raising=False)
    assert resolve_dso_strategy("optimal") is not None
    assert resolve_dso_strategy("pro_rata") is not None


@pytest.mark.parametrize("value", ["", "yes", "true", "0"])
def test_only_the_value_1_opts_in(
    marker_module: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    name, marker = marker_module
    monkeypatch.setenv(ALLOW_IMPORT_ENV, value)
    with pytest.raises(ImportNotAllowedError):
        resolve_dso_strategy(f"{name}:Strategy")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../../x:y", "os.path:", ":x", "a b:c", "pkg.mod:Cls.attr"])
def test_malformed_import_paths_are_rejected_before_importing(name: str) -> None:
    with pytest.raises(ValueError, match="not an import path"):
        resolve_dso_strategy(name, allow_import=True)


def test_cli_validate_needs_allow_import(
    tmp_path: Path, marker_module: tuple[str, Path], default_data: dict
) -> None:
    """The CLI exits 2 naming the field and the flag; with the flag it imports."""
    name, marker = marker_module
    default_data["ldas"] = default_data["ldas"][:1]
    default_data["ldas"][0]["dso_strategy"] = f"{name}:Strategy"
    path = write_scenario(tmp_path, default_data)
    refused = CliRunner().invoke(app, ["validate", str(path)])
    assert refused.exit_code == 2
    assert "ldas[0].dso_strategy" in refused.stderr
    assert "--allow-import" in refused.stderr
    assert not marker.exists()
    allowed = CliRunner().invoke(app, ["validate", "--allow-import", str(path)])
    assert allowed.exit_code == 0, allowed.stderr
    assert marker.read_text() == "imported"


# ------------------------------------------------------------------ listeners


def test_serve_binds_to_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import gridlayers.simulators.serve as serve

    calls = []
    monkeypatch.setattr(serve, "serve_partition", lambda *args: calls.append(args) or 0)
    result = CliRunner().invoke(app, ["serve", "--runs", "1"])
    assert result.exit_code == 0, result.stderr
    assert calls[0][0] == "127.0.0.1"
    assert "warning" not in result.stderr


def test_serve_warns_when_binding_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    import gridlayers.simulators.serve as serve

    calls = []
    monkeypatch.setattr(serve, "serve_partition", lambda *args: calls.append(args) or 0)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--runs", "1"])  # noqa: S104
    assert result.exit_code == 0
    assert calls[0][0] == "0.0.0.0"  # noqa: S104 - configured explicitly
    assert "warning: binding to 0.0.0.0" in result.stderr


@pytest.mark.parametrize(
    "args", [["--port", "0"], ["--port", "70000"], ["--runs", "-1"], ["--timeout", "0"]]
)
def test_serve_rejects_bad_options(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    import gridlayers.simulators.serve as serve

    monkeypatch.setattr(serve, "serve_partition", lambda *a: pytest.fail("must not serve"))
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {args[0]}")


def test_mosaik_listens_on_loopback() -> None:
    """The co-simulation keeps mosaik's default address (127.0.0.1, any free port)."""
    from mosaik.async_scenario import base_config

    import gridlayers.cosim

    assert base_config["addr"][0] == "127.0.0.1"
    source = inspect.getsource(gridlayers.cosim)
    assert '"addr"' not in source
    assert "'addr'" not in source


# ------------------------------------------------------------------ no unpickling


def _net_document() -> dict:
    return json.loads(pp.to_json(pn.case9()))


def test_network_file_cannot_import_a_module(
    tmp_path: Path, marker_module: tuple[str, Path]
) -> None:
    name, marker = marker_module
    document = _net_document()
    document["_object"]["evil"] = {"_module": name, "_class": "Strategy", "_object": "{}"}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=rf"net\.json: names the Python modules \['{name}'\]"):
        json_network(path)
    assert not marker.exists()


def test_network_module_hidden_in_a_table_string_is_found(
    tmp_path: Path, marker_module: tuple[str, Path]
) -> None:
    name, marker = marker_module
    document = _net_document()
    hidden = {"_module": name, "_class": "Strategy", "_object": "{}"}
    document["_object"]["bus"]["_object"] = json.dumps(
        {"columns": ["x"], "index": [0], "data": [[json.dumps(hidden)]]}
    )
    path = tmp_path / "net.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="names the Python modules"):
        json_network(path)
    assert not marker.exists()


def test_a_valid_network_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    pp.to_json(pn.case9(), str(path))
    assert len(json_network(path).bus) == 9


def test_pickle_payloads_are_never_unpickled(tmp_path: Path, default_data: dict) -> None:
    """A pickle given as network, plan or scenario file is an input error, not code."""
    marker = tmp_path / "unpickled.txt"
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match=r"payload\.pkl: not"):
        json_network(payload)
    with pytest.raises(PlanFileError, match=r"payload\.pkl"):
        read_plan(payload, ["a"])
    with pytest.raises(ScenarioError, match=r"payload\.pkl"):
        load_scenario(payload)
    default_data["transmission"] = {"json": str(payload), "load_profile": "flat"}
    default_data["ldas"][0]["feeder"] = {"json": str(payload)}
    default_data["transmission"]["generator_technologies"] = None
    path = write_scenario(tmp_path, default_data)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "transmission.json" in result.stderr
    assert not marker.exists()


def test_python_yaml_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    path = tmp_path / "tagged.yaml"
    path.write_text(f"name: !!python/object/apply:pathlib.Path.write_text [{str(marker)!r}, x]\n")
    with pytest.raises(ScenarioError, match=r"tagged\.yaml: invalid YAML"):
        load_scenario(path)
    assert not marker.exists()


def test_bundled_scenarios_name_no_import_paths() -> None:
    for path in sorted(DEFAULT.parent.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for lda in data.get("ldas", []):
            assert ":" not in lda.get("dso_strategy", "optimal"), path
