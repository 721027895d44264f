"""The self-contained HTML page of a report: header, KPI table, figures as base64 PNG.

Nothing on the page is fetched from elsewhere: the style is inline and every figure is
a ``data:image/png;base64`` URI.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gridlayers.report.common import FigureSpec, label
from gridlayers.results.load import RunResults

#: KPI rows of the page's table (key, label with unit, format); docs/results.md has them all.
KPI_ROWS = (
    ("intervals", "intervals", "{:.0f}"),
    ("total_cost", "resource cost [$]", "{:,.0f}"),
    ("generation_cost", "realised generation cost [$]", "{:,.0f}"),
    ("der_cost", "DER cost [$]", "{:,.0f}"),
    ("stored_energy_value", "stored energy value (subtracted) [$]", "{:,.0f}"),
    ("unserved_energy_mwh", "unserved energy [MWh]", "{:.3f}"),
    ("imbalance_mwh", "interface deviation [MWh]", "{:.2f}"),
    ("der_curtailed_mwh", "DER curtailed [MWh]", "{:.3f}"),
    ("losses_mwh", "feeder losses [MWh]", "{:.3f}"),
    ("voltage_violations", "voltage violations [bus-intervals]", "{:.0f}"),
    ("thermal_violations", "thermal violations [branch-intervals]", "{:.0f}"),
    ("max_voltage_pu", "max voltage [pu]", "{:.4f}"),
    ("tso_variables", "TSO variables", "{:,.0f}"),
    ("interface_values_exchanged", "values across T-D interfaces", "{:,.0f}"),
    ("tso_solve_seconds", "TSO solve time [s]", "{:.2f}"),
    ("wall_seconds", "wall time [s]", "{:.1f}"),
)

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1150px; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; }
figcaption, .meta { color: #555; font-size: 0.9em; }
.note { background: #f6f6f6; border-left: 4px solid #bbb; padding: 0.3em 0.8em; }
"""


@dataclass(frozen=True)
class Drawn:
    """A figure of the report: its spec and PNG bytes, or the note why it was skipped."""

    spec: FigureSpec
    png: bytes | None = None
    note: str | None = None


def _e(value: Any) -> str:
    return html.escape(str(value))


def _header(run: RunResults) -> str:
    s = run.summary
    meta = s.get("metadata") or {}
    name = s.get("scenario") or (run.loop or {}).get("scenario") or run.path.name
    facts = [f"folder {_e(run.path)}"]
    if s:
        facts.append(f"status <b>{_e(s.get('status'))}</b>")
        if meta.get("started"):
            facts.append(f"started {_e(meta['started'])}")
        if meta.get("wall_seconds") is not None:
            facts.append(f"wall time {meta['wall_seconds']:.1f} s")
        if meta.get("seed") is not None:
            facts.append(f"seed {_e(meta['seed'])}")
    lines = [f"<h1>gridlayers report: {_e(name)}</h1>", f'<p class="meta">{"; ".join(facts)}</p>']
    if s.get("error"):
        lines.append(f'<p class="note">error: {_e(s["error"])}</p>')
    versions = meta.get("versions") or {}
    if versions:
        text = ", ".join(f"{k} {v}" for k, v in versions.items())
        lines.append(f'<p class="meta">versions: {_e(text)}</p>')
    return "\n".join(lines)


def _kpi_table(run: RunResults) -> str:
    kpis = {p: k for p, k in (run.summary.get("paradigms") or {}).items() if isinstance(k, dict)}
    if not kpis:
        return ""
    head = "".join(f"<th>{_e(label(p))}</th>" for p in kpis)
    rows = []
    for key, name, fmt in KPI_ROWS:
        cells = [k.get(key) for k in kpis.values()]
        if all(c is None for c in cells):
            continue
        text = "".join(f"<td>{'–' if c is None else _e(fmt.format(c))}</td>" for c in cells)
        rows.append(f"<tr><td>{_e(name)}</td>{text}</tr>")
    return f"<h2>KPIs</h2>\n<table><tr><th>KPI</th>{head}</tr>\n" + "\n".join(rows) + "</table>"


def _figure(drawn: Drawn) -> str:
    spec = drawn.spec
    if drawn.png is None:
        return (
            f'<div class="note" id="{_e(spec.name)}"><h3>{_e(spec.title)}</h3>'
            f"<p>not drawn: {_e(drawn.note)}</p></div>"
        )
    data = base64.b64encode(drawn.png).decode("ascii")
    return (
        f'<figure id="{_e(spec.name)}"><h3>{_e(spec.title)}</h3>'
        f'<img alt="{_e(spec.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(spec.caption)}</figcaption></figure>"
    )


def page(run: RunResults, sections: Sequence[tuple[str, Sequence[Drawn]]]) -> str:
    """Return the HTML page: header, KPI table and one section per ``(heading, figures)``."""
    body = [_header(run), _kpi_table(run)]
    for heading, drawn in sections:
        body.append(f"<h2>{_e(heading)}</h2>")
        body.extend(_figure(d) for d in drawn)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>gridlayers report: {_e(run.path.name)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
