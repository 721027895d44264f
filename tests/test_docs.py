"""Docs move with the code: every scenario field is documented in the scenario reference."""

from __future__ import annotations

from pathlib import Path

from gridlayers.scenarios.schema import Scenario

DOCS = Path(__file__).resolve().parents[1] / "docs"
REFERENCE = DOCS / "scenario-reference.md"
#: Sections documented in their own pages (linked from the scenario reference).
DETAIL_PAGES = ("planner.md", "der.md")


#: Sections with their own reference page, not expanded here (docs/planner.md).
OWN_REFERENCE = {"planner"}


def _fields(schema: dict, defs: dict) -> set[str]:
    names = set()
    for name, prop in schema.get("properties", {}).items():
        names.add(name)
        if name in OWN_REFERENCE:
            continue
        refs = [prop.get("$ref")] + [a.get("$ref") for a in prop.get("anyOf", [])]
        refs += [prop.get("items", {}).get("$ref")]
        for ref in filter(None, refs):
            names |= _fields(defs[ref.split("/")[-1]], defs)
    return names


def test_every_scenario_field_is_in_the_reference() -> None:
    schema = Scenario.model_json_schema(by_alias=True)
    text = REFERENCE.read_text() + "".join((DOCS / page).read_text() for page in DETAIL_PAGES)
    missing = sorted(
        f
        for f in _fields(schema, schema["$defs"])
        if f"`{f}`" not in text and f"`limits.{f}`" not in text
    )
    assert not missing, f"document these fields in {REFERENCE.name}: {missing}"
