"""Sweep files: a base scenario, parameter overrides by dotted field path, paradigms.

A sweep file is YAML data and nothing else (read with a safe loader; no code is
imported, nothing is unpickled)::

    name: sweep-demo
    scenario: default.yaml            # base scenario, relative to the sweep file
    paradigms: [total_dso, minimal_dso]
    set:                              # overrides applied to every point
      horizon.intervals: 8
    grid:                             # every combination of these values is a point
      transmission.load_scaling: [1.3, 1.4]
      ldas[*].limits.vm_max_pu: [1.04, 1.05]
    points:                           # further points, one mapping of overrides each
      - {seed: 7}
    workers: 2
    point_timeout_s: 3600             # optional: kill a point still running after an hour

A field path is the scenario's own (``gridlayers schema``): ``horizon.intervals``,
``ldas[0].der.penetration[1].kw_per_kw_peak_load``; ``[*]`` sets the field in every
element of a list. Each point's scenario is validated by the scenario schema; a bad
path or value is a :class:`~gridlayers.scenarios.load.ScenarioError` naming the sweep
file, the parameter and the fix.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridlayers.scenarios.load import ScenarioError, _validate, read_yaml
from gridlayers.scenarios.schema import Paradigm, Scenario

_NAME = r"[A-Za-z0-9_-]+"
_PATH = re.compile(rf"{_NAME}(\[(\d+|\*)\])*(\.{_NAME}(\[(\d+|\*)\])*)*")
_STEP = re.compile(rf"({_NAME})|\[(\d+|\*)\]")


class SweepFile(BaseModel):
    """The contents of a sweep YAML file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Sweep name (file-safe).")
    description: str = Field("", description="Free text.")
    scenario: str = Field(description="Base scenario file, relative to the sweep file.")
    paradigms: list[Paradigm] | None = Field(
        None, min_length=1, description="Paradigms run at every point (default: the scenario's)."
    )
    set: dict[str, Any] = Field(
        default_factory=dict, description="Field path -> value, applied to every point."
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Field path -> list of values; every combination is a point.",
    )
    points: list[dict[str, Any]] = Field(
        default_factory=list, description="Further points, each a mapping field path -> value."
    )
    workers: int = Field(2, ge=1, description="Dask worker processes of the local cluster.")
    point_timeout_s: float | None = Field(
        None,
        gt=0,
        description=(
            "Wall-clock limit of each point (s); a point still running then is killed with "
            "its simulators and recorded as failed. Default: no limit."
        ),
    )
    out: str | None = Field(None, description="Output folder (default: runs/<name>).")

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, v in value.items() if not v]
        if empty:
            msg = f"grid parameter(s) {empty} have no values; give at least one"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _has_points(self) -> SweepFile:
        if not self.grid and not self.points:
            raise ValueError("a sweep needs 'grid' or 'points' (or both)")
        return self


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its id, parameter values and the validated scenario.

    ``scenario`` is the JSON-ready dump of the validated :class:`Scenario` (paths
    absolute), which is all a worker needs; ``sha256`` is :func:`scenario_hash` of it.
    """

    id: str
    parameters: dict[str, Any]
    scenario: dict[str, Any]
    sha256: str


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: the file, its settings, the base scenario and every point."""

    file: Path
    config: SweepFile
    base: Path
    parameters: list[str]
    points: list[Point]


