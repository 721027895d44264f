"""Report figures of the distribution side: DLMPs, voltages, branch loading, violations, DER.

Voltages are pu, branch loadings % of rating, DLMPs $/MWh, DER energy and curtailment MWh
per interval, violations count buses or branches outside their limits in one interval (AC
power flow).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gridlayers.report.common import (
    by_time,
    colour,
    empty,
    figure_legend,
    heatmap,
    interval_minutes,
    label,
    new_figure,
    time_axis,
    xy,
)
from gridlayers.results.load import RunResults


def voltage_limits(run: RunResults) -> dict[str, tuple[float, float]]:
    """``{lda: (vm_min_pu, vm_max_pu)}`` from the resolved scenario (empty if absent)."""
    out = {}
    for lda in (run.scenario or {}).get("ldas") or []:
        limits = lda.get("limits") or {}
        if "vm_min_pu" in limits and "vm_max_pu" in limits:
            out[lda["name"]] = (float(limits["vm_min_pu"]), float(limits["vm_max_pu"]))
    return out


def technologies(run: RunResults) -> dict[str, list[str]]:
    """Device types per aggregator name, from the resolved scenario's DER sections.

    Aggregators are named in the scenario (``ldas[].der.penetration[].aggregator`` and
    ``ldas[].der.devices[].aggregator``); one aggregator may run several technologies.
    """
    out: dict[str, set[str]] = {}
    for lda in (run.scenario or {}).get("ldas") or []:
        der = lda.get("der") or {}
        for entry in [*(der.get("penetration") or []), *(der.get("devices") or [])]:
            name = entry.get("aggregator", "aggregator")
            out.setdefault(name, set()).add(str(entry.get("type", "?")))
    return {name: sorted(types) for name, types in out.items()}


def dlmp(run: RunResults) -> Figure | str:
    """Mean DLMP per LDA over time with its min-max band over the LDA's buses ($/MWh)."""
    rows = run["dso_interval"].dropna(subset=["dlmp_mean_usd_per_mwh"])
    if rows.empty:
        return (
            "dso_interval has no DLMPs (only DSOs that clear their feeder, e.g. under "
            "Total DSO, compute them)"
        )
    names = run.paradigms
    ldas = list(dict.fromkeys(rows["lda"]))
    fig, axes = new_figure("DLMP per LDA over time", len(ldas), 1, sharex=True)
    for ax, lda in zip(axes[:, 0], ldas, strict=True):
        this = rows[rows["lda"] == lda]
        for p, sub in this.groupby("paradigm", sort=False):
            c = colour(str(p), names)
            t, low = xy(by_time(sub, "dlmp_min_usd_per_mwh", "min"))
            _, high = xy(by_time(sub, "dlmp_max_usd_per_mwh", "max"))
            ax.fill_between(t, low, high, color=c, alpha=0.25, step="post")
            ax.step(*xy(by_time(sub, "dlmp_mean_usd_per_mwh", "mean")), color=c, where="post")
        ax.set_title(f"LDA {lda}" + _clip(ax, this), fontsize="medium")
        ax.set_ylabel("DLMP [$/MWh]")
    time_axis(axes[-1, 0])
    figure_legend(
        fig,
        list(dict.fromkeys(rows["paradigm"])),
        names,
        [("mean", {}), ("min-max over the LDA's buses", {"lw": 8, "alpha": 0.25})],
    )
    return fig


def _clip(ax: Axes, rows: pd.DataFrame) -> str:
    """Limit the y axis to the bulk of the DLMPs; return a note on what lies outside.

    A DSO's soft-limit fallback can price single buses at the slack penalty
    (thousands of $/MWh), which would flatten everything else.
    """
    low = rows["dlmp_min_usd_per_mwh"].to_numpy(dtype=float)
    high = rows["dlmp_max_usd_per_mwh"].to_numpy(dtype=float)
    mean = rows["dlmp_mean_usd_per_mwh"].to_numpy(dtype=float)
    bulk_low, bulk_high = np.nanpercentile(np.r_[low, high, mean], [2, 98])
    pad = max(bulk_high - bulk_low, 1.0) * 0.3
    lo, hi = bulk_low - pad, bulk_high + pad
    if np.nanmin(low) >= lo and np.nanmax(high) <= hi:
        return ""
    ax.set_ylim(lo, hi)
    return f" (y axis clipped; extremes {np.nanmin(low):,.0f} to {np.nanmax(high):,.0f} $/MWh)"


