"""Docs move with the code.

Every scenario field is in the scenario reference and on the generated schema page, every
KPI is defined, and every page is in the documentation site's navigation.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

from gridlayers.scenarios.schema import Scenario

DOCS = Path(__file__).resolve().parents[1] / "docs"
REFERENCE = DOCS / "scenario-reference.md"
#: Sections documented in their own pages (linked from the scenario reference).
DETAIL_PAGES = ("planner.md", "der.md")


#: Sections with their own reference page, not expanded here (docs/planner.md).
OWN_REFERENCE = {"planner"}


def _fields(schema: dict, defs: dict, seen: frozenset[str] = frozenset()) -> set[str]:
    names = set()
    for name, prop in schema.get("properties", {}).items():
        names.add(name)
        if name in OWN_REFERENCE:
            continue
        refs = [prop.get("$ref")] + [a.get("$ref") for a in prop.get("anyOf", [])]
        refs += [prop.get("items", {}).get("$ref")]
        for ref in filter(None, refs):
            key = ref.split("/")[-1]
            if key not in seen:  # a recursive model (ldas[].subareas[].subareas) once
                names |= _fields(defs[key], defs, seen | {key})
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


# ------------------------------------------------------------- documentation site
HOOKS = DOCS / "hooks"
ROOT = DOCS.parent


def _hook(name: str):
    """Import a mkdocs hook of docs/hooks as a plain module."""
    spec = importlib.util.spec_from_file_location(f"_docs_hook_{name}", HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _missing_from_schema_page(schema: dict, page: str, anchor: Callable) -> list[str]:
    """Fields of the schema without a table row in their model's section of the page."""
    sections = {}
    for part in re.split(r"^## ", page, flags=re.MULTILINE)[1:]:
        found = re.match(r".*\{#([\w-]+)\}", part.splitlines()[0])
        if found:
            sections[found.group(1)] = part
    models = [("top-level", schema)] + [(anchor(k), d) for k, d in schema["$defs"].items()]
    return [
        f"{name}.{field}"
        for name, model in models
        for field in model.get("properties", {})
        if f"| `{field}` |" not in sections.get(name, "")
    ]


def test_generated_schema_page_has_every_field() -> None:
    hook = _hook("scenario_schema")
    schema = hook.scenario_schema()
    assert schema == Scenario.model_json_schema(by_alias=True)  # what `gridlayers schema` prints
    page = hook.render_schema(schema)
    assert _missing_from_schema_page(schema, page, hook._anchor) == []
    n_fields = sum(len(d.get("properties", {})) for d in [schema, *schema["$defs"].values()])
    assert page.count("\n| `") == n_fields  # one row per field, nothing twice


def test_schema_page_check_catches_a_dropped_field() -> None:
    hook = _hook("scenario_schema")
    schema = hook.scenario_schema()
    page = hook.render_schema(schema)
    dropped = "\n".join(line for line in page.splitlines() if "| `voltage_margin_pu` |" not in line)
    assert _missing_from_schema_page(schema, dropped, hook._anchor) == [
        "limitsconfig.voltage_margin_pu"
    ]
    without_model = re.sub(r"^## HorizonConfig .*?(?=^## )", "", page, flags=re.M | re.S)
    missing = _missing_from_schema_page(schema, without_model, hook._anchor)
    assert missing == [
        "horizonconfig.start",
        "horizonconfig.intervals",
        "horizonconfig.interval_min",
    ]


def test_every_kpi_is_defined(tmp_path: Path) -> None:
    from gridlayers.results import ResultStore
    from gridlayers.results.kpis import paradigm_kpis

    text = (DOCS / "kpis.md").read_text()
    store = ResultStore(tmp_path / "r.duckdb")
    try:
        # wall_seconds and intervals_planned come from the runner; the rest are price statistics
        names = {"wall_seconds", "intervals_planned", "mean", "min", "max", "rt_mean"}
        for paradigm in ("total_dso", "minimal_dso"):
            kpis = paradigm_kpis(store, paradigm, 0.25, {"lda": 1})
            names |= set(kpis) | set(kpis["payments"])
    finally:
        store.close()
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"define these KPIs in kpis.md: {missing}"


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r":\s*([\w-]+\.md)\s*$", config.split("\nnav:", 1)[1], re.MULTILINE))
    pages = {p.name for p in DOCS.glob("*.md")}
    generated = {_hook("scenario_schema").PAGE, _hook("evidence").PAGE}
    assert nav == pages | generated


def test_validation_cites_existing_tests() -> None:
    hook = _hook("evidence")
    cited = hook.cited_tests((DOCS / hook.SOURCE_PAGE).read_text())
    assert "test_market_vs_pandapower" in cited
    assert [n for n in cited if not (ROOT / "tests" / f"{n}.py").is_file()] == []
    page = hook.render_tests(cited, ROOT / "tests")
    assert all(f"{{#{n}}}" in page for n in cited)
