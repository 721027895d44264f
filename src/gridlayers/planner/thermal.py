"""Existing thermal fleet with exogenous retirements (reference (1), C13).

Units ``i`` are available in epoch y iff ``retirement_year_i >= base_year + E y``.
Dispatch variables exist only for available (unit, epoch) pairs, which is the
same as the reference's ``p <= Pmax u[y,i]`` with u = 0 elsewhere. There is no
unit commitment and no minimum output.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.timescale import weighted_hours_sum


def unit_available(config: PlannerConfig, retirement_year: float, y: int) -> bool:
    """Return whether a unit retiring in ``retirement_year`` runs in epoch ``y``."""
    if not config.exogenous_retirements:
        return True
    return retirement_year >= config.base_year + config.epoch_years * y


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define dispatch ``DispatchUnit`` and reserve ``ReserveUnit`` of existing units.

    Notes
    -----
    ``0 <= p <= Pmax``, ``0 <= rg <= RU delta``, ``p + rg <= Pmax``;
    for h >= 2: ``p[h] + rg[h] - p[h-1] <= RU`` and ``p[h-1] + rg[h-1] - p[h] <= RD``.

    """
    units = inputs.units
    m.UNITS = pyo.Set(initialize=list(units.index), ordered=True, doc="existing units i")
    m.unit_zone = pyo.Param(
        m.UNITS, initialize=units["zone"].to_dict(), within=pyo.Any, doc="zone of unit i"
    )
    for col, doc in (
        ("pmax_mw", "Pmax: capacity, MW"),
        ("cost_usd_per_mwh", "c1: energy cost, $/MWh"),
        ("ramp_up_mw_per_h", "RU: ramp-up limit, MW/h"),
        ("ramp_down_mw_per_h", "RD: ramp-down limit, MW/h"),
        ("co2_t_per_mwh", "e_i: CO2 rate, t/MWh"),
        ("aq_usd2016_per_mwh", "MD_i: marginal air-quality damage, 2016$/MWh"),
    ):
        setattr(m, f"unit_{col}", pyo.Param(m.UNITS, initialize=units[col].to_dict(), doc=doc))
    avail = [
        (i, y)
        for i in units.index
        for y in m.EPOCHS
        if unit_available(config, units.at[i, "retirement_year"], y)
    ]
    m.UNIT_EPOCHS = pyo.Set(initialize=avail, dimen=2, doc="(i, y) with unit i available")
    m.UNIT_TIMEPOINTS = pyo.Set(
        initialize=[(i, y, d, h) for (i, y) in avail for d in m.DAYS for h in m.HOURS],
        dimen=4,
        doc="(i, y, d, h) with unit i available",
    )
    delta = config.reserve_response_h
    m.DispatchUnit = pyo.Var(
        m.UNIT_TIMEPOINTS,
        bounds=lambda m, i, *t: (0.0, m.unit_pmax_mw[i]),
        doc="p: output of existing unit, MW",
    )
    m.ReserveUnit = pyo.Var(
        m.UNIT_TIMEPOINTS,
        bounds=lambda m, i, *t: (0.0, m.unit_ramp_up_mw_per_h[i] * delta),
        doc="rg: spinning reserve of existing unit, MW",
    )
    m.UnitHeadroom = pyo.Constraint(
        m.UNIT_TIMEPOINTS,
        rule=lambda m, i, *t: m.DispatchUnit[i, *t] + m.ReserveUnit[i, *t] <= m.unit_pmax_mw[i],
        doc="p + rg <= Pmax, MW",
    )
    # A ramp limit >= Pmax can never bind (p + rg <= Pmax, p >= 0): omit those rows.
    first = m.first_hour
    up_idx = [
        k
        for k in m.UNIT_TIMEPOINTS
        if k[3] != first and m.unit_ramp_up_mw_per_h[k[0]] < m.unit_pmax_mw[k[0]]
    ]
    down_idx = [
        k
        for k in m.UNIT_TIMEPOINTS
        if k[3] != first and m.unit_ramp_down_mw_per_h[k[0]] < m.unit_pmax_mw[k[0]]
    ]
    m.UNIT_RAMP_UP_TIMEPOINTS = pyo.Set(
        initialize=up_idx, dimen=4, doc="unit timepoints h >= 2 with RU < Pmax"
    )
    m.UNIT_RAMP_DOWN_TIMEPOINTS = pyo.Set(
        initialize=down_idx, dimen=4, doc="unit timepoints h >= 2 with RD < Pmax"
    )
    m.UnitRampUp = pyo.Constraint(
        m.UNIT_RAMP_UP_TIMEPOINTS,
        rule=lambda m, i, y, d, h: (
            m.DispatchUnit[i, y, d, h] + m.ReserveUnit[i, y, d, h] - m.DispatchUnit[i, y, d, h - 1]
            <= m.unit_ramp_up_mw_per_h[i]
        ),
        doc="p[h] + rg[h] - p[h-1] <= RU, MW",
    )
    m.UnitRampDown = pyo.Constraint(
        m.UNIT_RAMP_DOWN_TIMEPOINTS,
        rule=lambda m, i, y, d, h: (
            m.DispatchUnit[i, y, d, h - 1]
            + m.ReserveUnit[i, y, d, h - 1]
            - m.DispatchUnit[i, y, d, h]
            <= m.unit_ramp_down_mw_per_h[i]
        ),
        doc="p[h-1] + rg[h-1] - p[h] <= RD, MW",
    )
    _define_aggregates(m, inputs)


