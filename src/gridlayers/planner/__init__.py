"""Capacity expansion planner (pyomo + HiGHS), Switch-style composition.

Public API: :class:`PlannerConfig` (the ``planner:`` scenario section),
:func:`plan` (build, solve, write ``plan_summary.json``), the LDA extension types
:class:`LDAConfig` and :class:`LDAOperationalParams`, and the lower-level
:func:`build_model`, :func:`solve_model`, :func:`read_isone_inputs`.
"""

from gridlayers.planner.api import INPUT_ADAPTERS, load_planner_config, plan, read_inputs
from gridlayers.planner.config import (
    DERBatteryConfig,
    DERFlexConfig,
    DERPVConfig,
    InterfaceConfig,
    LDAConfig,
    LDAExtensionConfig,
    LDAOperationalParams,
    PlannerConfig,
    with_lda_operational,
)
from gridlayers.planner.core import build_model, default_modules, register_cost
from gridlayers.planner.inputs import DataSet, PlannerInputs
from gridlayers.planner.inputs_isone import InputDataError, bundled_isone8_dir, read_isone_inputs
from gridlayers.planner.report import summarize_model
from gridlayers.planner.solve import PlannerSolveError, SolveProgress, SolveResult, solve_model

__all__ = [
    "INPUT_ADAPTERS",
    "DERBatteryConfig",
    "DERFlexConfig",
    "DERPVConfig",
    "DataSet",
    "InputDataError",
    "InterfaceConfig",
    "LDAConfig",
    "LDAExtensionConfig",
    "LDAOperationalParams",
    "PlannerConfig",
    "PlannerInputs",
    "PlannerSolveError",
    "SolveProgress",
    "SolveResult",
    "build_model",
    "bundled_isone8_dir",
    "default_modules",
    "load_planner_config",
    "plan",
    "read_inputs",
    "read_isone_inputs",
    "register_cost",
    "solve_model",
    "summarize_model",
    "with_lda_operational",
]
