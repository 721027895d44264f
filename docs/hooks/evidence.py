"""mkdocs hook: the page ``validation-tests.md``, one section per test that the docs cite.

``validation.md`` names the tests behind each claim (``tests/test_*.py``). The site has
no repository to link to, so this hook renders every test file that page names, when
the site is built: the file's docstring, its test functions and the source, under an
anchor named after the file (``validation-tests.md#test_market_vs_pandapower``). A cited
test file that does not exist fails the build.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

#: Generated page, and the page whose citations decide what it holds.
PAGE = "validation-tests.md"
SOURCE_PAGE = "validation.md"
_CITED = re.compile(r"tests/(test_\w+)\.py")


def cited_tests(markdown: str) -> list[str]:
    """Test modules (``test_x``) named in a page, in order of first mention."""
    return list(dict.fromkeys(_CITED.findall(markdown)))


def _functions(tree: ast.Module) -> list[tuple[str, str]]:
    """(name, first docstring line) of every test function of a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test_"
        ):
            doc = (ast.get_docstring(node) or "").strip().splitlines()
            found.append((node.name, doc[0] if doc else ""))
    return found


def render_tests(names: list[str], tests_dir: Path) -> str:
    """Markdown of the cited test modules: docstring, test functions, source."""
    lines = [
        "# Tests cited as evidence (generated)",
        "",
        "Generated when the documentation is built, from the test files that",
        "[Validation](validation.md) cites. Run one with",
        "`.venv/bin/python -m pytest tests/<file> -q`; tests marked `slow` need `-m slow`",
        "(`make test-all` runs them all).",
        "",
    ]
    lines += [f"- [`tests/{n}.py`](#{n})" for n in names]
    lines.append("")
    for name in names:
        path = tests_dir / f"{name}.py"
        source = path.read_text()  # a missing file fails the build: the docs cite it
        tree = ast.parse(source)
        lines += [f"## `tests/{name}.py` {{#{name}}}", ""]
        doc = ast.get_docstring(tree)
        if doc:
            lines += [doc.replace("``", "`"), ""]
        slow = "@pytest.mark.slow" in source or "pytest.mark.slow" in source
        tests = _functions(tree)
        lines += [f"{len(tests)} test functions" + (" (some marked `slow`)" if slow else "") + ":"]
        lines.append("")
        lines += [f"- `{fn}`" + (f": {first}" if first else "") for fn, first in tests]
        lines += ["", '??? note "Source"', "", "    ```python"]
        lines += [f"    {line}" if line else "" for line in source.splitlines()]
        lines += ["    ```", ""]
    return "\n".join(lines).rstrip() + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated page to the site's files (mkdocs ``on_files`` event)."""
    from mkdocs.structure.files import File

    docs = Path(config["docs_dir"])
    names = cited_tests((docs / SOURCE_PAGE).read_text())
    content = render_tests(names, docs.parent / "tests")
    files.append(File.generated(config, PAGE, content=content))
    return files
