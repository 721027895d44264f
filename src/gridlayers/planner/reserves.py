"""System-wide spinning reserve (reference (7), C9).

Modules append ``[y, d, h]``-indexed MW components to ``Reserve_Provisions``
(e.g. thermal ``rg``, new-gas reserve, battery reserve) and to
``Reserve_Requirements`` (3% of load from load_zones, 5% of renewable output
from renewables).
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import PlannerInputs


def define_dynamic_lists(m: pyo.ConcreteModel) -> None:
    """Create ``Reserve_Provisions`` and ``Reserve_Requirements`` (MW, [y,d,h])."""
    m.Reserve_Provisions = []
    m.Reserve_Requirements = []


def define_dynamic_components(
    m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig
) -> None:
    """Reserve balance: sum of provisions >= sum of requirements, MW."""
    m.SystemReserve = pyo.Constraint(
        m.TIMEPOINTS,
        rule=lambda m, *t: (
            sum(getattr(m, c)[t] for c in m.Reserve_Provisions)
            >= sum(getattr(m, c)[t] for c in m.Reserve_Requirements)
            if m.Reserve_Requirements
            else pyo.Constraint.Skip
        ),
        doc="(7) system spinning reserve >= requirement, MW",
    )
