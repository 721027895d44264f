"""mkdocs hook: render the scenario JSON Schema as the page ``scenario-schema.md``.

The page is generated at build time from the same schema that ``gridlayers schema``
prints (``Scenario.model_json_schema(by_alias=True)``), so it cannot drift from the
code: every model of the schema gets a section with a table of all its fields (type,
default, constraints, description), in the order a scenario file nests them.
``tests/test_docs.py`` checks that every field of the schema is on the page.

Registered in ``mkdocs.yml`` under ``hooks:``; :func:`render_schema` is plain Python
and is also what the test calls.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

#: Path of the generated page inside the site (and its link target).
PAGE = "scenario-schema.md"

_INTRO = """\
# Scenario schema (generated)

This page is generated when the documentation is built, from the JSON Schema that
`gridlayers schema` prints, so it lists exactly the fields the code accepts.
[Scenario reference](scenario-reference.md) is the hand-written guide to the same
fields, with examples and what each setting does in a run.

A scenario is one YAML file. Unknown fields are errors. Relative paths are resolved
from the folder of the scenario file. "required" means the field has no default;
"its fields' defaults" means the section may be left out, and then every field in it
takes its default. A field shown as *optional* gets its default value from the
model, which the schema does not record (see the guide).
"""


def _anchor(key: str) -> str:
    """Stable HTML id of a model section, e.g. ``PVRule`` -> ``pvrule``."""
    return re.sub(r"[^a-z0-9]+", "-", _display(key).lower()).strip("-")


def _display(key: str) -> str:
    """Model name for headings: pydantic's ``$defs`` key, module-qualified if ambiguous."""
    if "__" in key:  # e.g. gridlayers__planner__config__LDAConfig -> planner.LDAConfig
        parts = key.split("__")
        return f"{parts[1]}.{parts[-1]}"
    return key


def _ref_key(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _cell(text: str) -> str:
    """Make text safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _rst_to_md(text: str) -> str:
    """Turn the reStructuredText of pydantic docstrings into Markdown."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)  # :func:`x.y` -> `x.y`
    return text.replace("``", "`")


def _code(value: Any) -> str:
    return "`" + json.dumps(value, ensure_ascii=False) + "`"


def _type(prop: dict[str, Any]) -> str:
    """Markdown of a property's type, with links to the sections of nested models."""
    if "$ref" in prop:
        key = _ref_key(prop["$ref"])
        return f"[{_display(key)}](#{_anchor(key)})"
    if "const" in prop:
        return _code(prop["const"])
    if "enum" in prop:
        return " | ".join(_code(v) for v in prop["enum"])
    if "oneOf" in prop:
        members = " or ".join(_type(p) for p in prop["oneOf"])
        if "discriminator" in prop:
            members += f" (chosen by its `{prop['discriminator']['propertyName']}`)"
        return members
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop['items'])}" if "items" in prop else "list"
    if kind == "object":
        extra = prop.get("additionalProperties")
        return f"mapping of string → {_type(extra)}" if isinstance(extra, dict) else "mapping"
    if kind is None:
        return "any"
    if "format" in prop:
        return f"{kind} ({prop['format']})"
    return str(kind)


_BOUNDS = {
    "minimum": "≥ {}",
    "maximum": "≤ {}",
    "exclusiveMinimum": "> {}",
    "exclusiveMaximum": "< {}",
    "minItems": "length ≥ {}",
    "maxItems": "length ≤ {}",
    "minProperties": "entries ≥ {}",
    "minLength": "length ≥ {}",
    "maxLength": "length ≤ {}",
}


def _constraints(prop: dict[str, Any]) -> str:
    """Bounds, patterns and list lengths of a property (and of its union members)."""
    parts = [fmt.format(prop[k]) for k, fmt in _BOUNDS.items() if k in prop]
    if "pattern" in prop:
        parts.append(f"matches `{prop['pattern']}`")
    for member in prop.get("anyOf", []):
        sub = _constraints(member)
        if sub:
            parts.append(sub)
    items = prop.get("items")
    if isinstance(items, dict) and "$ref" not in items:
        sub = _constraints(items)
        if sub:
            parts.append(f"each {sub}")
    return "; ".join(parts)


