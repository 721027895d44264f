"""New gas technologies: NG-CC-CCS and NG-CT (reference (2), C3-C7).

Technology ``k`` in ``GAS_TECHS``; builds ``BuildGas[k, z, v]`` (MW added in epoch
v) at onshore zones. Capacity ``K[k,z,y] = sum_{v<=y} BuildGas[k,z,v]``.
Ramping and reserve limits are per zone and technology constants (C7).
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.timescale import end_year_index, start_year_index, weighted_hours_sum

KW_PER_MW = 1000.0
#: Report name -> (capex, FOM, VOM columns of the ATB table, AQ damage config field).
GAS_TECHS = {
    "gas_cc_ccs": ("Cp_ng_cc_ccs", "fom_ng_cc_ccs", "vom_ng_cc_ccs", "new_cc_aq_usd2016_per_mwh"),
    "gas_ct": ("Cp_ng_ct", "fom_ng_ct", "vom_ng_ct", "new_ct_aq_usd2016_per_mwh"),
}


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define builds, dispatch, reserve, ramping, costs and emissions of new gas.

    Notes
    -----
    ``p + r <= K``, ``0 <= r <= RU_new delta``; for h >= 2:
    ``p[h] + r[h] - p[h-1] <= RU_new`` and ``p[h-1] + r[h-1] - p[h] <= RU_new``.
    Costs (C3-C5): capex at ys(v) as an age-discounted annuity; FOM at ye(y) on
    epoch-y additions only; VOM of the dispatch of every epoch r <= y at ye(r).

    """
    costs = inputs.costs
    m.GAS_TECHS = pyo.Set(initialize=list(GAS_TECHS), ordered=True, doc="new gas technologies k")
    m.GAS_BUILDS = pyo.Set(
        initialize=m.GAS_TECHS * m.ONSHORE_ZONES * m.EPOCHS, dimen=3, doc="(k, z, v) new gas builds"
    )
    m.BuildGas = pyo.Var(
        m.GAS_BUILDS, within=pyo.NonNegativeReals, doc="X_k: new gas capacity added in epoch v, MW"
    )
    m.Investment_Variables.append("BuildGas")
    m.GasCapacity = pyo.Expression(
        m.GAS_TECHS,
        m.ONSHORE_ZONES,
        m.EPOCHS,
        rule=lambda m, k, z, y: sum(m.BuildGas[k, z, v] for v in m.EPOCHS if v <= y),
        doc="K_k: cumulative new gas capacity, MW",
    )
    m.GAS_TIMEPOINTS = pyo.Set(
        initialize=[
            (k, z, y, d, h)
            for k in GAS_TECHS
            for z in m.ONSHORE_ZONES
            for (y, d, h) in m.TIMEPOINTS
        ],
        dimen=5,
        doc="(k, z, y, d, h)",
    )
    ramp = config.new_gas_ramp_mw_per_h
    m.DispatchGas = pyo.Var(
        m.GAS_TIMEPOINTS, within=pyo.NonNegativeReals, doc="pcc/pct: new gas output, MW"
    )
    m.ReserveGas = pyo.Var(
        m.GAS_TIMEPOINTS,
        bounds=(0.0, ramp * config.reserve_response_h),
        doc="rcc/rct: new gas reserve, MW",
    )
    m.GasHeadroom = pyo.Constraint(
        m.GAS_TIMEPOINTS,
        rule=lambda m, k, z, *t: (
            m.DispatchGas[k, z, *t] + m.ReserveGas[k, z, *t] <= m.GasCapacity[k, z, t[0]]
        ),
        doc="p + r <= K, MW",
    )
    _define_ramping(m, ramp)
    m.ZoneGasDispatch = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            sum(m.DispatchGas[k, z, y, d, h] for k in m.GAS_TECHS) if z in m.ONSHORE_ZONES else 0.0
        ),
        doc="new gas output in zone, MW",
    )
    m.Zone_Power_Injections.append("ZoneGasDispatch")
    m.GasReserve = pyo.Expression(
        m.TIMEPOINTS,
        rule=lambda m, y, d, h: sum(
            m.ReserveGas[k, z, y, d, h] for k in m.GAS_TECHS for z in m.ONSHORE_ZONES
        ),
        doc="spinning reserve of new gas, MW",
    )
    m.Reserve_Provisions.append("GasReserve")
    _define_costs(m, costs, config)


