"""Load zones: demand, load shedding, flexible demand blocks and the nodal balance.

Zones are abbreviated ``z`` in indexes. Reference constraints (3), (4), (6) and
the VoLL / flexible-demand terms of OP_y.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.timescale import end_year_index, weighted_hours_sum

#: Flexible-demand blocks b and the divisor of (VoLL - c_ref) in their price (None = VoLL).
FLEX_BLOCK_DIVISORS = {1: 12.0, 2: 8.0, 3: 4.0, 4: None}


def define_dynamic_lists(m: pyo.ConcreteModel) -> None:
    """Create ``Zone_Power_Injections`` and ``Zone_Power_Withdrawals`` (MW, [y,z,d,h])."""
    m.Zone_Power_Injections = []
    m.Zone_Power_Withdrawals = []


def flex_block_price(config: PlannerConfig, b: int) -> float:
    """Return the price WTP_b of flexible-demand block ``b``, $/MWh."""
    div = FLEX_BLOCK_DIVISORS[b]
    if div is None:
        return config.voll_usd_per_mwh
    return (config.voll_usd_per_mwh - config.flex_reference_cost_usd_per_mwh) / div


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define zones, grown demand, shedding and flexible demand.

    Notes
    -----
    ``zone_demand_mw[y,z,d,h] = L0[z,d,h] (1+g)^(ye(y)-1)``.
    Shedding: ``0 <= LoadShed <= L + FlexDemand`` (VoLL $/MWh).
    Flexible demand (onshore zones): ``FlexDemand = sum_b FlexBlock_b``,
    ``|FlexBlock_b| <= alpha L / 4``, ``|FlexDemand| <= alpha L``,
    ``|FlexBlock_b|`` priced at WTP_b, and ``sum_h FlexDemand = 0`` per (y, z, d).
    ``FlexBlock_b = FlexBlockUp_b - FlexBlockDown_b`` (both in ``[0, alpha L / 4]``,
    both priced at WTP_b), which has the same optimum as the reference's
    ``a_b >= +-Delta d_b`` rows but 8 rows fewer per zone and hour.

    """
    m.ZONES = pyo.Set(initialize=list(inputs.zones), ordered=True, doc="zones z (bus names)")
    m.ONSHORE_ZONES = pyo.Set(
        initialize=list(inputs.onshore_zones),
        ordered=True,
        doc="onshore zones (load and builds allowed)",
    )
    m.OFFSHORE_ZONES = pyo.Set(initialize=sorted(inputs.offshore_zones), doc="offshore nodes")
    m.ZONE_TIMEPOINTS = pyo.Set(
        initialize=[(y, z, d, h) for (y, d, h) in m.TIMEPOINTS for z in inputs.zones],
        dimen=4,
        doc="(y, z, d, h)",
    )
    growth = {
        y: (1.0 + config.load_growth_per_year) ** (end_year_index(config, y) - 1) for y in m.EPOCHS
    }
    m.zone_demand_mw = pyo.Param(
        m.ZONE_TIMEPOINTS,
        initialize={
            (y, z, d, h): inputs.demand_mw[z, d, h] * growth[y]
            for (y, z, d, h) in m.ZONE_TIMEPOINTS
        },
        doc="L[y,z,d,h]: grown zonal demand, MW",
    )
    m.LoadShed = pyo.Var(
        m.ZONE_TIMEPOINTS, within=pyo.NonNegativeReals, doc="ls: unserved load, MW"
    )
    m.Zone_Power_Injections.append("LoadShed")
    m.Zone_Power_Withdrawals.append("zone_demand_mw")
    _define_flexible_demand(m, config)
    m.LoadShedLimit = pyo.Constraint(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            m.LoadShed[y, z, d, h] <= m.zone_demand_mw[y, z, d, h] + m.ZoneFlexDemand[y, z, d, h]
        ),
        doc="(4) ls <= L + flexible demand, MW",
    )
    m.LoadSheddingCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y]
            * config.voll_usd_per_mwh
            * weighted_hours_sum(m, lambda y, d, h: sum(m.LoadShed[y, z, d, h] for z in m.ZONES), y)
        ),
        doc="discounted annual cost of unserved load, $/yr",
    )
    register_cost(m, "LoadSheddingCost", "operation")
    m.Reserve_Requirements.append("ReserveLoadRequirement")
    m.ReserveLoadRequirement = pyo.Expression(
        m.TIMEPOINTS,
        rule=lambda m, y, d, h: (
            config.reserve_load_share * sum(m.zone_demand_mw[y, z, d, h] for z in m.ZONES)
        ),
        doc="reserve for load: share x total demand (excl. flexible demand), MW",
    )
    m.ZoneDemandRPS = pyo.Expression(
        m.EPOCHS,
        m.ZONES,
        rule=lambda m, y, z: sum(
            m.zone_demand_mw[y, z, d, h] + m.ZoneFlexDemand[y, z, d, h]
            for d in m.DAYS
            for h in m.HOURS
        ),
        doc="unweighted sum of demand + flexible demand over modelled hours, MWh",
    )
    m.Zone_RPS_Demands.append("ZoneDemandRPS")


