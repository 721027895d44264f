"""Docs move with the code: every scenario field is documented in the scenario reference."""

from __future__ import annotations

from pathlib import Path

from gridlayers.scenarios.schema import Scenario

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "scenario-reference.md"


def _fields(schema: dict, defs: dict) -> set[str]:
    names = set()
    for name, prop in schema.get("properties", {}).items():
        names.add(name)
        refs = [prop.get("$ref")] + [a.get("$ref") for a in prop.get("anyOf", [])]
        refs += [prop.get("items", {}).get("$ref")]
        for ref in filter(None, refs):
            names |= _fields(defs[ref.split("/")[-1]], defs)
    return names


def test_every_scenario_field_is_in_the_reference() -> None:
    schema = Scenario.model_json_schema(by_alias=True)
    text = REFERENCE.read_text()
    missing = sorted(
        f
        for f in _fields(schema, schema["$defs"])
        if f"`{f}`" not in text and f"`limits.{f}`" not in text
    )
    assert not missing, f"document these fields in {REFERENCE.name}: {missing}"
