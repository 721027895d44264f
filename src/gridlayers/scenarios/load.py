"""Reading scenario files: safe YAML, schema validation, and one-line error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gridlayers.scenarios.schema import PlanScenario, Scenario


@dataclass(frozen=True)
class ScenarioError(Exception):
    """A scenario that cannot be used, explained in one line.

    Parameters
    ----------
    file : Path
        The scenario file (or the referenced file that is wrong).
    field : str
        Dotted field path, e.g. ``ldas[0].feeder.simbench``; empty for file-level errors.
    problem : str
        What was expected and what was found.
    fix : str
        How to fix it (may be empty).

    """

    file: Path
    field: str
    problem: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}: " if self.field else f"{self.file}: "
        return where + self.problem + (f" Fix: {self.fix}" if self.fix else "")


def field_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as ``ldas[0].feeder.simbench``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part)
            name = name if name.isprintable() and name.strip() else repr(name)  # one line
            out += ("." if out else "") + name
    return out


def _explain(err: dict[str, Any], file: Path) -> ScenarioError:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    kind = err["type"]
    found = err.get("input")
    if kind == "extra_forbidden":
        return ScenarioError(
            file,
            field_path(loc),
            "unknown field",
            "remove it or check its spelling against `gridlayers schema`.",
        )
    if kind == "missing":
        return ScenarioError(file, field_path(loc), "required field is missing", "add it.")
    message = err["msg"].removeprefix("Value error, ")
    return ScenarioError(file, field_path(loc), f"{message} (found {_shorten(found)})")


#: Longest rendering of a found value in an error message (characters).
FOUND_MAX_CHARS = 80


def _shorten(value: object) -> str:
    """``repr(value)``, cut to :data:`FOUND_MAX_CHARS` (a found value may be huge)."""
    text = repr(value)
    return text if len(text) <= FOUND_MAX_CHARS else text[: FOUND_MAX_CHARS - 3] + "..."


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with a safe loader, raising :class:`ScenarioError` on bad input."""
    if not path.is_file():
        found = "a folder" if path.is_dir() else "nothing"
        raise ScenarioError(path, "", f"file not found (found {found})", "check the path.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(path, "", f"cannot read the file: {exc.strerror or exc}") from None
    except RecursionError:
        raise ScenarioError(path, "", "invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(path, "", f"invalid YAML: {where}{problem}") from None
    except UnicodeDecodeError:
        raise ScenarioError(path, "", "not a UTF-8 text file") from None
    except ValueError as exc:  # a scalar YAML resolves but cannot build, e.g. 2016-13-45
        raise ScenarioError(path, "", f"invalid YAML value: {exc}") from None
    if not isinstance(data, dict):
        found = type(data).__name__
        raise ScenarioError(path, "", f"expected a YAML mapping at top level, found {found}")
    return data


def _validate(model: type, data: dict[str, Any], path: Path) -> Any:
    try:
        return model.model_validate(data, context={"base_dir": str(path.parent)})
    except RecursionError:
        raise ScenarioError(path, "", "nested too deeply to be a scenario") from None
    except ValidationError as exc:
        errors = exc.errors()
        first = _explain(errors[0], path)
        if len(errors) > 1:
            more = f" ({len(errors) - 1} more error(s) after this one)"
            first = ScenarioError(first.file, first.field, first.problem + more, first.fix)
        raise first from None


def load_plan_scenario(path: str | Path) -> PlanScenario:
    """Load a scenario's ``planner`` section (for ``gridlayers plan``).

    Raises
    ------
    ScenarioError
        With file, field path, expectation and what was found.

    """
    path = Path(path)
    return _validate(PlanScenario, read_yaml(path), path)


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (structure only; see :func:`resolve_scenario`).

    Parameters
    ----------
    path : str or Path
        YAML scenario file. Relative network paths inside it are resolved against its folder.

    Returns
    -------
    Scenario
        The validated scenario.

    Raises
    ------
    ScenarioError
        With file, field path, expectation and what was found.

    """
    path = Path(path)
    return _validate(Scenario, read_yaml(path), path)
