"""Zonal prices and congestion: what operation priced, against what the plan priced.

Both sides are reduced to the same quantity, the **zonal price premium** of an LDA's
zone in each hour of a planner day ($/MWh, signed)::

    premium[z, h] = lambda[z, h] - sum_b w_b lambda[b, h]

the zone's price minus the load-weighted mean price of the system in that hour, with
the weights ``w_b`` = each transmission bus's share of the bulk load of the
co-simulated net (for the ISO-NE net: the zones' shares of the peak-hour load). A
uniform price level (what the marginal unit costs) cancels; what remains is
congestion: zones behind a binding inter-zonal limit are dearer (importing) or
cheaper (exporting) than the system.

* **Operation**: the real-time LMPs of the co-simulation (``lmp`` table, every
  transmission bus), averaged over the intervals of each hour.
* **Plan**: the planner's own zonal prices of its last epoch
  (:func:`gridlayers.planner.prices.zone_prices_usd_per_mwh`), mapped to buses by name.

The loop feeds back the **gap** ``premium_operation - premium_plan`` per LDA, day and
hour as the planner's ``price_adder_usd_per_mwh`` (damped): the congestion the
co-simulation priced that the plan's hourly zonal model did not.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from gridlayers.results.store import ResultStore

HOURS = 24
#: Price spread between buses (max - min) above which an interval counts as congested ($/MWh).
CONGESTED_SPREAD_USD_PER_MWH = 1.0

_LMP = """
SELECT interval, hour(time) AS hour, bus, lmp_usd_per_mwh AS forward, lmp_rt_usd_per_mwh AS rt
FROM lmp WHERE paradigm = ?"""


def bus_weights(loads_mw: Mapping[int, float]) -> dict[int, float]:
    """Normalise bulk load per bus (MW) to weights that sum to 1 (buses without load: none)."""
    total = sum(v for v in loads_mw.values() if v > 0)
    if total <= 0:
        msg = "the transmission net has no bulk load to weight prices with"
        raise ValueError(msg)
    return {int(b): float(v) / total for b, v in loads_mw.items() if v > 0}


def premium_by_hour(lmp_by_hour: pd.DataFrame, weights: Mapping[int, float]) -> pd.DataFrame:
    """Return each bus's price premium over the load-weighted system price, per hour.

    Parameters
    ----------
    lmp_by_hour : pd.DataFrame
        Index: hour of day (0..23), columns: bus, values: price ($/MWh).
    weights : mapping of int to float
        Bus -> load weight (sums to 1).

    Returns
    -------
    pd.DataFrame
        Same shape, ``lambda[b, h] - sum_b' w_b' lambda[b', h]`` ($/MWh).

    """
    w = pd.Series(weights, dtype=float)
    reference = (lmp_by_hour[w.index] * w).sum(axis=1)
    return lmp_by_hour.sub(reference, axis=0)


def operation_prices(store: ResultStore, paradigm: str) -> dict[str, pd.DataFrame]:
    """Return the co-simulation's mean forward and real-time LMP per hour of day and bus.

    Returns
    -------
    dict
        ``{"forward": DataFrame, "real_time": DataFrame}``, index hour (0..23), columns
        transmission bus, $/MWh; plus ``"congested_share"``: the share of intervals (-)
        whose real-time bus prices spread by more than
        :data:`CONGESTED_SPREAD_USD_PER_MWH`, as a one-column frame by hour.

    """
    rows = store.query(_LMP, [paradigm])
    out = {}
    for key, col in (("forward", "forward"), ("real_time", "rt")):
        out[key] = rows.pivot_table(index="hour", columns="bus", values=col, aggfunc="mean")
    spread = rows.groupby(["interval", "hour"])["rt"].agg(lambda s: s.max() - s.min())
    congested = (spread > CONGESTED_SPREAD_USD_PER_MWH).groupby(level="hour").mean()
    out["congested_share"] = congested.to_frame("share")
    return out


def plan_prices_by_bus(
    zone_prices: Mapping[tuple[str, int, int], float], day: int, bus_of_zone: Mapping[str, int]
) -> pd.DataFrame:
    """Return the planner's zonal prices of one day as hour (0..23) x bus ($/MWh)."""
    data = {
        bus: [zone_prices[zone, day, h] for h in range(1, HOURS + 1)]
        for zone, bus in bus_of_zone.items()
    }
    return pd.DataFrame(data, index=pd.RangeIndex(HOURS, name="hour"))


def hourly_list(series: pd.Series) -> list[float | None]:
    """Return 24 hourly values (hour 0..23) as floats, ``None`` where missing."""
    return [None if pd.isna(v) else float(v) for v in series.reindex(range(HOURS))]


def price_gaps(
    operation: pd.DataFrame,
    plan: pd.DataFrame,
    weights: Mapping[int, float],
    interfaces: Mapping[str, int],
) -> dict[str, dict[str, list[float | None]]]:
    """Return, per LDA, the operated and planned premium of its zone and their gap by hour.

    Parameters
    ----------
    operation : pd.DataFrame
        Co-simulated real-time LMP, hour x bus ($/MWh; hours without intervals missing).
    plan : pd.DataFrame
        Planner zonal price, hour x bus ($/MWh).
    weights : mapping of int to float
        Bus load weights (sum 1), the same for both sides.
    interfaces : mapping of str to int
        LDA -> its interface bus (= its zone's bus).

    Returns
    -------
    dict
        ``{lda: {"operation": [24], "plan": [24], "gap": [24]}}`` ($/MWh; ``None`` in
        hours the co-simulation did not cover).

    """
    op = premium_by_hour(operation, weights)
    pl = premium_by_hour(plan, weights)
    out = {}
    for lda, bus in interfaces.items():
        gap = op[bus] - pl[bus].reindex(op.index)
        out[lda] = {
            "operation": hourly_list(op[bus]),
            "plan": hourly_list(pl[bus]),
            "gap": hourly_list(gap),
        }
    return out
