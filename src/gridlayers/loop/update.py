"""Damped update of the planner's LDA parameters from measured operation (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from gridlayers.loop.config import LoopConfig
from gridlayers.loop.measure import LDAMeasurement
from gridlayers.planner.config import LDAOperationalParams


def combine_days(
    by_day: Mapping[int, Mapping[str, LDAMeasurement]], weights: Mapping[int, float]
) -> dict[str, dict]:
    """Merge per-day measurements into one per LDA, weighting days like the planner.

    Parameters
    ----------
    by_day : mapping of int to mapping of str to LDAMeasurement
        Measurements per planner day and LDA.
    weights : mapping of int to float
        Planner day weights (shares of the year, -).

    Returns
    -------
    dict of str to dict
        Per LDA: ``flex_share_by_hour`` (24 values or ``None``, weighted over the days
        that had offered flexibility in that hour), ``loss_factor`` and
        ``cost_adder_usd_per_mwh`` (weighted sums of losses / costs over weighted
        throughput; ``None`` without throughput), ``peak_import_mw`` (MW, max).

    """
    ldas = sorted({a for day in by_day.values() for a in day})
    out = {}
    for a in ldas:
        days = [(weights[d], m[a]) for d, m in by_day.items() if a in m]
        shares = []
        for h in range(24):
            known = [
                (w, x.flex_share_by_hour[h]) for w, x in days if x.flex_share_by_hour[h] is not None
            ]
            total = sum(w for w, _ in known)
            shares.append(sum(w * v for w, v in known) / total if total > 0 else None)
        throughput = sum(w * x.throughput_mwh for w, x in days)
        losses = sum(w * x.losses_mwh for w, x in days)
        cost = sum(w * (x.redispatch_cost_usd + x.imbalance_cost_usd) for w, x in days)
        out[a] = {
            "flex_share_by_hour": shares,
            "loss_factor": losses / throughput if throughput > 0 else None,
            "cost_adder_usd_per_mwh": cost / throughput if throughput > 0 else None,
            "peak_import_mw": max(x.peak_import_mw for _, x in days),
        }
    return out


def damped_update(
    current: LDAOperationalParams, measured: Mapping, config: LoopConfig
) -> LDAOperationalParams:
    """Move ``current`` a ``config.damping`` share of the way towards ``measured``.

    Values the measurement lacks (``None``) keep their current value. The loss factor is
    clipped to ``[min_loss_factor, max_loss_factor]``, shares to ``[0, 1]``, the cost
    adder to ``>= 0`` ($/MWh). With ``config.price_feedback``, ``measured`` may carry
    ``price_gap_usd_per_mwh`` (planner day -> 24 values, $/MWh, signed, see
    :mod:`gridlayers.loop.prices`): the price adder of each day and hour moves towards it
    (not clipped); days and hours without a gap keep their adder.
    """
    alpha = config.damping

    def step(old: float, new: float | None, lo: float, hi: float) -> float:
        if new is None:
            return old
        return old + alpha * (min(max(new, lo), hi) - old)

    inf = float("inf")
    return LDAOperationalParams(
        flex_availability_by_hour=[
            step(o, n, 0.0, 1.0)
            for o, n in zip(
                current.flex_availability_by_hour, measured["flex_share_by_hour"], strict=True
            )
        ],
        loss_factor=step(
            current.loss_factor,
            measured["loss_factor"],
            config.min_loss_factor,
            config.max_loss_factor,
        ),
        operating_cost_adder_usd_per_mwh=step(
            current.operating_cost_adder_usd_per_mwh,
            measured["cost_adder_usd_per_mwh"],
            0.0,
            inf,
        ),
        price_adder_usd_per_mwh=damped_price_adder(
            current.price_adder_usd_per_mwh,
            measured["price_gap_usd_per_mwh"]
            if config.price_feedback and "price_gap_usd_per_mwh" in measured
            else {},
            alpha,
        ),
    )


def damped_price_adder(
    current: Mapping[int, list[float]],
    gaps: Mapping[int, list[float | None]],
    damping: float,
) -> dict[int, list[float]]:
    """Move each day's hourly price adder ``damping`` of the way towards its measured gap.

    Parameters
    ----------
    current : mapping of int to list of float
        Adder per planner day (24 values, $/MWh); missing days are 0.
    gaps : mapping of int to list of float or None
        Measured gap per planner day (24 values, $/MWh; ``None`` = not measured).
    damping : float
        Weight of the measurement (-).

    """
    out = {int(d): [float(v) for v in hours] for d, hours in current.items()}
    for day, hours in gaps.items():
        old = out.get(int(day), [0.0] * 24)
        out[int(day)] = [
            o if g is None else o + damping * (g - o) for o, g in zip(old, hours, strict=True)
        ]
    return out


#: Plan quantities of an LDA whose movement decides convergence (MW).
PLAN_KEYS = ("der_pv_mw", "der_battery_mw", "interface_capacity_mw")


def plan_change_mw(before: Mapping[str, Mapping], after: Mapping[str, Mapping]) -> float:
    """Largest absolute change of any LDA's PV, battery or interface capacity (MW)."""
    return max(abs(float(after[a][k]) - float(before[a][k])) for a in after for k in PLAN_KEYS)
