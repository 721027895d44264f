"""Persistent HiGHS through pyomo, set up the way every gridlayers model uses it.

Models are built once and re-solved every interval with changed mutable Params. After
the first solve the model's structure is frozen: pyomo no longer re-inspects any
constraint, variable or objective, and the Param-dependent numbers are pushed to HiGHS by
a compiled :class:`~gridlayers.highs_params.ParamUpdater` instead of pyomo's
``update_parameters`` (same HiGHS model, a fraction of the time).
"""

from __future__ import annotations

from typing import Any

from gridlayers.highs_params import ParamUpdater

#: pyomo persistent-solver update checks that are switched off once the structure is fixed.
STRUCTURE_CHECKS = (
    "check_for_new_or_removed_constraints",
    "check_for_new_or_removed_vars",
    "check_for_new_or_removed_params",
    "check_for_new_objective",
    "update_constraints",
    "update_vars",
    "update_named_expressions",
    "update_objective",
)


def persistent_highs() -> Any:
    """Return a persistent pyomo HiGHS solver with console output off.

    Failures still surface through the termination condition of each solve.
    """
    from pyomo.contrib.solver.solvers.highs import Highs

    solver = Highs()
    solver.config.solver_options["output_flag"] = False
    return solver


def freeze_structure(solver: Any) -> ParamUpdater:
    """After the first solve: switch off pyomo's updates, return the Param pusher.

    Call :meth:`ParamUpdater.push` before every later solve in which a mutable Param
    changed (pyomo's own ``update_parameters`` is switched off too).
    """
    updates = solver.config.auto_updates
    for flag in (*STRUCTURE_CHECKS, "update_parameters"):
        setattr(updates, flag, False)
    return ParamUpdater(solver)
