"""Report figures of the planning side: the capacity mix and the loop's convergence.

Read from ``plan_summary.json`` (``gridlayers plan``, ``gridlayers loop``) and
``loop.json`` (``gridlayers loop``), or ``<paradigm>/loop.json`` of a loop over several
paradigms (the plans side by side); capacities MW, costs $ billion over the horizon.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from gridlayers.report.common import colour, grouped_bars, label, new_figure
from gridlayers.results.load import RunResults

#: Per-LDA plan decisions (key in ``plan["ldas"][lda]``, label), MW.
_LDA_KEYS = (
    ("der_pv_mw", "DER PV"),
    ("der_battery_mw", "DER battery"),
    ("interface_capacity_mw", "interface"),
)
#: Cost parts of a plan (key, label), $ billion over the horizon.
_COSTS = (
    ("investment_busd", "investment"),
    ("operation_busd", "operation"),
    ("externalities_busd", "externalities"),
)


def plan_capacity(run: RunResults) -> Figure | str:
    """Plot new capacity by technology, per-LDA DER and interface capacity, and plan cost."""
    plan = run.plan or (run.loop or {}).get("plan")
    if not plan or not isinstance(plan.get("capacity_mw"), dict):
        return "no plan_summary.json with capacity_mw in this folder"
    ldas = plan.get("ldas") or {}
    ncols = 3 if ldas else 2
    fig, axes = new_figure("Planned capacity mix", 1, ncols, row_height=3.4)
    ax = axes[0, 0]
    capacity = plan["capacity_mw"]
    bars = ax.bar(list(capacity), list(capacity.values()), color="C0")
    ax.bar_label(bars, [f"{v:,.0f}" for v in capacity.values()], fontsize="x-small")
    ax.set_ylabel("new capacity [MW]")
    ax.set_xlabel("technology")
    ax.set_title("new capacity over the horizon", fontsize="medium")
    ax.tick_params(axis="x", rotation=30)
    if ldas:
        ax = axes[0, 1]
        x = np.arange(len(ldas))
        width = 0.8 / len(_LDA_KEYS)
        for k, (key, name) in enumerate(_LDA_KEYS):
            values = [float(v.get(key) or 0.0) for v in ldas.values()]
            ax.bar(x + (k - 1) * width, values, width, label=name, color=f"C{k + 1}")
        ax.set_xticks(x, list(ldas))
        ax.set_xlabel("LDA")
        ax.set_ylabel("capacity [MW]")
        ax.set_title("per LDA (last epoch)", fontsize="medium")
        ax.legend(fontsize="x-small")
    ax = axes[0, -1]
    for k, (key, name) in enumerate(_COSTS):
        value = float(plan.get(key) or 0.0)
        bars = ax.bar([name], [value], label=name, color=f"C{k + 4}")
        ax.bar_label(bars, [f"{value:.3f}"], fontsize="x-small")
    ax.set_xlabel("cost part")
    ax.set_ylabel("cost [$ billion over the horizon]")
    ax.set_title(
        f"cost (objective {plan.get('objective_busd', np.nan):.3f} $bn)", fontsize="medium"
    )
    ax.legend(fontsize="x-small")
    return fig


def loop_convergence(run: RunResults) -> Figure | str:
    """Objective, plan change and per-LDA decisions and loss factors per loop round."""
    rounds = (run.loop or {}).get("rounds") or []
    if not rounds:
        return "no loop.json with rounds in this folder"
    k = [r["round"] for r in rounds]
    status = run.loop.get("status", "?")
    fig, axes = new_figure(f"Planning loop convergence ({status})", 2, 2, row_height=3.0)
    ax = axes[0, 0]
    ax.plot(k, [r["plan"]["objective_busd"] for r in rounds], "o-", label="objective")
    ax.set_ylabel("plan objective [$ billion]")
    ax.set_title("plan objective", fontsize="medium")
    ax = axes[0, 1]
    change = [np.nan if r.get("plan_change_mw") is None else r["plan_change_mw"] for r in rounds]
    ax.plot(k, change, "o-", label="plan change")
    tolerance = (run.loop.get("settings") or {}).get("tolerance_mw")
    if tolerance:
        ax.axhline(tolerance, color="r", ls="--", label=f"tolerance {tolerance} MW")
        ax.set_yscale("log")
    ax.set_ylabel("plan change [MW]")
    ax.set_title("largest change of an LDA decision", fontsize="medium")
    ldas = list(rounds[-1]["plan"].get("ldas") or {})
    ax = axes[1, 0]
    for i, lda in enumerate(ldas):
        for key, name, ls in (
            ("der_pv_mw", "PV", "-"),
            ("der_battery_mw", "battery", "--"),
            ("interface_capacity_mw", "interface", ":"),
        ):
            ax.plot(
                k,
                [r["plan"]["ldas"][lda][key] for r in rounds],
                ls=ls,
                marker=".",
                color=f"C{i}",
                label=f"{lda} {name}",
            )
    ax.set_ylabel("capacity [MW]")
    ax.set_title("DER and interface capacity per LDA", fontsize="medium")
    ax = axes[1, 1]
    for i, lda in enumerate(ldas):
        ax.plot(
            k, [r["parameters"][lda]["loss_factor"] for r in rounds], "o-", color=f"C{i}", label=lda
        )
    ax.set_ylabel("loss factor [-]")
    ax.set_title("LDA loss factor used by the plan", fontsize="medium")
    for ax in axes.flat:
        ax.set_xlabel("round")
        ax.set_xticks(k)
        ax.legend(fontsize="x-small")
    return fig


def plans_by_paradigm(run: RunResults) -> Figure | str:
    """Last plan of each paradigm's loop side by side: capacity mix, DER per LDA, cost.

    Read from ``<paradigm>/loop.json`` of a loop over several paradigms; capacities MW,
    costs $ billion over the horizon.
    """
    plans = {p: record["plan"] for p, record in run.loops.items()}
    if not plans:
        return "no <paradigm>/loop.json in this folder (a loop over several paradigms)"
    order = list(plans)
    fig, axes = new_figure("Plans per paradigm (last loop round)", 2, 2, row_height=3.2)
    technologies = list(dict.fromkeys(t for plan in plans.values() for t in plan["capacity_mw"]))
    ax = axes[0, 0]
    grouped_bars(
        ax,
        technologies,
        {
            p: [float(plan["capacity_mw"].get(t, 0.0)) for t in technologies]
            for p, plan in plans.items()
        },
        order,
    )
    ax.set_xlabel("technology")
    ax.set_ylabel("new capacity [MW]")
    ax.set_title("new capacity over the horizon", fontsize="medium")
    ax.tick_params(axis="x", rotation=30)
    ldas = list(dict.fromkeys(a for plan in plans.values() for a in plan.get("ldas") or {}))
    for ax, (key, name) in zip(axes.flat[1:3], _LDA_KEYS[:2], strict=True):
        if not ldas:
            ax.set_axis_off()
            continue
        grouped_bars(
            ax,
            ldas,
            {
                p: [float(((plan.get("ldas") or {}).get(a) or {}).get(key) or 0.0) for a in ldas]
                for p, plan in plans.items()
            },
            order,
        )
        ax.set_xlabel("LDA")
        ax.set_ylabel(f"{name} [MW]")
        ax.set_title(f"{name} per LDA (last epoch)", fontsize="medium")
        ax.tick_params(axis="x", rotation=45, labelsize="x-small")
    ax = axes[1, 1]
    parts = [("objective_busd", "objective"), *_COSTS]
    grouped_bars(
        ax,
        [name for _, name in parts],
        {p: [float(plan.get(key) or 0.0) for key, _ in parts] for p, plan in plans.items()},
        order,
    )
    ax.set_xlabel("cost part")
    ax.set_ylabel("cost [$ billion over the horizon]")
    ax.set_title("plan cost", fontsize="medium")
    for ax in axes.flat:
        if ax.has_data():
            ax.legend(fontsize="x-small")
    return fig


def loops_by_paradigm(run: RunResults) -> Figure | str:
    """Each paradigm's loop per round: plan objective ($ billion) and plan change (MW)."""
    if not run.loops:
        return "no <paradigm>/loop.json in this folder (a loop over several paradigms)"
    order = list(run.loops)
    fig, axes = new_figure("Planning loop convergence per paradigm", 1, 2, row_height=3.2)
    tolerance = None
    for p, record in run.loops.items():
        rounds = record.get("rounds") or []
        k = [r["round"] for r in rounds]
        style = {"marker": "o", "color": colour(p, order), "label": label(p)}
        axes[0, 0].plot(k, [r["plan"]["objective_busd"] for r in rounds], **style)
        change = [
            np.nan if r.get("plan_change_mw") is None else r["plan_change_mw"] for r in rounds
        ]
        axes[0, 1].plot(k, change, **style)
        tolerance = tolerance or (record.get("settings") or {}).get("tolerance_mw")
    axes[0, 0].set_ylabel("plan objective [$ billion]")
    axes[0, 0].set_title("plan objective", fontsize="medium")
    if tolerance:
        axes[0, 1].axhline(tolerance, color="r", ls="--", label=f"tolerance {tolerance} MW")
        axes[0, 1].set_yscale("log")
    axes[0, 1].set_ylabel("plan change [MW]")
    axes[0, 1].set_title("largest change of an LDA decision", fontsize="medium")
    for ax in axes.flat:
        ax.set_xlabel("round")
        ax.legend(fontsize="x-small")
    return fig
