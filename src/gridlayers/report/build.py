"""Write a run folder's report: one self-contained HTML file plus every figure as PNG.

``write_report(run_dir)`` writes ``run_dir/report.html`` and ``run_dir/report/<figure>.png``
(with ``out=PATH.html``: ``PATH.html`` and ``PATH/<figure>.png``). A figure whose table
is empty or absent, or that fails to draw, is replaced by a one-line note on the page.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gridlayers.report import grid, market, planning
from gridlayers.report.common import FigureSpec
from gridlayers.report.html import Drawn, page
from gridlayers.results.load import RunResults, load

log = logging.getLogger(__name__)

#: Resolution of the PNGs (dots per inch; figures are 11 in wide).
DPI = 100
REPORT_FILE = "report.html"

#: Figures of a co-simulation run, in page order.
OPERATION = (
    FigureSpec(
        "resource_cost",
        "Resource cost by paradigm",
        "Resource cost over the horizon ($) and its parts per paradigm (summary.json "
        "KPIs): realised generation, true DER cost, unserved energy at VOLL, minus the "
        "value of the energy the DER stored. Each panel has its own scale.",
        market.resource_cost,
    ),
    FigureSpec(
        "payments",
        "Payments between parties",
        "What each party received over the horizon ($; negative: paid). Payments net "
        "to zero and are not resource costs.",
        market.payments,
    ),
    FigureSpec(
        "cost_over_time",
        "Generation cost and congestion rent per interval",
        "market_interval: realised (solid) and forward-schedule (dashed) generation "
        "cost and the TSO's congestion rent, $ per interval.",
        market.cost_over_time,
    ),
    FigureSpec(
        "interface",
        "Interface schedule vs realised flow",
        "interface_interval per LDA: forward schedule cleared_injection_mw (dashed) "
        "against the realised injection realised_injection_mw (solid), MW, positive "
        "into the transmission system.",
        market.interface,
    ),
    FigureSpec(
        "lmp",
        "LMP per transmission bus over time",
        "lmp: forward (top) and real-time (bottom) LMP of every transmission bus, "
        "$/MWh, per paradigm; one colour scale.",
        market.lmp,
    ),
    FigureSpec(
        "dlmp",
        "DLMP per LDA over time",
        "dso_interval: mean DLMP over each LDA's buses (line) and its min-max band, $/MWh.",
        grid.dlmp,
    ),
    FigureSpec(
        "voltage_envelope",
        "Feeder voltage envelopes",
        "feeder_interval: lowest (dotted) and highest (solid) bus voltage of each "
        "feeder in AC power flow, pu; dashed red: the LDA's voltage limits "
        "(scenario.resolved.yaml ldas[].limits).",
        grid.voltage_envelope,
    ),
    FigureSpec(
        "bus_voltage",
        "Feeder bus voltages",
        "bus_voltage: voltage of every feeder bus over time, pu; the colour range is "
        "the voltage limits.",
        grid.bus_voltage,
    ),
    FigureSpec(
        "branch_loading",
        "Branch loading",
        "branch_interval: loading of every feeder line and transformer over time, % of "
        "its rating (transformers first, then lines by pandapower index); the colour range "
        "reaches at least the LDAs' loading limit (ldas[].limits.max_loading_percent).",
        grid.branch_loading,
    ),
    FigureSpec(
        "violations",
        "Limit violations and events over time",
        "feeder_interval: buses outside their voltage band and branches above their "
        "loading limit per interval, summed over LDAs; event: notable events by kind.",
        grid.violations,
    ),
    FigureSpec(
        "der",
        "DER dispatch and curtailment by technology",
        "aggregator_interval summed over LDAs: DER energy (injection positive) and "
        "PV energy curtailed, MWh per interval, per aggregator; its technologies (from "
        "the scenario's DER sections) in brackets.",
        grid.der,
    ),
    FigureSpec(
        "computation",
        "Computation time and information exchanged",
        "Solve times summed over the horizon (market_interval, dso_interval) and the "
        "co-simulation's wall time (summary.json), s; numbers exchanged across the "
        "T-D interfaces and inside the LDAs (log scale); the TSO problem's size. With "
        "the iterative paradigm also coordination_interval: ADMM rounds per interval and "
        "the final primal (MW) and dual ($/MWh) residuals.",
        market.computation,
    ),
)
#: Figures of ``gridlayers plan`` and ``gridlayers loop`` folders.
PLANNING = (
    FigureSpec(
        "plan_capacity",
        "Planned capacity mix",
        "plan_summary.json: new capacity by technology and per-LDA DER and interface "
        "capacity (MW), and the plan's cost ($ billion over the horizon).",
        planning.plan_capacity,
    ),
    FigureSpec(
        "loop_convergence",
        "Planning loop convergence",
        "loop.json per round: plan objective ($ billion), largest change of an LDA "
        "decision (MW, against the tolerance), per-LDA capacities (MW) and the loss "
        "factor the plan used.",
        planning.loop_convergence,
    ),
)


#: Figures of a ``gridlayers loop`` folder over several paradigms (``<paradigm>/loop.json``).
PARADIGM_PLANS = (
    FigureSpec(
        "plans_by_paradigm",
        "Plans per paradigm",
        "<paradigm>/loop.json, last round: new capacity by technology, DER PV and DER "
        "batteries per LDA (MW) and the plan's objective and cost parts ($ billion over "
        "the horizon), one colour per paradigm.",
        planning.plans_by_paradigm,
    ),
    FigureSpec(
        "loops_by_paradigm",
        "Planning loop convergence per paradigm",
        "<paradigm>/loop.json per round: plan objective ($ billion) and the largest change "
        "of an LDA decision (MW, against the tolerance), one line per paradigm.",
        planning.loops_by_paradigm,
    ),
)


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote."""

    html: Path
    figures: list[Path]
    skipped: dict[str, str]
    seconds: float