def voltage_envelope(run: RunResults) -> Figure | str:
    """Lowest and highest feeder voltage per LDA over time (pu), limits dashed."""
    rows = run["feeder_interval"]
    if empty(rows, "vm_min_pu", "vm_max_pu"):
        return "feeder_interval is empty"
    names = run.paradigms
    limits = voltage_limits(run)
    ldas = list(dict.fromkeys(rows["lda"]))
    fig, axes = new_figure("Feeder voltage envelopes", len(ldas), 1, sharex=True)
    for ax, lda in zip(axes[:, 0], ldas, strict=True):
        for p, sub in rows[rows["lda"] == lda].groupby("paradigm", sort=False):
            c = colour(str(p), names)
            t, low = xy(by_time(sub, "vm_min_pu", "min"))
            _, high = xy(by_time(sub, "vm_max_pu", "max"))
            ax.fill_between(t, low, high, color=c, alpha=0.2, step="post")
            ax.step(t, high, color=c, where="post", lw=1)
            ax.step(t, low, color=c, where="post", lw=1, ls=":")
        for v in limits.get(lda, ()):
            ax.axhline(v, color="r", ls="--", lw=1)
        ax.set_title(f"LDA {lda}", fontsize="medium")
        ax.set_ylabel("voltage [pu]")
    time_axis(axes[-1, 0])
    styles = [("highest bus", {"lw": 1}), ("lowest bus", {"lw": 1, "ls": ":"})]
    if limits:
        styles.append(("voltage limits", {"color": "r", "ls": "--", "lw": 1}))
    figure_legend(fig, list(dict.fromkeys(rows["paradigm"])), names, styles)
    return fig


def bus_voltage(run: RunResults) -> Figure | str:
    """Voltage of every feeder bus over time (pu), LDAs in rows, paradigms in columns."""
    rows = run["bus_voltage"]
    if empty(rows, "vm_pu"):
        return "bus_voltage is empty (stored only with output.bus_voltages: true)"
    names = [p for p in run.paradigms if p in set(rows["paradigm"])]
    ldas = list(dict.fromkeys(rows["lda"]))
    limits = voltage_limits(run)
    low = min([v[0] for v in limits.values()] or [float(rows["vm_pu"].min())])
    high = max([v[1] for v in limits.values()] or [float(rows["vm_pu"].max())])
    minutes = interval_minutes(run)
    fig, axes = new_figure("Feeder bus voltages", len(ldas), len(names), sharex=True)
    image = None
    for i, lda in enumerate(ldas):
        for j, p in enumerate(names):
            ax = axes[i, j]
            sub = rows[(rows["lda"] == lda) & (rows["paradigm"] == p)]
            if sub.empty:
                ax.set_axis_off()
                continue
            image = heatmap(ax, sub, "bus", "vm_pu", minutes, cmap="RdBu_r", vmin=low, vmax=high)
            ax.set_title(f"{lda}, {label(p)}", fontsize="medium")
            time_axis(ax, maxticks=4)
            if j == 0:
                ax.set_ylabel("feeder bus")
    fig.colorbar(image, ax=axes, label="voltage [pu] (colour range: the voltage limits)")
    return fig


def loading_limits(run: RunResults) -> dict[str, float]:
    """``{lda: max_loading_percent}`` from the resolved scenario (empty if absent)."""
    out = {}
    for lda in (run.scenario or {}).get("ldas") or []:
        limits = lda.get("limits") or {}
        if "max_loading_percent" in limits:
            out[lda["name"]] = float(limits["max_loading_percent"])
    return out


def _branch_order(labels: pd.Series) -> pd.Categorical:
    """Return branch labels as a categorical: transformers first, then lines, by index.

    Labels are ``trafo:<index>`` and ``line:<index>``; ordering by pandapower index keeps
    a feeder's branches in their order on the axis (not ``line:10`` before ``line:2``).
    """

    def key(name: str) -> tuple[int, str, int]:
        kind, _, index = name.partition(":")
        return (kind != "trafo", kind, int(index) if index.isdigit() else -1)

    return pd.Categorical(labels, categories=sorted(labels.unique(), key=key))


