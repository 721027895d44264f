"""The sweep's HTML report: points, KPIs per point and paradigm, figures comparing points.

``OUT/report.html`` is self-contained like a run's report (figures as base64 PNG,
style inline; :mod:`gridlayers.report`), with every figure also as
``OUT/report/<figure>.png``. Each point's own run report can be written with
``gridlayers report OUT/points/<point>``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from gridlayers.report.build import render_png
from gridlayers.report.common import FigureSpec, colour, label, new_figure
from gridlayers.report.html import _STYLE, KPI_ROWS, Drawn, _figure

REPORT_FILE = "report.html"

#: KPIs drawn per point and paradigm: (key, panel title with unit).
FIGURE_KPIS = (
    ("total_cost", "resource cost [$]"),
    ("generation_cost", "realised generation cost [$]"),
    ("der_cost", "DER cost [$]"),
    ("unserved_energy_mwh", "unserved energy [MWh]"),
    ("voltage_violations", "voltage violations [bus-intervals]"),
    ("thermal_violations", "thermal violations [branch-intervals]"),
    ("max_voltage_pu", "max voltage [pu]"),
    ("der_curtailed_mwh", "DER curtailed [MWh]"),
    ("losses_mwh", "feeder losses [MWh]"),
    ("wall_seconds", "wall time [s]"),
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _paradigms(kpis: dict[str, dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(p for per_point in kpis.values() for p in per_point))


def _tick(record: dict[str, Any]) -> str:
    values = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in record["parameters"].items())
    failed = "" if record["status"] == "completed" else "\n(failed)"
    return f"{record['point']}\n{values}{failed}"


def kpi_figure(records: list[dict[str, Any]], kpis: dict[str, dict[str, Any]]) -> Figure | str:
    """Draw each KPI of :data:`FIGURE_KPIS` per point as grouped bars, one per paradigm."""
    paradigms = _paradigms(kpis)
    if not paradigms:
        return "no point stored KPIs"
    ncols = 2
    nrows = -(-len(FIGURE_KPIS) // ncols)
    fig, axes = new_figure("KPIs per point and paradigm", nrows, ncols, row_height=2.6)
    x = np.arange(len(records))
    width = 0.8 / len(paradigms)
    for ax, (key, title) in zip(axes.flat, FIGURE_KPIS, strict=False):
        drawn: list[float] = []
        for j, paradigm in enumerate(paradigms):
            values = [
                (kpis.get(r["point"], {}).get(paradigm) or {}).get(key, np.nan) for r in records
            ]
            values = [np.nan if v is None else float(v) for v in values]
            drawn += [v for v in values if np.isfinite(v) and v > 0]
            ax.bar(
                x + (j - (len(paradigms) - 1) / 2) * width,
                values,
                width,
                color=colour(paradigm, paradigms),
                label=label(paradigm),
            )
        if key.endswith("_pu") and drawn:  # voltages: zoom in around the values
            ax.set_ylim(min(drawn) - 0.01, max(drawn) + 0.01)
        ax.set_title(title, fontsize="medium")
        ax.set_xticks(x, [_tick(r) for r in records], fontsize="x-small")
    for ax in axes.flat[len(FIGURE_KPIS) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(paradigms))
    return fig


def _points_table(records: list[dict[str, Any]], parameters: list[str]) -> str:
    head = "".join(f"<th>{_e(p)}</th>" for p in parameters)
    rows = []
    for r in records:
        cells = "".join(f"<td>{_e(r['parameters'].get(p, '–'))}</td>" for p in parameters)
        secs = "–" if r.get("wall_seconds") is None else f"{r['wall_seconds']:.1f}"
        reused = "reused" if r["skipped"] else "computed"
        rows.append(
            f"<tr><td>{_e(r['point'])}</td>{cells}<td>{_e(r['status'])}</td>"
            f"<td>{reused}</td><td>{secs}</td><td>{_e(r.get('error') or '')}</td></tr>"
        )
    return (
        f"<h2>Points</h2>\n<table><tr><th>point</th>{head}<th>status</th><th>run</th>"
        "<th>wall time [s]</th><th>error</th></tr>\n" + "\n".join(rows) + "</table>"
    )


def _kpi_table(
    records: list[dict[str, Any]], parameters: list[str], kpis: dict[str, dict[str, Any]]
) -> str:
    """One row per point and paradigm: its parameters, then the KPIs of :data:`KPI_ROWS`."""
    rows_of = [(r, p) for r in records for p in kpis.get(r["point"], {})]
    if not rows_of:
        return ""
    shown = [
        (k, n, f)
        for k, n, f in KPI_ROWS
        if any(kpis[r["point"]][p].get(k) is not None for r, p in rows_of)
    ]
    head = "".join(f"<th>{_e(p)}</th>" for p in parameters) + "<th>paradigm</th>"
    head += "".join(f"<th>{_e(name)}</th>" for _, name, _ in shown)
    rows = []
    for record, paradigm in rows_of:
        values = kpis[record["point"]][paradigm]
        cells = "".join(f"<td>{_e(record['parameters'].get(p, '–'))}</td>" for p in parameters)
        cells += f"<td>{_e(label(paradigm))}</td>"
        for key, _, fmt in shown:
            v = values.get(key)
            cells += f"<td>{'–' if v is None else _e(fmt.format(v))}</td>"
        rows.append(f"<tr><td>{_e(record['point'])}</td>{cells}</tr>")
    return (
        f"<h2>KPIs per point and paradigm</h2>\n<table><tr><th>point</th>{head}</tr>\n"
        + "\n".join(rows)
        + "</table>"
    )


def write_sweep_report(
    out: Path,
    name: str,
    records: list[dict[str, Any]],
    parameters: list[str],
    kpis: dict[str, dict[str, Any]],
    metadata: dict[str, Any],
) -> Path:
    """Write ``out/report.html`` and ``out/report/kpis.png``; return the HTML path.

    Parameters
    ----------
    out : Path
        The sweep's folder.
    name : str
        The sweep's name.
    records : list of dict
        One record per point (status, parameters, wall time in s).
    parameters : list of str
        The sweep's parameter field paths.
    kpis : dict
        Per point, its ``summary.json`` KPIs per paradigm (units as in docs/results.md).
    metadata : dict
        Sweep metadata (workers, scheduler, wall time in s).

    """
    result = kpi_figure(records, kpis)
    spec = FigureSpec(
        "kpis",
        "KPIs per point and paradigm",
        "summary.json of every point: resource cost and its parts ($), unserved energy, "
        "curtailment and losses (MWh), violations (bus- and branch-intervals), highest "
        "voltage (pu), wall time (s). A failed point shows what it computed before failing.",
        lambda _run: result,
    )
    drawn = Drawn(spec, note=result) if isinstance(result, str) else Drawn(spec, render_png(result))
    folder = out / "report"
    folder.mkdir(parents=True, exist_ok=True)
    if drawn.png is not None:
        (folder / f"{spec.name}.png").write_bytes(drawn.png)
    done = sum(r["status"] == "completed" for r in records)
    facts = [
        f"folder {_e(out)}",
        f"{len(records)} points: {done} completed, {len(records) - done} failed, "
        f"{sum(r['skipped'] for r in records)} reused from an earlier run",
        *(f"{_e(k)} {_e(v)}" for k, v in metadata.items()),
    ]
    body = [
        f"<h1>gridlayers sweep report: {_e(name)}</h1>",
        f'<p class="meta">{"; ".join(facts)}</p>',
        _points_table(records, parameters),
        _kpi_table(records, parameters, kpis),
        "<h2>Figures</h2>",
        _figure(drawn),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>gridlayers sweep report: {_e(name)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    target = out / REPORT_FILE
    target.write_text(page, encoding="utf-8")
    return target
