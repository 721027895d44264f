"""KPIs of a run, computed from the ResultStore only (so a failed run still reports).

Costs are $ over the simulated horizon, energies MWh, violations count bus- or
branch-intervals (one bus outside its band for one interval counts 1).
"""

from __future__ import annotations

import math
from typing import Any

from gridlayers.results.store import ResultStore


def _clean(value: Any) -> Any:
    """Make a value JSON-ready: NaN becomes None, solver noise around 0 becomes 0."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if abs(value) < 1e-9:
            return 0.0
    return value


def paradigm_kpis(
    store: ResultStore, paradigm: str, interval_h: float, interfaces: dict[str, int]
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

    Returns
    -------
    dict
        Cost ($), energy (MWh), physics (counts, pu, %), prices ($/MWh), computation.

    """
    market = store.query(
        """SELECT count(*) AS intervals, coalesce(sum(total_cost_usd), 0) AS total_cost_usd,
                  coalesce(sum(generation_cost_usd), 0) AS generation_cost_usd,
                  coalesce(sum(unserved_mwh), 0) AS unserved_energy_mwh,
                  coalesce(sum(solve_seconds), 0) AS tso_solve_seconds,
                  max(tso_variables) AS tso_variables, max(tso_constraints) AS tso_constraints
           FROM market_interval WHERE paradigm = ?""",
        [paradigm],
    ).iloc[0]
    physics = store.query(
        """SELECT coalesce(sum(losses_mw), 0) * ? AS losses_mwh,
                  coalesce(sum(p_import_mw), 0) * ? AS lda_import_mwh,
                  coalesce(sum(voltage_violations), 0) AS voltage_violations,
                  coalesce(sum(thermal_violations), 0) AS thermal_violations,
                  min(vm_min_pu) AS min_voltage_pu, max(vm_max_pu) AS max_voltage_pu,
                  max(max_loading_percent) AS max_loading_percent,
                  coalesce(sum(CASE WHEN converged THEN 0 ELSE 1 END), 0)
                      AS nonconverged_powerflows
           FROM feeder_interval WHERE paradigm = ?""",
        [interval_h, interval_h, paradigm],
    ).iloc[0]
    merged = {**market.to_dict(), **physics.to_dict()}
    kpis: dict[str, Any] = {
        k: _clean(v.item() if hasattr(v, "item") else v) for k, v in merged.items()
    }
    kpis["interface_lmp_usd_per_mwh"] = _interface_prices(store, paradigm, interfaces)
    return kpis


def _interface_prices(
    store: ResultStore, paradigm: str, interfaces: dict[str, int]
) -> dict[str, dict[str, float | None]]:
    prices = {}
    for lda, bus in interfaces.items():
        row = store.query(
            """SELECT avg(lmp_usd_per_mwh) AS mean, min(lmp_usd_per_mwh) AS min,
                      max(lmp_usd_per_mwh) AS max
               FROM lmp WHERE paradigm = ? AND bus = ?""",
            [paradigm, bus],
        ).iloc[0]
        prices[lda] = {k: _clean(float(v)) if v is not None else None for k, v in row.items()}
    return prices
