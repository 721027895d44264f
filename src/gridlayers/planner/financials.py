"""Objective: sum of registered epoch costs (Switch ``financials`` analogue).

``minimize obj_scale * sum_y sum_c weight_c * C_c[y]`` where ``C_c`` are the
components in ``Cost_Components_Per_Epoch`` ($/yr, discounted annual value of
epoch y) and ``weight_c`` is 1 for investment and operation costs and the
multi-objective switch M (0 or 1) for externalities.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import PlannerInputs


def define_dynamic_lists(m: pyo.ConcreteModel) -> None:
    """Create ``Cost_Components_Per_Epoch`` and its category map."""
    m.Cost_Components_Per_Epoch = []
    m.cost_component_category = {}


def cost_weight(m: pyo.ConcreteModel, name: str, config: PlannerConfig) -> float:
    """Return the objective weight of a registered cost component (p.u.)."""
    if m.cost_component_category[name] == "externality":
        return 1.0 if config.multi_objective else 0.0
    return 1.0


def define_dynamic_components(
    m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig
) -> None:
    """Define ``SystemCostPerEpoch[y]`` ($/yr) and the objective (scaled $)."""
    weights = {c: cost_weight(m, c, config) for c in m.Cost_Components_Per_Epoch}
    m.SystemCostPerEpoch = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: sum(w * getattr(m, c)[y] for c, w in weights.items() if w != 0.0),
        doc="objective cost of epoch y (annual, discounted), $/yr",
    )
    m.Minimize_System_Cost = pyo.Objective(
        expr=config.obj_scale * sum(m.SystemCostPerEpoch[y] for y in m.EPOCHS),
        sense=pyo.minimize,
        doc="ObjScale x sum of epoch costs, scaled $",
    )
