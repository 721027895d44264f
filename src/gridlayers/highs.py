"""Persistent HiGHS through pyomo, set up the way every gridlayers model uses it.

Models are built once and re-solved every interval with changed mutable Params. After
the first solve the model's structure is frozen: pyomo no longer re-inspects any
constraint, variable or objective, and the Param-dependent numbers are pushed to HiGHS by
a compiled :class:`~gridlayers.highs_params.ParamUpdater` instead of pyomo's
``update_parameters`` (same HiGHS model, a fraction of the time). Later solves may also
bypass pyomo's ``solve`` wrapper (:func:`run`, with :func:`termination_condition` reading
the outcome as pyomo would; :func:`column` and :func:`row` locate variables and
constraints in the HiGHS model).

Notes
-----
:func:`run`, :func:`column` and :func:`row` rely on private attributes of pyomo 6.10's
``Highs`` (``_solver_model``, ``_sol``, ``_last_results_object``,
``_pyomo_var_to_solver_var_map``, ``_pyomo_con_to_solver_con_map``), as
:class:`~gridlayers.highs_params.ParamUpdater` does.

"""

from __future__ import annotations

from typing import Any

from gridlayers.highs_params import ParamUpdater

#: HiGHS model status name -> pyomo ``TerminationCondition`` name, as pyomo's HiGHS
#: interface maps them (``Highs._postsolve``); any other status is "unknown".
_TERMINATION = {
    "kOptimal": "convergenceCriteriaSatisfied",
    "kInfeasible": "provenInfeasible",
    "kUnboundedOrInfeasible": "infeasibleOrUnbounded",
    "kUnbounded": "unbounded",
    "kLoadError": "error",
    "kModelError": "error",
    "kPresolveError": "error",
    "kSolveError": "error",
    "kPostsolveError": "error",
    "kObjectiveBound": "objectiveLimit",
    "kObjectiveTarget": "objectiveLimit",
    "kTimeLimit": "maxTimeLimit",
    "kIterationLimit": "iterationLimit",
    "kSolutionLimit": "iterationLimit",
}

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


#: HiGHS ``simplex_dual_edge_weight_strategy``: Devex pricing (see :func:`persistent_highs`).
DUAL_EDGE_WEIGHTS_DEVEX = 1


def persistent_highs() -> Any:
    """Return a persistent pyomo HiGHS solver with console output off, Devex pricing.

    Failures still surface through the termination condition of each solve.

    Notes
    -----
    The models are re-solved from the previous basis after changed coefficients,
    bounds or costs, and most re-solves need 0-2 simplex iterations. With HiGHS's
    default ("choose": dual steepest edge) every re-solve after a coefficient change
    first recomputes the exact edge weights, one BTRAN per row: 8-12 ms of a DSO LP of
    ~1,900 rows that then takes 0 iterations, against 0.6-0.8 ms for the re-solves
    without coefficient changes. Devex weights start from 1 and cost nothing to reset
    (``benchmarks/bench_dso.py``: HiGHS 14.0 -> 4.3 ms per LDA-interval, 160 LPs of 3
    LDAs, same optima).

    """
    from pyomo.contrib.solver.solvers.highs import Highs

    solver = Highs()
    solver.config.solver_options["output_flag"] = False
    solver.config.solver_options["simplex_dual_edge_weight_strategy"] = DUAL_EDGE_WEIGHTS_DEVEX
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


def termination_condition(status: Any) -> Any:
    """Return pyomo's ``TerminationCondition`` for a HiGHS model status (as pyomo maps it).

    Parameters
    ----------
    status : highspy.HighsModelStatus
        E.g. the return value of :meth:`~gridlayers.highs_params.ParamUpdater.run`.

    Returns
    -------
    pyomo.contrib.solver.common.results.TerminationCondition

    """
    from pyomo.contrib.solver.common.results import TerminationCondition

    return TerminationCondition[_TERMINATION.get(status.name, "unknown")]


def run(solver: Any) -> Any:
    """Solve a frozen model's HiGHS model as it stands, without pyomo's ``solve`` wrapper.

    Parameters
    ----------
    solver : pyomo.contrib.solver.solvers.highs.Highs
        Solved once through pyomo, structure frozen (:func:`freeze_structure`), Param
        changes pushed (:meth:`~gridlayers.highs_params.ParamUpdater.push`) and the
        objective set (:meth:`~gridlayers.highs_params.ParamUpdater.set_objective`).

    Returns
    -------
    highspy.HighsModelStatus
        HiGHS's model status (:func:`termination_condition` translates it).

    Notes
    -----
    HiGHS keeps the options pyomo set on it at the last ``solve`` (pyomo sets them on
    the same object every time), so this is the solve pyomo's ``solve`` would run, with
    one difference: HiGHS (1.16) compares ``time_limit`` with the instance's run time
    summed over *all* its runs, so a fixed limit would fail every solve of a long
    co-simulation once the solver had worked that long in total (e.g. a 60 s market
    limit after ~7,000 intervals of a year). The limit (``solver.config.time_limit``, s)
    is therefore set anew before each run, counted from then. Use :func:`pyomo_solve`
    for a solve through pyomo after the first one. The
    solution is stored where pyomo keeps it, so its ``_get_duals`` and
    :meth:`~gridlayers.highs_params.ParamUpdater.load_vars` read it.

    """
    highs = solver._solver_model  # noqa: SLF001
    solver._sol = None  # noqa: SLF001
    last = solver._last_results_object  # noqa: SLF001
    if last is not None:
        last.solution_loader.invalidate()
    limit = solver.config.time_limit
    if limit is not None:  # HiGHS checks it against its run time summed over all runs
        highs.setOptionValue("time_limit", highs.getRunTime() + float(limit))
        solver._gridlayers_time_limit = True  # noqa: SLF001 - see below
    elif getattr(solver, "_gridlayers_time_limit", False):  # a limit was removed: lift it
        highs.setOptionValue("time_limit", float("inf"))
        solver._gridlayers_time_limit = False  # noqa: SLF001
    highs.run()
    solver._sol = highs.getSolution()  # noqa: SLF001 - as pyomo's _postsolve
    return highs.getModelStatus()


def pyomo_solve(solver: Any, model: Any) -> Any:
    """``solver.solve(model)`` (no solution loaded, no exception on failure), time limit from now.

    For re-solves through pyomo after the first solve (e.g. with changed options): pyomo
    sets ``time_limit`` as given, which HiGHS would count from the instance's first run
    (see :func:`run`). Returns pyomo's results.
    """
    limit, highs = solver.config.time_limit, solver._solver_model  # noqa: SLF001
    if limit is not None and highs is not None:
        solver.config.time_limit = highs.getRunTime() + float(limit)
    try:
        return solver.solve(model, load_solutions=False, raise_exception_on_nonoptimal_result=False)
    finally:
        solver.config.time_limit = limit


def column(solver: Any, var: Any) -> int:
    """Return the HiGHS column of a model variable (after the first solve)."""
    return solver._pyomo_var_to_solver_var_map[id(var)]  # noqa: SLF001


def row(solver: Any, constraint: Any) -> int:
    """Return the HiGHS row of a model constraint (after the first solve)."""
    return solver._pyomo_con_to_solver_con_map[constraint]  # noqa: SLF001
