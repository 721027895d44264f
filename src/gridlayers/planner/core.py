"""Switch-style composition of the planner model.

A *planner module* is any object (usually a Python module) with some of these
optional functions, called in this order for all modules, pass by pass:

1. ``define_dynamic_lists(m)`` -- create registration lists on the model;
2. ``define_components(m, inputs, config)`` -- sets, params, vars, constraints,
   and ``append`` to the dynamic lists of other modules;
3. ``define_dynamic_components(m, inputs, config)`` -- build what sums the
   registered items (nodal balance, reserve, RPS, objective);
4. ``summarize(m, inputs, config) -> dict`` -- after the solve, domain results.

Dynamic lists (all hold *component names* on ``m``):

- ``Zone_Power_Injections`` / ``Zone_Power_Withdrawals``: indexed
  ``[y, z, d, h]``, MW (load_zones).
- ``Cost_Components_Per_Epoch``: indexed ``[y]``, discounted annual $ of epoch y;
  register with :func:`register_cost` to set the reporting category (financials).
- ``Reserve_Provisions`` / ``Reserve_Requirements``: ``[y, d, h]``, MW (reserves).
- ``Zone_RPS_Credits`` / ``Zone_RPS_Demands``: ``[y, z]``, MWh summed unweighted
  over the modelled hours (rps).
- ``Epoch_CO2_Emissions``: ``[y]``, t/yr; ``Epoch_AQ_Damages``: ``[y]``,
  2016$/yr; both undiscounted and from epoch-y dispatch only (externalities).
- ``Investment_Variables``: variables decided once for the horizon (builds,
  upgrades, cable choices); the Benders master of ``planner/benders.py``.
- ``Cross_Day_Constraints``: constraints that sum operation over several
  representative days (the RPS); Benders splits them by day.

Technologies and extensions plug in by appending to these lists; the core never
names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import PlannerInputs

COST_CATEGORIES = ("investment", "operation", "externality")


def register_cost(m: pyo.ConcreteModel, name: str, category: str) -> None:
    """Register the epoch-indexed cost expression ``m.<name>`` in the objective.

    Parameters
    ----------
    m : pyomo.environ.ConcreteModel
        Model under construction.
    name : str
        Name of a component indexed by epoch, $/yr (discounted annual value).
    category : str
        One of :data:`COST_CATEGORIES`; ``"externality"`` is weighted by the
        multi-objective switch in the objective.

    """
    if category not in COST_CATEGORIES:
        msg = f"unknown cost category {category!r}"
        raise ValueError(msg)
    m.Cost_Components_Per_Epoch.append(name)
    m.cost_component_category[name] = category


def default_modules(config: PlannerConfig) -> list[ModuleType]:
    """Return the module list for ``config`` (core + enabled technologies + extensions)."""
    from gridlayers.planner import (
        externalities,
        financials,
        lda,
        load_zones,
        new_gas,
        renewables,
        reserves,
        rps,
        storage,
        thermal,
        timescale,
        transmission,
    )

    modules: list[ModuleType] = [timescale, load_zones, reserves, rps, externalities]
    modules += [thermal, new_gas, renewables, transmission]
    if config.battery:
        modules.append(storage)
    if config.lda is not None:
        modules.append(lda)
    modules.append(financials)
    return modules


def build_model(
    inputs: PlannerInputs,
    config: PlannerConfig,
    modules: Sequence[ModuleType] | None = None,
) -> pyo.ConcreteModel:
    """Build the planner MILP by running the module protocol.

    Parameters
    ----------
    inputs : PlannerInputs
        Data of the system to plan.
    config : PlannerConfig
        Switches and constants.
    modules : sequence of module, optional
        Planner modules in order; default :func:`default_modules`.

    Returns
    -------
    pyomo.environ.ConcreteModel
        The model, with ``m.planner_modules`` holding the modules used.

    """
    inputs.validate()
    mods = list(default_modules(config) if modules is None else modules)
    m = pyo.ConcreteModel(name="gridlayers_planner")
    m.planner_modules = mods
    m.Investment_Variables = []
    m.Cross_Day_Constraints = []
    for stage in ("define_dynamic_lists",):
        for mod in mods:
            if hasattr(mod, stage):
                getattr(mod, stage)(m)
    for stage in ("define_components", "define_dynamic_components"):
        for mod in mods:
            if hasattr(mod, stage):
                getattr(mod, stage)(m, inputs, config)
    return m


def sum_registered(m: pyo.ConcreteModel, names: Sequence[str], index: tuple) -> object:
    """Return the sum of ``m.<name>[index]`` over the registered component names."""
    return sum(getattr(m, name)[index] for name in names)
