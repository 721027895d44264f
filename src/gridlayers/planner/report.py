"""Reporting: plan summary in the reference's conventions (section 6).

Totals are $ billion over the horizon: each epoch's annual discounted value
counts ``epoch_years`` times. CO2 in Mt is the sum of the annual tracking values
(no x epoch_years), as in the reference.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import PlannerInputs

USD_PER_BUSD = 1e9
T_PER_MT = 1e6


def _merge(summary: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(summary.get(key), dict):
            summary[key].update(value)
        else:
            summary[key] = value


def summarize_model(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> dict:
    """Return the plan summary of a solved model.

    Parameters
    ----------
    m : pyomo.environ.ConcreteModel
        Solved planner model.
    inputs : PlannerInputs
        Its data.
    config : PlannerConfig
        Its configuration.

    Returns
    -------
    dict
        ``investment_busd``, ``operation_busd``, ``externalities_busd``,
        ``carbon_cost_busd``, ``air_quality_cost_busd``, ``hard_cost_busd`` ($ billion),
        ``objective_busd``, ``capacity_mw`` (new capacity by technology), ``upgrades``,
        ``cables``, ``co2_mt``, ``cost_by_epoch_usd_per_yr`` and module results.

    """
    years = config.epoch_years
    by_epoch = {
        c: {str(y): pyo.value(getattr(m, c)[y]) for y in m.EPOCHS}
        for c in m.Cost_Components_Per_Epoch
    }
    totals = dict.fromkeys(("investment", "operation", "externality"), 0.0)
    for c, values in by_epoch.items():
        totals[m.cost_component_category[c]] += years * sum(values.values()) / USD_PER_BUSD
    summary: dict = {
        "investment_busd": totals["investment"],
        "operation_busd": totals["operation"],
        "externalities_busd": totals["externality"],
        "carbon_cost_busd": years * sum(by_epoch.get("EmissionCost", {}).values()) / USD_PER_BUSD,
        "air_quality_cost_busd": years
        * sum(by_epoch.get("AirQualityCost", {}).values())
        / USD_PER_BUSD,
        "hard_cost_busd": totals["investment"] + totals["operation"],
        "objective_busd": years
        * pyo.value(m.Minimize_System_Cost)
        / config.obj_scale
        / USD_PER_BUSD,
        "capacity_mw": {},
    }
    for mod in m.planner_modules:
        if hasattr(mod, "summarize"):
            _merge(summary, mod.summarize(m, inputs, config))
    extra = summary.pop("_co2_tracking_extra_t", {})
    co2 = {
        y: sum(pyo.value(getattr(m, c)[y]) for c in m.Epoch_CO2_Emissions) + extra.get(y, 0.0)
        for y in m.EPOCHS
    }
    summary["co2_mt"] = sum(co2.values()) / T_PER_MT
    summary["co2_t_per_yr_by_epoch"] = {str(y): v for y, v in co2.items()}
    summary["cost_by_epoch_usd_per_yr"] = by_epoch
    summary["unserved_energy_mwh_per_yr"] = {
        str(y): pyo.value(
            sum(
                m.day_days_per_yr[d] * m.LoadShed[y, z, d, h]
                for z in m.ZONES
                for d in m.DAYS
                for h in m.HOURS
            )
        )
        for y in m.EPOCHS
    }
    return summary