def branch_loading(run: RunResults) -> Figure | str:
    """Draw every feeder branch's loading over time (%), LDAs in rows, paradigms in columns."""
    rows = run["branch_interval"]
    if empty(rows, "loading_percent"):
        return "branch_interval is empty (stored only with output.branch_loading: true)"
    names = [p for p in run.paradigms if p in set(rows["paradigm"])]
    ldas = list(dict.fromkeys(rows["lda"]))
    limits = loading_limits(run)
    high = max([*limits.values(), float(rows["loading_percent"].max())])
    minutes = interval_minutes(run)
    fig, axes = new_figure("Branch loading", len(ldas), len(names), sharex=True)
    image = None
    for i, lda in enumerate(ldas):
        this = rows[rows["lda"] == lda]
        this = this.assign(branch=_branch_order(this["branch"]))
        for j, p in enumerate(names):
            ax = axes[i, j]
            sub = this[this["paradigm"] == p]
            if sub.empty:
                ax.set_axis_off()
                continue
            image = heatmap(ax, sub, "branch", "loading_percent", minutes, vmin=0.0, vmax=high)
            ax.set_title(f"{lda}, {label(p)}", fontsize="medium")
            time_axis(ax, maxticks=4)
            if j == 0:
                ax.set_ylabel("feeder branch")
    note = f" (colour range: 0 to at least the limit, {max(limits.values()):g} %)" if limits else ""
    fig.colorbar(image, ax=axes, label=f"loading [% of rating]{note}")
    return fig


def violations(run: RunResults) -> Figure | str:
    """Voltage and thermal violations per interval (summed over LDAs) and events."""
    rows = run["feeder_interval"]
    if empty(rows, "voltage_violations"):
        return "feeder_interval is empty"
    names = run.paradigms
    events = run["event"].dropna(subset=["time"])
    fig, axes = new_figure(
        "Limit violations and events over time", 3, 1, sharex=True, row_height=2.3
    )
    for ax, column, unit in (
        (axes[0, 0], "voltage_violations", "voltage violations\n[buses]"),
        (axes[1, 0], "thermal_violations", "thermal violations\n[branches]"),
    ):
        for p, sub in rows.groupby("paradigm", sort=False):
            ax.step(*xy(by_time(sub, column)), where="post", color=colour(str(p), names))
        ax.set_ylabel(unit)
        ax.set_ylim(-0.05 * max(1.0, rows[column].max()), 1.1 * max(1.0, rows[column].max()))
    ax = axes[2, 0]
    kinds = sorted(events["kind"].dropna().unique())
    markers = "ovs^dP*X"
    for k, kind in enumerate(kinds):
        sub = events[events["kind"] == kind]
        y = [names.index(p) if p in names else -1 for p in sub["paradigm"]]
        ax.scatter(sub["time"].to_numpy(), y, marker=markers[k % len(markers)], label=kind)
    ax.set_yticks(range(len(names)), [label(p) for p in names])
    ax.set_ylim(-0.5, len(names) - 0.5)
    ax.set_ylabel("paradigm")
    ax.set_title(
        "events (" + (f"{len(events)} in the event table)" if kinds else "none)"), fontsize="medium"
    )
    if kinds:
        ax.legend(fontsize="x-small", loc="upper right", title="event kind")
    time_axis(ax)
    figure_legend(fig, list(dict.fromkeys(rows["paradigm"])), names)
    return fig


def der(run: RunResults) -> Figure | str:
    """DER energy and curtailment per interval by aggregator (technology), per paradigm."""
    rows = run["aggregator_interval"]
    if empty(rows, "der_energy_mwh"):
        return "aggregator_interval is empty (no DER in the scenario)"
    names = [p for p in run.paradigms if p in set(rows["paradigm"])]
    tech = technologies(run)
    aggregators = list(dict.fromkeys(rows["aggregator"]))
    fig, axes = new_figure(
        "DER dispatch and curtailment by technology", 2, len(names), sharex=True, sharey="row"
    )
    for j, p in enumerate(names):
        sub = rows[rows["paradigm"] == p]
        for k, agg in enumerate(aggregators):
            a = sub[sub["aggregator"] == agg]
            for ax, column in zip(axes[:, j], ("der_energy_mwh", "curtailed_mwh"), strict=True):
                ax.step(*xy(by_time(a, column)), where="post", color=f"C{k}")
        axes[0, j].axhline(0.0, color="k", lw=0.5)
        axes[0, j].set_title(label(p), fontsize="medium")
        for ax in axes[:, j]:
            time_axis(ax, maxticks=5)
    axes[0, 0].set_ylabel("DER energy\n[MWh per interval]")
    axes[1, 0].set_ylabel("curtailed\n[MWh per interval]")
    names = [f"{a} ({', '.join(tech[a])})" if a in tech else a for a in aggregators]
    handles = [Line2D([], [], color=f"C{k}", lw=2) for k in range(len(aggregators))]
    fig.legend(
        handles,
        names,
        loc="outside lower center",
        ncols=min(len(names), 5),
        fontsize="small",
        title="aggregator (technologies)",
    )
    return fig
