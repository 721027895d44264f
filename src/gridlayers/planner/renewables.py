"""Existing and new variable renewables with curtailment (reference (5), C10, C12).

Existing output ``RE0[z,d,h]`` (existing onshore wind + PV and the exogenous
offshore wind) is the same in every epoch. New onshore wind and PV are built at
onshore zones: ``NRE[y,z,d,h] = sum_{v<=y} sum_k BuildRE[k,z,v] cf_k[z,d,h]``.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.timescale import end_year_index, start_year_index, weighted_hours_sum

KW_PER_MW = 1000.0
#: Report name -> (capex column, FOM column, PlannerInputs profile attribute).
RE_TECHS = {"wind": ("Cp_wind", "fom_wind", "cf_wind"), "pv": ("Cp_pv", "fom_pv", "cf_pv")}


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define renewable builds, available output, curtailment, costs and registrations.

    Notes
    -----
    Curtailment ``0 <= Curtail <= alpha_plus (RE0 + NRE)`` at every zone (offshore
    nodes too). Injection ``RE0 + NRE - Curtail``. Reserve requirement
    ``re_share * sum_z (RE0 + NRE)``. RPS credit ``sum_{d,h} (RE0 + NRE - Curtail)``.

    """
    zdh = [(z, d, h) for z in inputs.zones for d in inputs.days for h in inputs.hours]
    m.existing_re_mw = pyo.Param(
        m.ZONES,
        m.DAYS,
        m.HOURS,
        initialize={k: inputs.existing_re_mw[k] for k in zdh},
        doc="RE0: existing renewable output, MW",
    )
    m.RE_TECHS = pyo.Set(initialize=list(RE_TECHS), ordered=True, doc="new renewables k")
    m.re_cf = pyo.Param(
        m.RE_TECHS,
        m.ONSHORE_ZONES,
        m.DAYS,
        m.HOURS,
        initialize={
            (k, z, d, h): getattr(inputs, RE_TECHS[k][2])[z, d, h]
            for k in RE_TECHS
            for (z, d, h) in zdh
            if z in m.ONSHORE_ZONES
        },
        doc="cf: availability of new wind/PV per MW, p.u.",
    )
    m.RE_BUILDS = pyo.Set(
        initialize=m.RE_TECHS * m.ONSHORE_ZONES * m.EPOCHS,
        dimen=3,
        doc="(k, z, v) new renewable builds",
    )
    m.Investment_Variables.append("BuildRE")
    m.BuildRE = pyo.Var(
        m.RE_BUILDS,
        within=pyo.NonNegativeReals,
        doc="X_w / X_pv: new capacity added in epoch v, MW",
    )
    m.NewREAvailable = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            sum(
                m.BuildRE[k, z, v] * m.re_cf[k, z, d, h]
                for k in m.RE_TECHS
                for v in m.EPOCHS
                if v <= y
            )
            if z in m.ONSHORE_ZONES
            else 0.0
        ),
        doc="NRE: available output of new wind and PV, MW",
    )
    m.Curtail = pyo.Var(
        m.ZONE_TIMEPOINTS, within=pyo.NonNegativeReals, doc="ws: renewable curtailment, MW"
    )
    m.CurtailLimit = pyo.Constraint(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            m.Curtail[y, z, d, h]
            <= config.curtailment_max_share
            * (m.existing_re_mw[z, d, h] + m.NewREAvailable[y, z, d, h])
        ),
        doc="(5) ws <= alpha_plus (RE0 + NRE), MW",
    )
    m.ZoneRenewableOutput = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            m.existing_re_mw[z, d, h] + m.NewREAvailable[y, z, d, h] - m.Curtail[y, z, d, h]
        ),
        doc="renewable injection RE0 + NRE - ws, MW",
    )
    m.Zone_Power_Injections.append("ZoneRenewableOutput")
    _define_registrations(m, config)
    _define_costs(m, inputs, config)


def _define_registrations(m: pyo.ConcreteModel, config: PlannerConfig) -> None:
    """Reserve requirement for renewables and the RPS credit of renewable output."""
    m.ReserveRERequirement = pyo.Expression(
        m.TIMEPOINTS,
        rule=lambda m, y, d, h: (
            config.reserve_re_share
            * sum(m.existing_re_mw[z, d, h] + m.NewREAvailable[y, z, d, h] for z in m.ZONES)
        ),
        doc="reserve for renewables: share x available RE (all zones), MW",
    )
    m.Reserve_Requirements.append("ReserveRERequirement")
    m.ZoneRenewableRPS = pyo.Expression(
        m.EPOCHS,
        m.ZONES,
        rule=lambda m, y, z: sum(
            m.ZoneRenewableOutput[y, z, d, h] for d in m.DAYS for h in m.HOURS
        ),
        doc="unweighted renewable energy over modelled hours, MWh",
    )
    m.Zone_RPS_Credits.append("ZoneRenewableRPS")


def _define_costs(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Investment annuities, FOM and curtailment penalty of renewables."""
    costs, crf = inputs.costs, config.crf_generation

    def capex(k: str, v: int) -> float:
        return KW_PER_MW * costs.at[start_year_index(config, v), RE_TECHS[k][0]]

    def fom(k: str, y: int) -> float:
        return KW_PER_MW * costs.at[end_year_index(config, y), RE_TECHS[k][1]]

    m.REInvestment = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: sum(
            m.annuity_age_factor[y, v] * crf * capex(k, v) * m.BuildRE[k, z, v]
            for (k, z, v) in m.RE_BUILDS
            if v <= y
        ),
        doc="INVG (wind/PV part): age-discounted capex annuities, $/yr",
    )
    register_cost(m, "REInvestment", "investment")
    penalty = config.curtailment_cost_usd_per_mwh
    m.REFixedCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y]
            * (
                sum(fom(k, y) * m.BuildRE[k, z, y] for k in m.RE_TECHS for z in m.ONSHORE_ZONES)
                + (
                    penalty
                    * weighted_hours_sum(
                        m, lambda y, d, h: sum(m.Curtail[y, z, d, h] for z in m.ZONES), y
                    )
                    if penalty
                    else 0.0
                )
            )
        ),
        doc="FOM on epoch-y additions (+ spillage penalty), discounted, $/yr",
    )
    register_cost(m, "REFixedCost", "operation")


def summarize(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> dict:
    """Return new wind and PV capacity (MW, total and by zone)."""
    by_zone = {
        k: {z: sum(pyo.value(m.BuildRE[k, z, v]) for v in m.EPOCHS) for z in m.ONSHORE_ZONES}
        for k in m.RE_TECHS
    }
    return {
        "capacity_mw": {k: sum(by_zone[k].values()) for k in m.RE_TECHS},
        "capacity_by_zone_mw": by_zone,
    }