def _default(name: str, prop: dict[str, Any], required: set[str], defs: dict[str, Any]) -> str:
    if name in required:
        return "required"
    if "default" in prop:
        return _code(prop["default"])
    nested = defs.get(_ref_key(prop.get("$ref", "")), {})
    if nested and not nested.get("required"):
        return "its fields' defaults"
    return "*optional*"


def _children(prop: dict[str, Any]) -> list[tuple[str, str]]:
    """(path suffix, model key) of every model a property nests, in schema order."""
    found: list[tuple[str, str]] = []
    if "$ref" in prop:
        found.append(("", _ref_key(prop["$ref"])))
    for union in ("anyOf", "oneOf"):
        for member in prop.get(union, []):
            found.extend(_children(member))
    if isinstance(prop.get("items"), dict):
        found.extend(("[]" + s, k) for s, k in _children(prop["items"]))
    if isinstance(prop.get("additionalProperties"), dict):
        found.extend((".<key>" + s, k) for s, k in _children(prop["additionalProperties"]))
    return found


def _walk(schema: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """Models in depth-first order from the top level, and the paths each sits at."""
    defs = schema.get("$defs", {})
    order: list[str] = []
    paths: dict[str, list[str]] = {}

    def visit(model: dict[str, Any], prefix: str) -> None:
        for name, prop in model.get("properties", {}).items():
            for suffix, key in _children(prop):
                path = f"{prefix}{name}{suffix}"
                paths.setdefault(key, []).append(path)
                if key not in order:
                    order.append(key)
                    visit(defs[key], path + ".")

    visit(schema, "")
    order += [key for key in defs if key not in order]  # unreachable: still documented
    return order, paths


def _section(
    key: str | None, model: dict[str, Any], paths: list[str], defs: dict[str, Any]
) -> list[str]:
    title = "Scenario file (top level)" if key is None else _display(key)
    anchor = "top-level" if key is None else _anchor(key)
    lines = [f"## {title} {{#{anchor}}}", ""]
    if model.get("description"):
        lines += [_rst_to_md(model["description"]).strip(), ""]
    if paths:
        where = ", ".join(f"`{p}`" for p in sorted(set(paths), key=paths.index))
        lines += [f"Used at: {where}.", ""]
    props = model.get("properties", {})
    if not props:
        return [*lines, "No fields.", ""]
    required = set(model.get("required", []))
    lines += [
        "| field | type | default | constraints | description |",
        "|---|---|---|---|---|",
    ]
    for name, prop in props.items():
        desc = prop.get("description", "")
        lines.append(
            f"| `{name}` | {_cell(_type(prop))} | {_cell(_default(name, prop, required, defs))} | "
            f"{_cell(_constraints(prop))} | {_cell(_rst_to_md(desc))} |"
        )
    closed = model.get("additionalProperties") is False
    lines += ["", "Other fields: not allowed." if closed else "Other fields: allowed.", ""]
    return lines


def render_schema(schema: dict[str, Any]) -> str:
    """Markdown of a JSON Schema: one section per model, one table row per field."""
    order, paths = _walk(schema)
    defs = schema.get("$defs", {})
    lines = [_INTRO, "## Contents", ""]
    lines.append("- [Scenario file (top level)](#top-level)")
    lines += [f"- [{_display(k)}](#{_anchor(k)}): `{paths.get(k, ['–'])[0]}`" for k in order]
    lines.append("")
    lines += _section(None, schema, [], defs)
    for key in order:
        lines += _section(key, defs[key], paths.get(key, []), defs)
    return "\n".join(lines).rstrip() + "\n"


def scenario_schema() -> dict[str, Any]:
    """Return the JSON Schema of scenario files, exactly as ``gridlayers schema`` prints it."""
    from gridlayers.scenarios.schema import Scenario

    return Scenario.model_json_schema(by_alias=True)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated page to the site's files (mkdocs ``on_files`` event)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render_schema(scenario_schema())))
    return files