def _define_ramping(m: pyo.ConcreteModel, ramp: float) -> None:
    """Inter-hour ramp limits of new gas including reserve (C7), MW/h."""
    ramp_idx = [t for t in m.GAS_TIMEPOINTS if t[4] != m.first_hour]
    m.GAS_RAMP_TIMEPOINTS = pyo.Set(initialize=ramp_idx, dimen=5, doc="gas timepoints h >= 2")
    m.GasRampUp = pyo.Constraint(
        m.GAS_RAMP_TIMEPOINTS,
        rule=lambda m, k, z, y, d, h: (
            m.DispatchGas[k, z, y, d, h]
            + m.ReserveGas[k, z, y, d, h]
            - m.DispatchGas[k, z, y, d, h - 1]
            <= ramp
        ),
        doc="up-ramp incl. reserve <= RU_new, MW",
    )
    m.GasRampDown = pyo.Constraint(
        m.GAS_RAMP_TIMEPOINTS,
        rule=lambda m, k, z, y, d, h: (
            m.DispatchGas[k, z, y, d, h - 1]
            + m.ReserveGas[k, z, y, d, h - 1]
            - m.DispatchGas[k, z, y, d, h]
            <= ramp
        ),
        doc="down-ramp (reserve of h-1) <= RU_new, MW",
    )


def _gas_energy(m: pyo.ConcreteModel, y: int, coef: dict[str, float]) -> object:
    """Return ``sum_d tau_d sum_h sum_{k,z} coef_k DispatchGas[k,z,y,d,h]``, (coef unit) MWh/yr."""
    return weighted_hours_sum(
        m,
        lambda y, d, h: sum(
            coef[k] * m.DispatchGas[k, z, y, d, h] for k in m.GAS_TECHS for z in m.ONSHORE_ZONES
        ),
        y,
    )


def _define_costs(m: pyo.ConcreteModel, costs: object, config: PlannerConfig) -> None:
    """Investment, fixed and variable costs, CO2 and AQ of new gas."""
    crf = config.crf_generation

    def capex(k: str, v: int) -> float:
        return KW_PER_MW * costs.at[start_year_index(config, v), GAS_TECHS[k][0]]

    def fom(k: str, y: int) -> float:
        return KW_PER_MW * costs.at[end_year_index(config, y), GAS_TECHS[k][1]]

    def vom(r: int) -> dict[str, float]:
        return {k: costs.at[end_year_index(config, r), GAS_TECHS[k][2]] for k in GAS_TECHS}

    m.GasInvestment = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: sum(
            m.annuity_age_factor[y, v] * crf * capex(k, v) * m.BuildGas[k, z, v]
            for (k, z, v) in m.GAS_BUILDS
            if v <= y
        ),
        doc="INVG (gas part): age-discounted capex annuities, $/yr",
    )
    register_cost(m, "GasInvestment", "investment")
    m.GasFixedCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y]
            * sum(fom(k, y) * m.BuildGas[k, z, y] for k in m.GAS_TECHS for z in m.ONSHORE_ZONES)
        ),
        doc="FOM on epoch-y additions at ye(y), discounted, $/yr",
    )
    register_cost(m, "GasFixedCost", "operation")
    m.GasVariableCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y] * sum(_gas_energy(m, r, vom(r)) for r in m.EPOCHS if r <= y)
        ),
        doc="VOM of new-gas dispatch of all epochs r <= y (C5), discounted, $/yr",
    )
    register_cost(m, "GasVariableCost", "operation")
    co2 = {k: config.new_gas_co2_t_per_mwh for k in GAS_TECHS}
    aq = {k: getattr(config, GAS_TECHS[k][3]) for k in GAS_TECHS}
    m.GasCO2 = pyo.Expression(
        m.EPOCHS, rule=lambda m, y: _gas_energy(m, y, co2), doc="annual CO2 of new gas, t/yr"
    )
    m.Epoch_CO2_Emissions.append("GasCO2")
    m.GasAQ = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: _gas_energy(m, y, aq),
        doc="annual air-quality damage of new gas, 2016$/yr",
    )
    m.Epoch_AQ_Damages.append("GasAQ")


def summarize(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> dict:
    """Return new gas capacity (MW, total and by zone) and the extra tracking CO2 (t/yr).

    The reference's tracking ``CO2_y`` counts new-gas dispatch of all epochs r <= y
    (C5); ``_co2_tracking_extra_t[y]`` is the part from epochs r < y.
    """
    by_zone = {
        k: {z: sum(pyo.value(m.BuildGas[k, z, v]) for v in m.EPOCHS) for z in m.ONSHORE_ZONES}
        for k in m.GAS_TECHS
    }
    capacity = {k: sum(by_zone[k].values()) for k in m.GAS_TECHS}
    co2 = {k: config.new_gas_co2_t_per_mwh for k in GAS_TECHS}
    cumulative = {
        y: sum(pyo.value(_gas_energy(m, r, co2)) for r in m.EPOCHS if r < y) for y in m.EPOCHS
    }
    return {
        "capacity_mw": capacity,
        "capacity_by_zone_mw": by_zone,
        "_co2_tracking_extra_t": cumulative,
    }
