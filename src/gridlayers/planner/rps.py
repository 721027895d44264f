"""Renewable portfolio standards per state, enforced zone by zone (reference (13), C11).

For each state s, each zone z of s and each epoch y >= first_epoch(s)::

    sum(Zone_RPS_Credits[y, z]) >= share_s * sum(Zone_RPS_Demands[y, z])

Both sides are unweighted MWh sums over the modelled days and hours.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import PlannerInputs


def define_dynamic_lists(m: pyo.ConcreteModel) -> None:
    """Create ``Zone_RPS_Credits`` and ``Zone_RPS_Demands`` (MWh, [y, z])."""
    m.Zone_RPS_Credits = []
    m.Zone_RPS_Demands = []


def define_dynamic_components(
    m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig
) -> None:
    """Define the RPS constraints (none when ``config.rps`` is off)."""
    rows = []
    share = {}
    if config.rps:
        for target in inputs.rps:
            for z in target.zones:
                for y in m.EPOCHS:
                    if y >= target.first_epoch:
                        rows.append((y, z))
                        share[y, z] = target.share
    m.RPS_ZONE_EPOCHS = pyo.Set(initialize=rows, dimen=2, doc="(y, z) with an RPS target")
    m.rps_share = pyo.Param(
        m.RPS_ZONE_EPOCHS,
        initialize=share,
        doc="rho_s: required renewable share of zone demand, p.u.",
    )
    m.ZoneRPS = pyo.Constraint(
        m.RPS_ZONE_EPOCHS,
        rule=lambda m, y, z: (
            sum(getattr(m, c)[y, z] for c in m.Zone_RPS_Credits)
            >= m.rps_share[y, z] * sum(getattr(m, c)[y, z] for c in m.Zone_RPS_Demands)
        ),
        doc="(13) zonal RPS: renewable energy >= share x demand, MWh",
    )
    m.Cross_Day_Constraints.append("ZoneRPS")