def render_png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes (Agg canvas, :data:`DPI`)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def draw(spec: FigureSpec, run: RunResults) -> Drawn:
    """Draw one figure; a skip reason or a drawing error becomes the note."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. an empty legend
            result = spec.draw(run)
            if isinstance(result, str):
                return Drawn(spec, note=result)
            return Drawn(spec, png=render_png(result))
    except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the others
        log.warning("report figure %s failed", spec.name, exc_info=True)
        return Drawn(spec, note=f"drawing failed: {type(exc).__name__}: {exc}")


def _sections(run: RunResults) -> list[tuple[str, tuple[FigureSpec, ...]]]:
    """Sections to draw: operation, planning and plans per paradigm, as the folder has them."""
    out = []
    if run.source != "none" or run.summary.get("paradigms"):
        out.append(("Operation", OPERATION))
    if run.plan is not None or run.loop is not None:
        out.append(("Planning", PLANNING))
    if run.loops:
        out.append(("Plans per paradigm", PARADIGM_PLANS))
    return out


def write_report(run_dir: Path | str, out: Path | str | None = None) -> Report:
    """Write the report of a run folder.

    Parameters
    ----------
    run_dir : Path or str
        Folder of ``gridlayers run``/``compare``/``plan``/``loop`` (see
        :func:`gridlayers.results.load`).
    out : Path or str, optional
        HTML file to write (a path without ``.html`` is a folder to write
        ``report.html`` into); default ``run_dir/report.html``. The PNGs go to the folder
        of the same name without the suffix (``run_dir/report/``).

    Returns
    -------
    Report
        Paths written, skipped figures with their notes, and the seconds it took.

    Raises
    ------
    gridlayers.results.RunFolderError
        ``run_dir`` is not a run folder or cannot be read.

    """
    started = time.perf_counter()
    run = load(run_dir)
    target = Path(out) if out is not None else run.path / REPORT_FILE
    if target.suffix.lower() not in (".html", ".htm"):  # a folder
        target = target / REPORT_FILE
    folder = target.with_suffix("")
    sections = [(h, [draw(s, run) for s in specs]) for h, specs in _sections(run)]
    folder.mkdir(parents=True, exist_ok=True)
    figures, skipped = [], {}
    for _, drawn in sections:
        for d in drawn:
            png = folder / f"{d.spec.name}.png"
            if d.png is None:
                skipped[d.spec.name] = d.note or ""
                png.unlink(missing_ok=True)  # no stale figure from an earlier report
                continue
            png.write_bytes(d.png)
            figures.append(png)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page(run, sections), encoding="utf-8")
    return Report(target, figures, skipped, time.perf_counter() - started)
