"""A pyomo model built once and re-solved by persistent HiGHS (the DSO's LPs).

:class:`PersistentLP` lets pyomo build the HiGHS model on the first solve; after that
pyomo's persistent interface is frozen (:func:`gridlayers.highs.freeze_structure`) and
every later solve goes straight to HiGHS: compiled Param pushes, cached objectives,
``Highs.run`` and the solution as numpy arrays by HiGHS column and row
(:attr:`PersistentLP.col_value`, :attr:`PersistentLP.row_dual`), also loaded into the
model's Vars. Read results through :meth:`PersistentLP.columns` / :meth:`PersistentLP.rows`
index arrays built once rather than by evaluating pyomo expressions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyomo.environ as pyo

from gridlayers.dso.faults import (
    DSOBadCoefficientError,
    DSOFaultError,
    DSOTimeLimitError,
    named_failure,
)
from gridlayers.highs import (
    column,
    freeze_structure,
    persistent_highs,
    row,
    run,
    termination_condition,
)
from gridlayers.numerics import BadCoefficientError

if TYPE_CHECKING:
    from gridlayers.highs_params import ParamUpdater


class PersistentLP:
    """A pyomo model solved repeatedly by persistent HiGHS, structure fixed after solve 1.

    Parameters
    ----------
    model : pyomo ConcreteModel
        Built once; afterwards only mutable Param values, variable bounds (through
        :meth:`set_bounds`) and the choice among the model's prebuilt objectives change.

    Attributes
    ----------
    col_value : numpy.ndarray
        Primal value per HiGHS column of the last solve (the Vars' units).
    row_dual : numpy.ndarray
        Dual per HiGHS row of the last solve (sign as HiGHS reports for a minimisation;
        objective units per row unit).
    cold_restarts : int
        Solves repeated without a starting basis after a warm start failed (see notes).

    Notes
    -----
    Uses ``pyomo.contrib.solver.solvers.highs.Highs`` as
    :class:`gridlayers.market.TransmissionMarket` does: after the first solve all of
    ``config.auto_updates`` is switched off and a compiled
    :class:`~gridlayers.highs_params.ParamUpdater` pushes the Param-dependent numbers
    (only when the caller says Params changed since the last solve), switches among
    cached objectives, runs HiGHS directly (:func:`gridlayers.highs.run`:
    pyomo's ``solve`` would run the same model with the same options, but spends longer
    around the solve than the solve itself takes) and loads the primal solution; the HiGHS
    model is exactly the one pyomo's ``update_parameters`` / ``set_objective`` would give.
    Variable bounds (``set_bounds``) go through the persistent interface's
    ``update_variables``.

    HiGHS warm-starts each solve from the previous basis. That basis can be numerically
    poor for the next problem: on the congested scenario (rural feeder, 12:00) the
    disaggregation LP after the virtual resource's last sample failed with
    ``Dual simplex ratio test failed due to excessive dual values`` (model status
    ``kNotset``, reported as ``unknown``) although it is feasible. A solve that ends
    neither optimal nor proven infeasible is therefore repeated once without a basis
    (``clearSolver``: presolve and a cold start); ``cold_restarts`` counts them.

    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.solver = persistent_highs()
        self._objective: Any = None
        self._objectives: list[Any] | None = None  # every objective of the model
        self._updater: ParamUpdater | None = None
        self.col_value = np.zeros(0)
        self.row_dual = np.zeros(0)
        self.cold_restarts = 0

    @property
    def solved(self) -> bool:
        """Whether the model has been solved once (the column and row maps exist)."""
        return self._updater is not None

    def columns(self, variables: Sequence[Any]) -> np.ndarray:
        """Return the HiGHS column of each variable (after the first solve)."""
        self._require()
        return np.array([column(self.solver, v) for v in variables], dtype=np.intp)

    def rows(self, constraints: Sequence[Any]) -> np.ndarray:
        """Return the HiGHS row of each constraint (after the first solve)."""
        self._require()
        return np.array([row(self.solver, c) for c in constraints], dtype=np.intp)

    def _require(self) -> None:
        if self._updater is None:
            msg = "solve the model once first (HiGHS columns and rows exist from then on)"
            raise RuntimeError(msg)

    def set_bounds(self, var: Any, lb: float | None, ub: float | None) -> None:
        """Set a variable's bounds (its units; None: unbounded) and push them (in place)."""
        self.set_bounds_many([(var, lb, ub)])

    def set_bounds_many(self, bounds: Sequence[tuple[Any, float | None, float | None]]) -> None:
        """Set the bounds of several variables, ``(var, lb, ub)`` each, in one solver update."""
        for var, lb, ub in bounds:
            var.setlb(lb)
            var.setub(ub)
        if self._updater is not None and bounds:
            variables = [var for var, _, _ in bounds]
            self.solver.update_variables(variables)
            for var in variables:
                self._updater.var_updated(var)

    def _select(self, objective: Any) -> None:
        if objective is None or objective is self._objective:
            return
        if self._objectives is None:
            self._objectives = list(
                self.model.component_data_objects(pyo.Objective, descend_into=True)
            )
        for obj in self._objectives:
            obj.deactivate()
        objective.activate()
        if self._updater is not None:
            self._updater.set_objective(objective)
        self._objective = objective

    def solve(self, objective: Any = None, *, params_changed: bool = True) -> float:
        """Solve and load the primal solution; return the wall time incl. updates (s).

        Parameters
        ----------
        objective : pyomo Objective, optional
            One of the model's objectives to minimise (activated, the others deactivated);
            ``None`` keeps the current one.
        params_changed : bool
            Whether any mutable Param changed since the last solve.

        Raises
        ------
        gridlayers.dso.faults.DSOFaultError
            The LP ended other than optimal (after the cold restart, see notes): a
            :class:`~gridlayers.dso.offer_blocks.InfeasibleDSOError` whose ``kind`` is
            ``dso_infeasible``, ``solver_time_limit``
            (:class:`~gridlayers.dso.faults.DSOTimeLimitError`) or ``bad_coefficient``
            (:class:`~gridlayers.dso.faults.DSOBadCoefficientError`: a non-finite or
            extreme coefficient, bound or cost was rejected before reaching HiGHS).

        """
        from pyomo.contrib.solver.common.results import TerminationCondition

        start = time.perf_counter()
        self._select(objective)
        if self._updater is None:  # pyomo builds the HiGHS model
            self.solver.solve(
                self.model, load_solutions=False, raise_exception_on_nonoptimal_result=False
            )
            self._updater = freeze_structure(self.solver)
            status = self._updater.highs.getModelStatus()
        else:
            if params_changed:
                try:
                    self._updater.push()
                except BadCoefficientError as exc:  # rejected before HiGHS saw it
                    raise DSOBadCoefficientError(str(exc)) from exc
            status = run(self.solver)
        condition = termination_condition(status)
        if condition not in (
            TerminationCondition.convergenceCriteriaSatisfied,
            TerminationCondition.provenInfeasible,
        ):  # numerical trouble of a warm start (see notes): once more from scratch
            self._updater.highs.clearSolver()  # drop the basis
            condition = termination_condition(run(self.solver))
            self.cold_restarts += 1
        seconds = time.perf_counter() - start
        if condition == TerminationCondition.maxTimeLimit:
            msg = f"DSO optimisation hit the time limit ({self.solver.config.time_limit} s)"
            raise DSOTimeLimitError(msg)
        if condition != TerminationCondition.convergenceCriteriaSatisfied:
            msg = f"DSO optimisation failed: {condition.name}"
            raise DSOFaultError(msg)
        self._updater.load_vars()  # as res.solution_loader.load_vars(), faster
        sol = self.solver._sol  # noqa: SLF001 - the solution pyomo or run() stored
        self.col_value = np.asarray(sol.col_value, dtype=float)
        self.row_dual = np.asarray(sol.row_dual, dtype=float)
        return seconds

    def named_failure(self, exc: BaseException) -> str:
        """``str(exc)``, plus the constraint families to relax if the last LP was infeasible.

        Call right after the failed solve (the HiGHS model still holds that LP); runs on a
        copy (:func:`gridlayers.numerics.diagnose_infeasibility`), only on failure.
        """
        return named_failure(exc, self.solver)

    def duals(self, constraints: Sequence[Any]) -> dict[Any, float]:
        """Return the row duals of the last solve (sign as HiGHS reports for a minimisation)."""
        rows = self.rows(constraints)
        return dict(zip(constraints, self.row_dual[rows].tolist(), strict=True))
