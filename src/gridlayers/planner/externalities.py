"""Emission and air-quality externalities (EM_y, AQ_y of the reference objective).

Modules append ``[y]``-indexed components to ``Epoch_CO2_Emissions`` (t/yr) and
``Epoch_AQ_Damages`` (2016$/yr), both undiscounted annual values of epoch-y
dispatch. This module prices them::

    EM_y = DF(y) * P_CO2 * sum(Epoch_CO2_Emissions[y])
    AQ_y = DF(y) * 1.08 * k_AQ * sum(Epoch_AQ_Damages[y])

and registers both as ``"externality"`` costs, which the objective weights by the
multi-objective switch (SO: 0, MO: 1). They are always built so that SO can
report them after the solve.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs


def define_dynamic_lists(m: pyo.ConcreteModel) -> None:
    """Create ``Epoch_CO2_Emissions`` (t/yr) and ``Epoch_AQ_Damages`` (2016$/yr)."""
    m.Epoch_CO2_Emissions = []
    m.Epoch_AQ_Damages = []


def define_dynamic_components(
    m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig
) -> None:
    """Define ``EmissionCost[y]`` and ``AirQualityCost[y]``, $/yr (discounted)."""
    co2_price = config.co2_price_usd_per_t if config.emissions else 0.0
    aq_scale = config.aq_usd_2016_to_2020 * config.aq_damage_scale if config.air_quality else 0.0
    m.EmissionCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y] * co2_price * sum(getattr(m, c)[y] for c in m.Epoch_CO2_Emissions)
        ),
        doc="EM_y: discounted annual CO2 cost, $/yr",
    )
    m.AirQualityCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y] * aq_scale * sum(getattr(m, c)[y] for c in m.Epoch_AQ_Damages)
        ),
        doc="AQ_y: discounted annual air-quality damage, 2020$/yr",
    )
    register_cost(m, "EmissionCost", "externality")
    register_cost(m, "AirQualityCost", "externality")