def _define_flexible_demand(m: pyo.ConcreteModel, config: PlannerConfig) -> None:
    """Flexible demand blocks at onshore zones (reference (6), C15)."""
    alpha = config.alpha_flex if config.demand_flexibility else 0.0
    m.FLEX_BLOCKS = pyo.Set(initialize=list(FLEX_BLOCK_DIVISORS), doc="flexible demand blocks b")
    m.FLEX_TIMEPOINTS = pyo.Set(
        initialize=[(y, z, d, h) for (y, z, d, h) in m.ZONE_TIMEPOINTS if z in m.ONSHORE_ZONES]
        if alpha > 0
        else [],
        dimen=4,
        doc="(y, z, d, h) with flexible demand",
    )
    n_blocks = len(FLEX_BLOCK_DIVISORS)

    def block_bounds(m: pyo.ConcreteModel, y: int, z: str, d: int, h: int, b: int) -> tuple:
        return (0.0, alpha * m.zone_demand_mw[y, z, d, h] / n_blocks)

    # Delta d_b = FlexBlockUp_b - FlexBlockDown_b with both parts priced at WTP_b:
    # at an optimum at most one part is non-zero (WTP_b > 0), so the cost is
    # WTP_b |Delta d_b| as in the reference's a_b >= +-Delta d_b rows, without those rows.
    m.FlexBlockUp = pyo.Var(
        m.FLEX_TIMEPOINTS,
        m.FLEX_BLOCKS,
        bounds=block_bounds,
        doc="positive part of Delta d_b (more load), 0..alpha L / 4, MW",
    )
    m.FlexBlockDown = pyo.Var(
        m.FLEX_TIMEPOINTS,
        m.FLEX_BLOCKS,
        bounds=block_bounds,
        doc="negative part of Delta d_b (less load), 0..alpha L / 4, MW",
    )
    m.FlexBlock = pyo.Expression(
        m.FLEX_TIMEPOINTS,
        m.FLEX_BLOCKS,
        rule=lambda m, *k: m.FlexBlockUp[k] - m.FlexBlockDown[k],
        doc="Delta d_b: flexible demand block (+ = more load), MW",
    )
    m.FlexBlockAbs = pyo.Expression(
        m.FLEX_TIMEPOINTS,
        m.FLEX_BLOCKS,
        rule=lambda m, *k: m.FlexBlockUp[k] + m.FlexBlockDown[k],
        doc="a_b = |Delta d_b| at an optimum, MW",
    )
    m.FlexDemand = pyo.Var(
        m.FLEX_TIMEPOINTS,
        bounds=lambda m, y, z, d, h: (
            -alpha * m.zone_demand_mw[y, z, d, h],
            alpha * m.zone_demand_mw[y, z, d, h],
        ),
        doc="Delta d: flexible demand change (+ = more load), MW",
    )
    m.FlexDemandSum = pyo.Constraint(
        m.FLEX_TIMEPOINTS,
        rule=lambda m, *t: m.FlexDemand[t] == sum(m.FlexBlock[(*t, b)] for b in m.FLEX_BLOCKS),
        doc="Delta d = sum_b Delta d_b, MW",
    )
    days = {(y, z, d) for (y, z, d, _h) in m.FLEX_TIMEPOINTS}
    m.FLEX_DAYS = pyo.Set(initialize=sorted(days), dimen=3, doc="(y, z, d) with flexibility")
    m.FlexDailyNeutral = pyo.Constraint(
        m.FLEX_DAYS,
        rule=lambda m, y, z, d: sum(m.FlexDemand[y, z, d, h] for h in m.HOURS) == 0,
        doc="flexible demand is energy neutral per day, MWh",
    )
    m.ZoneFlexDemand = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, *t: m.FlexDemand[t] if t in m.FLEX_TIMEPOINTS else 0.0,
        doc="flexible demand change at every zone (0 where none), MW",
    )
    m.Zone_Power_Withdrawals.append("ZoneFlexDemand")
    price = {b: flex_block_price(config, b) for b in FLEX_BLOCK_DIVISORS}
    m.FlexDemandCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y]
            * weighted_hours_sum(
                m,
                lambda y, d, h: sum(
                    price[b] * m.FlexBlockAbs[y, z, d, h, b]
                    for z in m.ONSHORE_ZONES
                    if (y, z, d, h) in m.FLEX_TIMEPOINTS
                    for b in m.FLEX_BLOCKS
                ),
                y,
            )
        ),
        doc="discounted annual cost of flexible demand (WTP_b |Delta d_b|), $/yr",
    )
    register_cost(m, "FlexDemandCost", "operation")


def define_dynamic_components(
    m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig
) -> None:
    """Nodal power balance (3): sum of injections = sum of withdrawals, MW."""
    m.ZonePowerBalance = pyo.Constraint(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, *t: (
            sum(getattr(m, c)[t] for c in m.Zone_Power_Injections)
            == sum(getattr(m, c)[t] for c in m.Zone_Power_Withdrawals)
        ),
        doc="(3) nodal balance: injections = withdrawals, MW (dual: $/MW per period)",
    )