def scenario_hash(data: dict[str, Any]) -> str:
    """SHA-256 of a JSON-ready scenario dict (keys sorted), as hex."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _unaliased(value: Any) -> Any:
    """Copy nested dicts/lists without sharing (YAML anchors alias one object)."""
    if isinstance(value, dict):
        return {k: _unaliased(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unaliased(v) for v in value]
    return value


def parse_path(path: str) -> list[str | int]:
    """Split ``ldas[0].der.x`` into ``["ldas", 0, "der", "x"]`` (``[*]`` stays ``"*"``).

    Raises
    ------
    ValueError
        If ``path`` is not names joined by ``.``, each followed by any ``[index]``/``[*]``.

    """
    if not _PATH.fullmatch(path):
        msg = f"{path!r} is not a field path like 'horizon.intervals' or 'ldas[0].limits.vm_max_pu'"
        raise ValueError(msg)
    return [
        name if name else (index if index == "*" else int(index))
        for name, index in _STEP.findall(path)
    ]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at the field path ``path`` in ``data`` (in place).

    Missing mappings on the way are created (the schema then judges the field);
    a list index must exist.

    Raises
    ------
    ValueError
        If the path cannot be followed (bad syntax, index out of range, not a list).

    """
    steps = parse_path(path)

    def walk(node: Any, rest: list[str | int], done: str) -> None:
        step, tail = rest[0], rest[1:]
        if isinstance(step, str) and step != "*":
            if not isinstance(node, dict):
                msg = f"{done or 'the scenario'} is not a mapping, cannot set {step!r}"
                raise ValueError(msg)
            here = f"{done}.{step}" if done else step
            if not tail:
                node[step] = _unaliased(value)
                return
            if node.get(step) is None:
                node[step] = [] if isinstance(tail[0], int) or tail[0] == "*" else {}
            walk(node[step], tail, here)
            return
        if not isinstance(node, list):
            msg = f"{done} is not a list, cannot index it with [{step}]"
            raise ValueError(msg)
        indices = range(len(node)) if step == "*" else [step]
        for i in indices:
            if not 0 <= i < len(node):
                msg = f"{done}[{i}] does not exist ({done} has {len(node)} element(s))"
                raise ValueError(msg)
            if not tail:
                node[i] = _unaliased(value)
            else:
                walk(node[i], tail, f"{done}[{i}]")

    walk(data, steps, "")


def _combinations(config: SweepFile) -> list[tuple[str, dict[str, Any]]]:
    """``(where, overrides)`` per point: grid combinations, then ``points[i]``."""
    keys = list(config.grid)
    grid = [
        ("grid", dict(zip(keys, values, strict=True)))
        for values in itertools.product(*config.grid.values())
    ]
    return [g for g in grid if g[1]] + [
        (f"points[{i}]", dict(p)) for i, p in enumerate(config.points)
    ]


def _point_scenario(
    raw: dict[str, Any],
    config: SweepFile,
    combo: tuple[str, dict[str, Any]],
    sweep: Path,
    base: Path,
) -> Scenario:
    """Validate the base scenario with the sweep's overrides; errors name the sweep file."""
    where, point = combo
    overrides = {**config.set, **point}
    if config.paradigms is not None:
        overrides["paradigms"] = list(config.paradigms)
    origin = {k: ("set" if k not in point else where) for k in overrides}
    data = _unaliased(raw)
    for path, value in overrides.items():
        try:
            set_path(data, path, value)
        except ValueError as exc:
            raise ScenarioError(
                sweep,
                f"{origin[path]}: {path}",
                str(exc),
                "use a field path of `gridlayers schema`.",
            ) from None
    try:
        return _validate(Scenario, data, base.resolve())
    except ScenarioError as exc:
        param = next((p for p in overrides if exc.field.startswith(_plain(p))), None)
        field = f"{origin[param]}: {param} = {overrides[param]!r}" if param else exc.field
        fix = exc.fix or "give a value the scenario schema accepts (`gridlayers schema`)."
        problem = f"{exc.problem} (scenario field {exc.field} of {base})"
        raise ScenarioError(sweep, field, problem, fix) from None


def _plain(path: str) -> str:
    """Return the path up to its first ``[*]`` (pydantic renders indices, not ``*``)."""
    return path.split("[*]")[0]


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file and every point's scenario.

    Parameters
    ----------
    path : str or Path
        The sweep YAML file.

    Returns
    -------
    Sweep
        Its settings and one :class:`Point` per combination of ``grid`` values, then one
        per entry of ``points``; ids ``p000``, ``p001``, ... in that order.

    Raises
    ------
    ScenarioError
        The sweep file, the base scenario or a point's scenario is invalid; the
        message names the sweep file, the parameter and the fix.

    """
    path = Path(path)
    config = _validate(SweepFile, read_yaml(path), path)
    base = path.parent / config.scenario
    if not base.is_file():
        raise ScenarioError(
            path, "scenario", f"base scenario {base} not found", "give a path relative to it."
        )
    raw = read_yaml(base)
    combos = _combinations(config)
    parameters = list(dict.fromkeys(k for _, c in combos for k in c))
    points = []
    for i, combo in enumerate(combos):
        scenario = _point_scenario(raw, config, combo, path, base)
        dump = scenario.model_dump(mode="json", by_alias=True)
        points.append(Point(f"p{i:03d}", combo[1], dump, scenario_hash(dump)))
    return Sweep(path, config, base, parameters, points)
