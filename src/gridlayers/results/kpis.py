"""KPIs of a run, computed from the ResultStore only (so a failed run still reports).

Costs are $ over the simulated horizon, energies MWh, violations count bus- or
branch-intervals (one bus outside its band for one interval counts 1).

``total_cost = generation_cost + der_cost + redispatch_cost + imbalance_cost
+ unserved_energy_mwh * VOLL``, where ``generation_cost`` is the transmission
generators' cost, ``der_cost`` the as-offered cost of the DER set-points, and
``imbalance_cost`` the imbalance price times the absolute deviation of each LDA's
realised interface energy from its cleared interchange.
"""

from __future__ import annotations

import math
from typing import Any

from gridlayers.market import DEFAULT_VOLL_USD_PER_MWH
from gridlayers.results.store import ResultStore

_MARKET = """
SELECT count(*) AS intervals, coalesce(sum(generation_cost_usd), 0) AS generation_cost,
       coalesce(sum(unserved_mwh), 0) AS unserved_energy_mwh,
       coalesce(sum(solve_seconds), 0) AS tso_solve_seconds,
       max(tso_variables) AS tso_variables, max(tso_constraints) AS tso_constraints,
       coalesce(sum(interface_values), 0) AS interface_values_exchanged
FROM market_interval WHERE paradigm = $paradigm"""

_PHYSICS = """
SELECT coalesce(sum(losses_mw), 0) * $hours AS losses_mwh,
       coalesce(sum(p_import_mw), 0) * $hours AS lda_import_mwh,
       coalesce(sum(voltage_violations), 0) AS voltage_violations,
       coalesce(sum(thermal_violations), 0) AS thermal_violations,
       min(vm_min_pu) AS min_voltage_pu, max(vm_max_pu) AS max_voltage_pu,
       max(max_loading_percent) AS max_loading_percent,
       coalesce(sum(CASE WHEN converged THEN 0 ELSE 1 END), 0) AS nonconverged_powerflows
FROM feeder_interval WHERE paradigm = $paradigm"""

_AGENTS = """
SELECT (SELECT coalesce(sum(der_cost_usd), 0) FROM aggregator_interval
        WHERE paradigm = $paradigm) AS der_cost,
       (SELECT coalesce(sum(curtailed_mwh), 0) FROM aggregator_interval
        WHERE paradigm = $paradigm) AS der_curtailed_mwh,
       (SELECT coalesce(sum(redispatch_cost_usd), 0) FROM dso_interval
        WHERE paradigm = $paradigm) AS redispatch_cost,
       (SELECT count(*) FROM dso_interval WHERE paradigm = $paradigm AND infeasible)
        AS dso_infeasible_intervals,
       (SELECT coalesce(sum(abs(-f.p_import_mw - i.cleared_injection_mw)), 0) * $hours
        FROM feeder_interval f JOIN interface_interval i USING (paradigm, interval, lda)
        WHERE paradigm = $paradigm) AS imbalance_mwh"""


def _clean(value: Any) -> Any:
    """Make a value JSON-ready: NaN becomes None, solver noise around 0 becomes 0."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if abs(value) < 1e-9:
            return 0.0
    return value


def paradigm_kpis(
    store: ResultStore,
    paradigm: str,
    interval_h: float,
    interfaces: dict[str, int],
    imbalance_price_usd_per_mwh: float,
) -> dict[str, Any]:
    """Return the KPIs of one paradigm as a flat JSON-ready dict.

    Parameters
    ----------
    store : ResultStore
        The run's results.
    paradigm : str
        Paradigm name.
    interval_h : float
        Interval length in hours (MW times this is MWh).
    interfaces : dict
        LDA name -> interface bus, for per-interface prices.
    imbalance_price_usd_per_mwh : float
        Price on absolute interface deviations ($/MWh).

    Returns
    -------
    dict
        Costs ($), energies (MWh), physics (counts, pu, %), prices ($/MWh), computation.

    """
    params = {"paradigm": paradigm, "hours": interval_h}
    kpis: dict[str, Any] = {}
    for sql in (_MARKET, _PHYSICS, _AGENTS):
        row = store.con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        kpis.update({d[0]: _clean(v) for d, v in zip(row.description, row.fetchone(), strict=True)})
    kpis["imbalance_cost"] = kpis["imbalance_mwh"] * imbalance_price_usd_per_mwh
    kpis["total_cost"] = (
        kpis["generation_cost"] + kpis["der_cost"] + kpis["redispatch_cost"]
        + kpis["imbalance_cost"] + kpis["unserved_energy_mwh"] * DEFAULT_VOLL_USD_PER_MWH
    )  # fmt: skip
    kpis["interface_lmp_usd_per_mwh"] = _interface_prices(store, paradigm, interfaces)
    kpis["dlmp_usd_per_mwh"] = _dlmp_stats(store, paradigm)
    return kpis


def _interface_prices(
    store: ResultStore, paradigm: str, interfaces: dict[str, int]
) -> dict[str, dict[str, float | None]]:
    prices = {}
    for lda, bus in interfaces.items():
        row = store.con.execute(
            """SELECT avg(lmp_usd_per_mwh), min(lmp_usd_per_mwh), max(lmp_usd_per_mwh)
               FROM lmp WHERE paradigm = ? AND bus = ?""",
            [paradigm, bus],
        ).fetchone()
        prices[lda] = dict(zip(("mean", "min", "max"), map(_clean, row), strict=True))
    return prices


def _dlmp_stats(store: ResultStore, paradigm: str) -> dict[str, dict[str, float | None]]:
    rows = store.con.execute(
        """SELECT lda, avg(dlmp_mean_usd_per_mwh), min(dlmp_min_usd_per_mwh),
                  max(dlmp_max_usd_per_mwh)
           FROM dso_interval WHERE paradigm = ? GROUP BY lda ORDER BY lda""",
        [paradigm],
    ).fetchall()
    return {r[0]: dict(zip(("mean", "min", "max"), map(_clean, r[1:]), strict=True)) for r in rows}