def _define_aggregates(m: pyo.ConcreteModel, inputs: PlannerInputs) -> None:
    """Zonal output, reserve, cost, CO2 and AQ of the existing fleet, and registrations."""
    by_zone_epoch: dict[tuple[int, str], list[int]] = {}
    by_epoch: dict[int, list[int]] = {}
    for i, y in m.UNIT_EPOCHS:
        by_zone_epoch.setdefault((y, m.unit_zone[i]), []).append(i)
        by_epoch.setdefault(y, []).append(i)
    m.ZoneExistingDispatch = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: sum(
            m.DispatchUnit[i, y, d, h] for i in by_zone_epoch.get((y, z), [])
        ),
        doc="output of existing units in zone, MW",
    )
    m.Zone_Power_Injections.append("ZoneExistingDispatch")
    m.ExistingReserve = pyo.Expression(
        m.TIMEPOINTS,
        rule=lambda m, y, d, h: sum(m.ReserveUnit[i, y, d, h] for i in by_epoch.get(y, [])),
        doc="spinning reserve of existing units, MW",
    )
    m.Reserve_Provisions.append("ExistingReserve")

    def annual(y: int, coef: pyo.Param) -> object:
        return weighted_hours_sum(
            m,
            lambda y, d, h: sum(coef[i] * m.DispatchUnit[i, y, d, h] for i in by_epoch.get(y, [])),
            y,
        )

    m.ExistingEnergyCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: m.discount_factor[y] * annual(y, m.unit_cost_usd_per_mwh),
        doc="discounted annual energy cost of existing units, $/yr",
    )
    register_cost(m, "ExistingEnergyCost", "operation")
    m.ExistingCO2 = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: annual(y, m.unit_co2_t_per_mwh),
        doc="annual CO2 of existing units, t/yr",
    )
    m.Epoch_CO2_Emissions.append("ExistingCO2")
    m.ExistingAQ = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: annual(y, m.unit_aq_usd2016_per_mwh),
        doc="annual air-quality damage of existing units, 2016$/yr",
    )
    m.Epoch_AQ_Damages.append("ExistingAQ")


def summarize(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> dict:
    """Return existing-fleet energy by epoch (MWh/yr)."""
    return {
        "existing_generation_mwh_per_yr": {
            str(y): pyo.value(
                weighted_hours_sum(
                    m,
                    lambda y, d, h: sum(
                        m.DispatchUnit[i, yy, d, h] for (i, yy) in m.UNIT_EPOCHS if yy == y
                    ),
                    y,
                )
            )
            for y in m.EPOCHS
        }
    }
