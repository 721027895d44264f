"""Report figures of the transmission side: costs, payments, interfaces, LMPs.

Money is $ over the horizon (KPIs) or $ per interval (``market_interval``), power MW,
prices $/MWh; see docs/results.md for every column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from gridlayers.report.common import (
    by_time,
    colour,
    empty,
    figure_legend,
    grouped_bars,
    heatmap,
    interval_minutes,
    label,
    new_figure,
    time_axis,
    xy,
)
from gridlayers.report.coordination import rounds_panels
from gridlayers.results.load import RunResults

#: Resource cost parts (KPI, panel title, unit); the stored energy value is subtracted.
_COST_PARTS = (
    ("total_cost", "total resource cost", "$"),
    ("generation_cost", "realised generation", "$"),
    ("der_cost", "DER cost", "$"),
    ("stored_energy_value", "minus stored energy", "$"),
    ("unserved_energy_mwh", "unserved energy", "MWh"),
)
#: Payment parties (key in the ``payments`` KPI, label); positive = received.
_PARTIES = (
    ("generators", "generators"),
    ("bulk_loads", "bulk loads"),
    ("ldas", "LDAs"),
    ("aggregators", "aggregators"),
    ("dsos", "DSOs"),
    ("tso_congestion_rent", "TSO congestion rent"),
)


def _kpis(run: RunResults) -> dict[str, dict]:
    """KPIs per paradigm from ``summary.json`` (paradigms with a total cost only)."""
    found = (run.summary.get("paradigms") or {}).items()
    return {p: k for p, k in found if isinstance(k, dict) and k.get("total_cost") is not None}


def _bars(
    ax: Axes, names: list[str], values: list[float], fmt: str = "{:,.0f}", shown: list | None = None
) -> None:
    """One bar per paradigm (x ticks: paradigm names), labelled with ``shown`` or its value."""
    bars = ax.bar(range(len(names)), values, color=[colour(p, names) for p in names])
    shown = values if shown is None else shown
    ax.bar_label(bars, ["" if np.isnan(v) else fmt.format(v) for v in shown], fontsize="x-small")
    ax.set_xticks(range(len(names)), [label(p) for p in names], rotation=30, ha="right")
    ax.set_xlabel("paradigm")
    ax.margins(y=0.15)
    span = max((abs(v) for v in values if not np.isnan(v)), default=0.0)
    whole = fmt == "{:,.0f}" and span >= 10  # else whole-number ticks would repeat (0, 0, 1, 1)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if whole else "{x:,.3g}"))


def resource_cost(run: RunResults) -> Figure | str:
    """One panel per resource cost part ($ over the horizon), one bar per paradigm.

    The total is drawn as the difference to the cheapest paradigm (the totals differ by
    far less than they are large); its bars are labelled with the totals.
    """
    kpis = _kpis(run)
    if not kpis:
        return "summary.json has no resource cost KPIs (total_cost) for any paradigm"
    names = list(kpis)
    fig, axes = new_figure("Resource cost by paradigm", 1, len(_COST_PARTS), row_height=3.2)
    for ax, (key, title, unit) in zip(axes[0], _COST_PARTS, strict=True):
        values = [float(kpis[p].get(key) or 0.0) for p in names]
        if key == "total_cost":
            cheapest = min(values)
            _bars(ax, names, [v - cheapest for v in values], shown=values)
            ax.set_ylabel("above the cheapest [$]")
            title = f"{title}\n(bars: above the cheapest)"
        else:
            _bars(ax, names, values, "{:,.0f}" if unit == "$" else "{:.3f}")
            ax.set_ylabel(f"{title} [{unit}]")
        ax.set_title(title, fontsize="medium")
    figure_legend(fig, names, names)
    return fig


def payments(run: RunResults) -> Figure | str:
    """Payments per party over the horizon ($, positive = received), one panel per party."""
    kpis = {p: k.get("payments") or {} for p, k in _kpis(run).items()}
    kpis = {p: v for p, v in kpis.items() if v}
    if not kpis:
        return "summary.json has no payments KPIs"
    names = list(kpis)
    parties = [(k, t) for k, t in _PARTIES if any(k in v for v in kpis.values())]
    ncols = min(len(parties), 3)
    nrows = -(-len(parties) // ncols)
    fig, axes = new_figure("Payments between parties", nrows, ncols, row_height=3.0)
    for k, ax in enumerate(axes.flat):
        if k >= len(parties):
            ax.set_axis_off()
            continue
        key, title = parties[k]
        _bars(ax, names, [float(kpis[p].get(key, np.nan)) for p in names])
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel("received [$]\n(negative: paid)")
    figure_legend(fig, names, names)
    return fig


def cost_over_time(run: RunResults) -> Figure | str:
    """Realised and forward generation cost and congestion rent per interval ($)."""
    market = run["market_interval"]
    if empty(market, "generation_cost_usd"):
        return "market_interval is empty"
    names = run.paradigms
    fig, axes = new_figure("Generation cost and congestion rent per interval", 1, 2)
    cost, rent = axes[0]
    for p, rows in market.groupby("paradigm", sort=False):
        c = colour(str(p), names)
        cost.plot(*xy(by_time(rows, "generation_cost_usd")), color=c)
        cost.plot(*xy(by_time(rows, "forward_generation_cost_usd")), color=c, ls="--", lw=1)
        rent.plot(*xy(by_time(rows, "congestion_rent_usd")), color=c)
    cost.set_ylabel("generation cost [$ per interval]")
    cost.set_title("generation cost (dashed: forward schedule)", fontsize="medium")
    rent.set_ylabel("congestion rent [$ per interval]")
    rent.set_title("TSO congestion rent", fontsize="medium")
    for ax in (cost, rent):
        time_axis(ax)
    figure_legend(
        fig,
        list(dict.fromkeys(market["paradigm"])),
        names,
        [("realised", {}), ("forward schedule", {"ls": "--", "lw": 1})],
    )
    return fig


def interface(run: RunResults) -> Figure | str:
    """Plot cleared injection (forward schedule) against realised injection per LDA (MW)."""
    rows = run["interface_interval"]
    if empty(rows, "cleared_injection_mw"):
        return "interface_interval is empty"
    names = run.paradigms
    ldas = list(dict.fromkeys(rows["lda"]))
    fig, axes = new_figure("Interface schedule vs realised flow", len(ldas), 1, sharex=True)
    for ax, lda in zip(axes[:, 0], ldas, strict=True):
        for p, sub in rows[rows["lda"] == lda].groupby("paradigm", sort=False):
            c = colour(str(p), names)
            ax.plot(*xy(by_time(sub, "realised_injection_mw")), color=c)
            ax.plot(*xy(by_time(sub, "cleared_injection_mw")), color=c, ls="--", lw=1)
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_title(f"LDA {lda}", fontsize="medium")
        ax.set_ylabel("injection into\ntransmission [MW]")
    time_axis(axes[-1, 0])
    figure_legend(
        fig,
        list(dict.fromkeys(rows["paradigm"])),
        names,
        [("realised", {}), ("forward schedule", {"ls": "--", "lw": 1})],
    )
    return fig


def lmp(run: RunResults) -> Figure | str:
    """Forward and real-time LMP per transmission bus over time ($/MWh), per paradigm."""
    rows = run["lmp"]
    if empty(rows, "lmp_usd_per_mwh"):
        return "lmp is empty"
    names = [p for p in run.paradigms if p in set(rows["paradigm"])]
    minutes = interval_minutes(run)
    values = rows[["lmp_usd_per_mwh", "lmp_rt_usd_per_mwh"]].to_numpy(dtype=float)
    vmin, vmax = np.nanpercentile(values, [1, 99])
    fig, axes = new_figure(
        "LMP per transmission bus over time", 2, len(names), sharey=True, row_height=3.0
    )
    image = None
    for j, p in enumerate(names):
        sub = rows[rows["paradigm"] == p]
        for i, (column, stage) in enumerate(
            (("lmp_usd_per_mwh", "forward"), ("lmp_rt_usd_per_mwh", "real time"))
        ):
            ax = axes[i, j]
            image = heatmap(ax, sub, "bus", column, minutes, cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_title(f"{label(p)}, {stage}", fontsize="medium")
            time_axis(ax, maxticks=4)
            if j == 0:
                ax.set_ylabel("transmission bus")
    fig.colorbar(image, ax=axes, label="LMP [$/MWh] (colour clipped to 1st-99th percentile)")
    return fig


def computation(run: RunResults) -> Figure | str:
    """Solve and wall times (s), values exchanged (count) and TSO problem size per paradigm."""
    market, dso = run["market_interval"], run["dso_interval"]
    kpis = run.summary.get("paradigms") or {}
    names = [p for p in run.paradigms if p in set(market["paradigm"]) or p in kpis]
    if not names:
        return "market_interval is empty and summary.json has no paradigms"
    rounds = run["coordination_interval"]  # iterative: one more row of panels
    fig, axes = new_figure(
        "Computation time and information exchanged",
        2 if empty(rounds, "rounds") else 3,
        2,
        row_height=3.2,
    )

    def total(frame: pd.DataFrame, column: str, p: str, how: str = "sum") -> float:
        values = frame.loc[frame["paradigm"] == p, column].dropna()
        return float(values.agg(how)) if len(values) else np.nan

    groups = {
        "time [s]": {
            "TSO\nforward solve": [total(market, "solve_seconds", p) for p in names],
            "TSO\nreal-time solve": [total(market, "rt_solve_seconds", p) for p in names],
            "DSO\nsolve": [total(dso, "solve_seconds", p) for p in names],
            "wall\n(co-simulation)": [
                (kpis.get(p) or {}).get("wall_seconds", np.nan) for p in names
            ],
        },
        "values exchanged [count]": {
            "across T-D interfaces": [total(market, "interface_values", p) for p in names],
            "inside LDAs (DSO)": [total(dso, "values_exchanged", p) for p in names],
        },
        "TSO problem size [count]": {
            "variables": [total(market, "tso_variables", p, "max") for p in names],
            "constraints": [total(market, "tso_constraints", p, "max") for p in names],
        },
    }
    for ax, (unit, group) in zip((axes[0, 0], axes[1, 0], axes[1, 1]), groups.items(), strict=True):
        log = unit.startswith("values")
        if log:  # counts differ by orders of magnitude; a zero has no bar
            ax.set_yscale("log")
            group = {k: [v if v > 0 else np.nan for v in vs] for k, vs in group.items()}
        _grouped_bars(ax, group, names)
        ax.set_ylabel(unit + (" (log scale)" if log else ""))
    per_interval = axes[0, 1]
    for p, sub in market.groupby("paradigm", sort=False):
        per_interval.plot(*xy(by_time(sub, "solve_seconds")), color=colour(str(p), names))
    per_interval.set_ylabel("TSO forward solve [s]")
    per_interval.set_title("TSO forward solve time per interval", fontsize="medium")
    time_axis(per_interval)
    if not empty(rounds, "rounds"):
        rounds_panels(axes[2, 0], axes[2, 1], rounds, names)
    figure_legend(fig, names, names)
    return fig


def _grouped_bars(ax: Axes, group: dict[str, list[float]], names: list[str]) -> None:
    """Bars per category (x) and paradigm (colour), each labelled with its value."""
    values = {p: [group[cat][i] for cat in group] for i, p in enumerate(names)}
    grouped_bars(ax, list(group), values, names, value_labels=True)
    ax.set_xlabel("quantity")
    ax.margins(y=0.12)
