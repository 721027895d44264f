"""Solve a planner model with HiGHS.

The Pyomo model is compiled to matrices with Pyomo's linear standard-form
compiler (``mixed_form``) and passed to ``highspy`` in one call; the solution
is written back into the Pyomo variables. This is much faster for the ISO-NE
model than Pyomo's persistent (APPSI) HiGHS interface, which loads
constraints one by one in Python.

``method="benders"`` hands the same matrices to :func:`~gridlayers.planner.benders.solve_benders`
with the model's ``Investment_Variables`` as master columns and its
``Cross_Day_Constraints`` as linking rows.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolveProgress:
    """State of a running solve, passed to ``on_iteration``.

    Parameters
    ----------
    iteration : int
        Benders master solves so far (LP phase and tree); HiGHS branch-and-bound
        nodes for a monolithic solve.
    phase : str
        ``"lp"`` (Benders LP phase), ``"node"`` (Benders tree), ``"end"`` (the last
        report of a Benders solve: final plan and bound) or ``"mip"`` (HiGHS).
    objective : float or None
        Best plan so far (incumbent), None before the first. Model objective units
        (scaled $) from :func:`solve_model`; $ billion over the horizon from
        :func:`gridlayers.planner.plan`.
    bound : float or None
        Proven lower bound of the objective (same units), None while unknown.
    gap : float or None
        ``(objective - bound) / |objective|``, p.u.; None without an incumbent.
    seconds : float
        Time since the solve started (matrix compile included), s.
    line : str
        The Benders log line of this master solve ("" for a monolithic solve).

    """

    iteration: int
    phase: str
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    line: str = ""


#: ``on_iteration(progress)``: called after every Benders master solve, and about
#: once per :data:`MIP_PROGRESS_SECONDS` during HiGHS's branch and bound.
IterationCallback = Callable[[SolveProgress], None]
#: Least time between two progress reports of a monolithic MIP solve, s.
MIP_PROGRESS_SECONDS = 1.0


@dataclass(frozen=True)
class SolveResult:
    """Outcome of a solve.

    Parameters
    ----------
    termination : str
        HiGHS model status text (e.g. ``"Optimal"``, ``"Time limit reached"``).
    objective : float
        Best feasible objective (scaled $, as in the model).
    bound : float
        Best proven bound (scaled $).
    mip_gap : float
        Relative gap ``|objective - bound| / |objective|``, p.u. (0 for LPs).
    solve_seconds : float
        Wall time of matrix compilation plus the HiGHS run, s.
    compile_seconds : float
        Part of ``solve_seconds`` spent compiling the matrices, s.
    method : str
        ``"monolithic"`` or ``"benders"``.
    iterations : int
        Benders master solves (0 for a monolithic solve).
    message : str
        Solver failures that were handled (e.g. Benders tree nodes abandoned after
        master LP failures, cuts rejected); empty if none.
    rejected_cuts : int
        Benders cuts refused for non-finite or extreme values
        (:func:`~gridlayers.planner.benders_master.cut_defect`); 0 for a monolithic solve.

    """

    termination: str
    objective: float
    bound: float
    mip_gap: float
    solve_seconds: float
    compile_seconds: float
    method: str = "monolithic"
    iterations: int = 0
    message: str = ""
    rejected_cuts: int = 0


#: HiGHS options set by :func:`solve_model` before the caller's ``highs_options``.
#: ``simplex_scale_strategy = 4`` ("max value" scaling instead of the default
#: equilibration, 2): on the ISO-NE LP relaxation the dual simplex needs about half
#: the iterations and a third of the time or less. HiGHS 1.15's MIP solver does not
#: pass this option to its own LP relaxations (root and nodes use the default), so
#: it only speeds up pure LP solves, e.g. ``highs_options={"solve_relaxation": True}``
#: (docs/planner.md, "Solver settings").
DEFAULT_HIGHS_OPTIONS: dict[str, bool | int | float | str] = {"simplex_scale_strategy": 4}


class PlannerSolveError(RuntimeError):
    """The solver found no feasible plan."""


def _compile(m: pyo.ConcreteModel) -> tuple[highspy.HighsLp, list, float, float, list]:
    """Compile ``m`` into a HiGHS LP/MIP (always minimising).

    Returns the LP, the Pyomo columns, the objective offset, the sense sign and
    the Pyomo constraint of each row.
    """
    repn = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=None)
    if len(repn.objectives) != 1:
        msg = "planner model must have exactly one active objective"
        raise ValueError(msg)
    n_rows, n_cols = repn.A.shape
    rhs = np.asarray(repn.rhs, dtype=float)
    kinds = np.fromiter((r.bound_type for r in repn.rows), dtype=int, count=n_rows)
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    sense = repn.objectives[0].sense
    sign = 1.0 if sense == pyo.minimize else -1.0
    lp.col_cost_ = sign * np.asarray(repn.c.toarray()[0], dtype=float)
    bounds = [v.bounds for v in repn.columns]
    lp.col_lower_ = np.array([-math.inf if lb is None else lb for lb, _ in bounds], dtype=float)
    lp.col_upper_ = np.array([math.inf if ub is None else ub for _, ub in bounds], dtype=float)
    lp.row_lower_ = np.where(kinds == 1, -math.inf, rhs)
    lp.row_upper_ = np.where(kinds == -1, math.inf, rhs)
    a = repn.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    integer = [v.is_integer() or v.is_binary() for v in repn.columns]
    if any(integer):
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in integer
        ]
    rows = [r.constraint for r in repn.rows]
    return lp, repn.columns, sign * float(repn.c_offset[0]), sign, rows


def solve_model(
    m: pyo.ConcreteModel,
    *,
    mip_gap: float = 1e-4,
    time_limit_s: float | None = None,
    threads: int | None = None,
    tee: bool = False,
    highs_options: dict[str, bool | int | float | str] | None = None,
    method: str = "monolithic",
    on_iteration: IterationCallback | None = None,
) -> SolveResult:
    """Solve ``m`` with HiGHS and load the solution into its variables.

    Parameters
    ----------
    m : pyomo.environ.ConcreteModel
        Built planner model (linear, one objective).
    mip_gap : float
        Relative MIP gap (HiGHS ``mip_rel_gap``), p.u.
    time_limit_s : float, optional
        Wall-clock limit of the HiGHS run, s.
    threads : int, optional
        HiGHS threads.
    tee : bool
        Print the HiGHS log.
    highs_options : dict, optional
        Further HiGHS options (name -> value), applied after
        :data:`DEFAULT_HIGHS_OPTIONS` and the arguments above, so they override both
        (monolithic solve only).
    method : {"monolithic", "benders"}
        One HiGHS run on the whole model, or Benders decomposition over the
        operating days (needs ``m.Investment_Variables``; see ``planner/benders.py``).
    on_iteration : callable, optional
        Receives a :class:`SolveProgress` (incumbent, bound, gap) after every Benders
        master solve, or about once per :data:`MIP_PROGRESS_SECONDS` while HiGHS's
        branch and bound runs (not during its root LP).

    Returns
    -------
    SolveResult
        Termination, objective, bound, gap and timings.

    Raises
    ------
    PlannerSolveError
        HiGHS returned no feasible solution.

    """
    start = time.perf_counter()
    lp, columns, offset, sign, rows = _compile(m)
    compile_s = time.perf_counter() - start
    log.info("compiled %d columns, %d rows in %.1f s", len(columns), len(rows), compile_s)
    if method == "benders":
        return _solve_benders(
            m,
            lp,
            columns,
            rows,
            offset,
            sign,
            start,
            compile_s,
            mip_gap,
            time_limit_s,
            threads,
            _benders_log(tee),
            on_iteration,
        )
    if method != "monolithic":
        msg = f"unknown solve method {method!r} (use 'monolithic' or 'benders')"
        raise ValueError(msg)
    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(tee))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    if threads is not None:
        # HiGHS runs one task scheduler per process; an instance asking for another
        # thread count than the running scheduler's fails ("Not Set"). Restart it.
        highspy.Highs.resetGlobalScheduler(True)
        h.setOptionValue("threads", int(threads))
    for name, value in {**DEFAULT_HIGHS_OPTIONS, **(highs_options or {})}.items():
        if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
            msg = f"invalid HiGHS option {name}={value!r}"
            raise ValueError(msg)
    h.passModel(lp)
    if on_iteration is not None:
        _report_mip_progress(h, sign, offset, start, on_iteration)
    log.info("HiGHS: solving the whole model")
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    elapsed = time.perf_counter() - start
    if info.primal_solution_status != 2:  # 2 = kSolutionStatusFeasible
        msg = f"HiGHS found no feasible plan ({h.modelStatusToString(status)})"
        raise PlannerSolveError(msg)
    values = h.getSolution().col_value
    for var, val in zip(columns, values, strict=True):
        var.set_value(float(val), skip_validation=True)
    obj = sign * (info.objective_function_value + offset)
    relaxed = bool(h.getOptionValue("solve_relaxation")[1])
    is_mip = lp.integrality_ is not None and len(lp.integrality_) > 0 and not relaxed
    bound = sign * (info.mip_dual_bound + offset) if is_mip else obj
    gap = abs(obj - bound) / max(abs(obj), 1e-12) if is_mip else 0.0
    log.info("HiGHS: %s in %.1f s, gap %.2e", h.modelStatusToString(status), elapsed, gap)
    return SolveResult(h.modelStatusToString(status), obj, bound, gap, elapsed, compile_s)


def _report_mip_progress(
    h: highspy.Highs, sign: float, offset: float, start: float, on_iteration: IterationCallback
) -> None:
    """Subscribe ``on_iteration`` to HiGHS's MIP callbacks (at most once a second).

    HiGHS reports ``mip_primal_bound`` (incumbent; ``inf`` before the first) and
    ``mip_dual_bound`` in its own (minimising, offset-free) units.
    """
    last = [-math.inf]

    def report(event: object, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - last[0] < MIP_PROGRESS_SECONDS:
            return
        last[0] = now
        data = event.data_out
        best, bound = float(data.mip_primal_bound), float(data.mip_dual_bound)
        if force:  # a new incumbent: its value, whether or not the bound has caught up
            best = min(best, float(data.objective_function_value))
        objective = sign * (best + offset) if abs(best) < highspy.kHighsInf else None
        proven = sign * (bound + offset) if abs(bound) < highspy.kHighsInf else None
        gap = None
        if objective is not None and proven is not None:
            gap = abs(objective - proven) / max(abs(objective), 1e-12)
        on_iteration(
            SolveProgress(int(data.mip_node_count), "mip", objective, proven, gap, now - start)
        )

    h.cbMipInterrupt.subscribe(report)
    h.cbMipImprovingSolution.subscribe(lambda event: report(event, force=True))


def _benders_log(tee: bool) -> Callable[[str], None]:
    """Return the ``log`` of :func:`~gridlayers.planner.benders.solve_benders`.

    Iteration lines go to the DEBUG log, rejected cuts and abandoned tree nodes to
    the INFO log; all go to stdout with ``tee``.
    """

    def emit(line: str) -> None:
        handled = line.startswith(("benders cut rejected", "benders node abandoned"))
        log.log(logging.INFO if handled else logging.DEBUG, "%s", line)
        if tee:
            print(line)  # noqa: T201 - the solver log the caller asked for

    return emit


def _benders_progress(
    sign: float, offset: float, start: float, on_iteration: IterationCallback | None
) -> Callable[[dict], None] | None:
    """Turn a Benders ``history`` entry (solver units) into a :class:`SolveProgress`."""
    if on_iteration is None:
        return None

    def report(entry: dict) -> None:
        best, bound = entry["best"], entry["bound"]
        objective = sign * (best + offset) if math.isfinite(best) else None
        proven = sign * (bound + offset) if math.isfinite(bound) else None
        gap = None
        if objective is not None and proven is not None:
            gap = (best - bound) / max(abs(best), 1e-12)
        on_iteration(
            SolveProgress(
                entry["iteration"],
                entry["phase"],
                objective,
                proven,
                gap,
                time.perf_counter() - start,
                entry["line"],
            )
        )

    return report


def _solve_benders(
    m: pyo.ConcreteModel,
    lp: highspy.HighsLp,
    columns: list,
    rows: list,
    offset: float,
    sign: float,
    start: float,
    compile_s: float,
    mip_gap: float,
    time_limit_s: float | None,
    threads: int | None,
    log_line: Callable[[str], None],
    on_iteration: IterationCallback | None,
) -> SolveResult:
    """Solve the compiled model by Benders decomposition and load the solution."""
    from gridlayers.planner.benders import BendersError, solve_benders

    names = set(getattr(m, "Investment_Variables", []))
    if not names:
        msg = "method='benders' needs the model's Investment_Variables (build it with build_model)"
        raise ValueError(msg)
    linking = set(getattr(m, "Cross_Day_Constraints", []))
    first = np.fromiter((v.parent_component().name in names for v in columns), dtype=bool)
    link = np.fromiter((c.parent_component().name in linking for c in rows), dtype=bool)
    left = None if time_limit_s is None else max(time_limit_s - compile_s, 1.0)
    try:
        res = solve_benders(
            lp,
            first,
            link,
            mip_gap=mip_gap,
            time_limit_s=left,
            threads=threads,
            log=log_line,
            column_names=[v.name if f else "" for v, f in zip(columns, first, strict=True)],
            on_progress=_benders_progress(sign, offset, start, on_iteration),
        )
    except BendersError as err:
        raise PlannerSolveError(str(err)) from err
    if res.x is None:
        why = f"{res.status}: {res.message}" if res.message else res.status
        msg = f"Benders found no feasible plan ({why})"
        raise PlannerSolveError(msg)
    for var, val in zip(columns, res.x, strict=True):
        var.set_value(float(val), skip_validation=True)
    # Same wording as HiGHS's modelStatusToString for a monolithic solve.
    status = {
        "optimal": "Optimal",
        "time_limit": "Time limit reached",
        "error": "Benders stopped on a solver error",
        "infeasible": "Infeasible",
    }.get(res.status, "Iteration limit reached")
    return SolveResult(
        termination=status,
        objective=sign * (res.objective + offset),
        bound=sign * (res.bound + offset),
        mip_gap=res.mip_gap,
        solve_seconds=time.perf_counter() - start,
        compile_seconds=compile_s,
        method="benders",
        iterations=res.iterations,
        message=res.message,
        rejected_cuts=res.rejected_cuts,
    )
