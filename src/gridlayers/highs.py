"""Persistent HiGHS through pyomo, set up the way every gridlayers model uses it.

Models are built once and re-solved every interval with changed mutable Params. After
the first solve the model's structure is frozen, so pyomo only pushes Param changes to
HiGHS instead of re-inspecting every constraint, variable and objective.
"""

from __future__ import annotations

from typing import Any

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


def freeze_structure(solver: Any) -> None:
    """After the first solve: from now on only push Param changes to HiGHS."""
    updates = solver.config.auto_updates
    for flag in STRUCTURE_CHECKS:
        setattr(updates, flag, False)
