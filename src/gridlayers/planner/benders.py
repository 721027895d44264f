"""Benders decomposition of a compiled planner MILP over its operating blocks.

The planner's first-stage columns (builds, corridor upgrades, cable choices) form
the *master* (:mod:`~gridlayers.planner.benders_master`); the operating columns
split into independent LP blocks, one per epoch and representative day for the
ISO-NE model, whose optimality cuts bound the operating cost from below
(:mod:`~gridlayers.planner.benders_blocks`).

A block pays a penalty for falling short of its allocation of a split linking
row (a relaxation, so its cuts stay valid; the penalty exceeds the rows' duals,
so the optimum is unchanged); its other coupled rows are strict, and an
infeasible block gives a feasibility cut. A master point is a *plan* when its
integer columns are integral, every block is feasible, and each split linking
row holds on the sum over blocks (a day may deliver less RPS energy than its
allocation if another delivers more). The solve has two phases:

1. *LP phase*: the master's integer columns are relaxed, and separation points
   are stabilised between the master point and a core point (in-out). It ends
   when the master bound is within ``lp_gap`` of the best evaluated point or
   stalls; it yields the LP-relaxation bound and most cuts.
2. *MIP phase*: branch and bound on the integer master columns
   (:mod:`~gridlayers.planner.benders_tree`) re-solves the same master LP at each
   node with the global cut pool, adding the cuts of the blocks at the node's
   point. It ends when (best plan - bound) / best plan <= mip_gap.

Every bound is a valid lower bound of the MILP (any subset of valid cuts is a
relaxation, and the tree's bound is the least bound of its open, pruned and
abandoned nodes), so the reported gap is proven as with branch and bound. Blocks are
solved on ``threads`` Python threads (highspy releases the GIL).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import highspy
import numpy as np

from gridlayers.planner.benders_blocks import (
    INF,
    BendersError,
    _Decomposition,
    _evaluate,
    lp_matrix,
)
from gridlayers.planner.benders_heuristic import HeuristicStats, rounding_heuristic
from gridlayers.planner.benders_master import MasterOutOfTime, _Master
from gridlayers.planner.benders_tree import branch_and_cut

__all__ = ["BendersError", "BendersResult", "lp_matrix", "solve_benders"]

#: LP loops stop after this many master solves without bound progress.
STALL_STOP = 15


@dataclass(frozen=True)
class BendersResult:
    """Outcome of :func:`solve_benders`.

    Parameters
    ----------
    status : str
        ``"optimal"`` (gap reached), ``"time_limit"``, ``"iteration_limit"``,
        ``"infeasible"`` (the tree found no plan) or ``"error"`` (a master or
        block LP failed, see ``message``; the best plan and bound so far are kept).
    x : numpy.ndarray or None
        Values of all columns of the compiled model at the best plan (None if no
        plan with feasible blocks was found).
    objective : float
        Cost of the best plan (model objective units); ``inf`` if none.
    bound : float
        Proven lower bound (model objective units).
    mip_gap : float
        ``(objective - bound) / |objective|``, p.u.
    iterations : int
        Master solves.
    n_blocks : int
        Number of operating blocks.
    history : list of dict
        Per iteration: ``phase``, ``bound``, ``best``, ``cuts``, ``seconds``.
    message : str
        Failures that were handled: why the solve stopped (status ``"error"``),
        how many tree nodes were abandoned after master LP failures, how many cuts
        were rejected (and the first one); else empty.
    rejected_cuts : int
        Cuts refused by :func:`~gridlayers.planner.benders_master.cut_defect`
        (non-finite or extreme coefficients or right-hand side).
    rejections : list of str
        The first rejected cuts: number, kind, block and offending values.

    """

    status: str
    x: np.ndarray | None
    objective: float
    bound: float
    mip_gap: float
    iterations: int
    n_blocks: int
    history: list[dict] = field(default_factory=list)
    message: str = ""
    rejected_cuts: int = 0
    rejections: list[str] = field(default_factory=list)


class _Run:
    """State of one Benders solve: bounds, best plan, log."""

    def __init__(
        self,
        dec: _Decomposition,
        master: _Master,
        start: float,
        time_limit_s: float | None,
        log: Callable[[str], None] | None,
        on_progress: Callable[[dict], None] | None = None,
    ) -> None:
        self.dec, self.master, self.start = dec, master, start
        self.time_limit_s, self.log = time_limit_s, log
        self.on_progress = on_progress
        master.time_left = self.remaining  # a master solve stops at the solve's limit
        self.pool: ThreadPoolExecutor | None = None
        self.best = INF
        self.bound = -INF
        self.best_x: np.ndarray | None = None
        self.best_blocks: list[np.ndarray] | None = None
        self.iterations = 0
        self.history: list[dict] = []
        self.heuristic = HeuristicStats()

    def remaining(self) -> float | None:
        if self.time_limit_s is None:
            return None
        return self.time_limit_s - (time.perf_counter() - self.start)

    def out_of_time(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def at_limit(self, max_iterations: int | None) -> bool:
        return max_iterations is not None and self.iterations >= max_iterations

    def converged(self, gap: float) -> bool:
        return math.isfinite(self.best) and self.best - self.bound <= gap * abs(self.best)

    def evaluate(self, x: np.ndarray, integer_point: bool) -> tuple[float, float, int]:
        """Solve all blocks at ``x``, add their cuts, track the best plan.

        ``x`` is a plan when its integer columns are integral (``integer_point``),
        no block violates a coupled row other than its share of a linking row, and
        the linking rows hold on the sum of the blocks' shares. Returns the plan
        cost (``inf`` if ``x`` is not a plan), the relaxed cost (penalised
        violations included; a lower bound of the operating cost at ``x``) and
        the number of blocks with violations.
        """
        dec = self.dec
        results = list(self.pool.map(lambda b: _evaluate(dec, b, x), range(dec.n_blocks)))
        fixed_cost = float(self.master.cost[: dec.n_first] @ x[: dec.n_first])
        relaxed = fixed_cost + sum(r.relaxed for r in results)
        violating = sum(not r.rows_ok for r in results)
        is_plan = integer_point and not violating and dec.linking_ok(x, results)
        value = fixed_cost + sum(r.operating for r in results) if is_plan else INF
        if value < self.best:
            self.best = value
            self.best_x = x.copy()
            self.best_blocks = [r.solution for r in results]
        for text in self.master.add_cuts([r.cut for r in results]):
            if self.log is not None:
                self.log(f"benders cut rejected: {text}")
        return value, relaxed, violating

    def log_line(
        self, phase: str, master_bound: float, value: float | None, infeasible: int | None
    ) -> None:
        entry = {
            "iteration": self.iterations,
            "phase": phase,
            "master_bound": master_bound,
            "value": value,
            "violating_blocks": infeasible,
            "bound": self.bound,
            "best": self.best,
            "cuts": self.master.n_cuts,
            "seconds": time.perf_counter() - self.start,
        }
        self.history.append(entry)
        line = ""
        if self.log is not None:
            gap = (
                f"{(self.best - self.bound) / abs(self.best):.2e}"
                if math.isfinite(self.best)
                else "-"
            )
            point = "" if value is None else f" point {value:.8e} violating {infeasible}"
            line = (
                f"benders {self.iterations:4d} {phase:5s} master {master_bound:.8e}{point} "
                f"bound {self.bound:.8e} best {self.best:.8e} gap {gap} "
                f"cuts {self.master.n_cuts} {entry['seconds']:.1f}s"
            )
            self.log(line)
        if self.on_progress is not None:
            self.on_progress({**entry, "line": line})

    def lp_loop(self, in_out: float, gap: float, max_iterations: int | None) -> None:
        """Cutting-plane loop on the master LP (integer columns relaxed).

        Separation points are ``lam * x_master + (1 - lam) * core`` (in-out
        stabilisation); ``lam`` becomes 1 after 5 iterations without bound progress.
        Stops when the best evaluated point (penalised cost) is within ``gap`` of
        the master bound, or after :data:`STALL_STOP` iterations without bound
        progress; every cut found stays valid.
        """
        master = self.master
        core = None
        lp_best, stall = INF, 0
        while not self.out_of_time() and not self.at_limit(max_iterations):
            try:
                solved = master.solve()
            except MasterOutOfTime:
                break
            if solved is None:
                msg = "the master LP is infeasible: no plan satisfies the first-stage rows"
                raise BendersError(msg)
            x_out, master_bound = solved
            self.iterations += 1
            if len(master.active) > master.row_limit:
                master.prune(x_out)
            stall = 0 if master_bound > self.bound + 1e-9 * abs(master_bound) else stall + 1
            self.bound = max(self.bound, master_bound)
            if core is None:
                core = x_out.copy()
                core[master.integer] = self.dec.col_up[self.dec.master_cols][master.integer]
            lam = 1.0 if stall >= 5 else in_out
            x = lam * x_out + (1.0 - lam) * core
            core = 0.5 * (core + x_out)
            value, relaxed, infeasible = self.evaluate(x, not len(master.integer))
            lp_best = min(lp_best, relaxed)
            self.log_line("lp", master_bound, value, infeasible)
            closed = math.isfinite(lp_best) and lp_best - self.bound <= gap * abs(lp_best)
            if closed or stall >= STALL_STOP:
                break


def solve_benders(
    lp: highspy.HighsLp,
    first_stage: np.ndarray,
    linking_rows: np.ndarray,
    *,
    mip_gap: float = 1e-4,
    time_limit_s: float | None = None,
    threads: int | None = None,
    max_iterations: int | None = None,
    in_out: float = 0.2,
    lp_gap: float = 1e-5,
    log: Callable[[str], None] | None = None,
    column_names: list[str] | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> BendersResult:
    """Solve a compiled MILP by Benders decomposition.

    Parameters
    ----------
    lp : highspy.HighsLp
        Minimisation model (all integer columns must be first-stage).
    first_stage : numpy.ndarray of bool
        Per column: belongs to the master (investment decision).
    linking_rows : numpy.ndarray of bool
        Per row: sums operating columns of several blocks (split with allocation
        columns); rows not flagged here that do so merge their blocks.
    mip_gap : float
        Relative gap to prove, p.u.
    time_limit_s : float, optional
        Wall-clock limit, s.
    threads : int, optional
        Python threads solving block LPs concurrently (default 1); the master
        uses HiGHS's own default.
    max_iterations : int, optional
        Limit on master LP solves (LP phase and tree together).
    in_out : float
        Weight of the master point in the stabilised separation point of the LP
        loops (``lam``; 1 = plain Kelley cutting planes).
    lp_gap : float
        Relative gap at which the LP phase ends, p.u.
    log : callable, optional
        Receives one progress line per iteration (and one per rejected cut or
        abandoned tree node).
    column_names : list of str, optional
        Names of the model's columns, for the messages about rejected cuts.
    on_progress : callable, optional
        Called after every master solve with that iteration's ``history`` entry
        (``iteration``, ``phase``, ``bound``, ``best``, ``seconds``, ...) and its
        log ``line``, and once at the end with phase ``"end"`` (final bound and plan).

    Returns
    -------
    BendersResult
        Best plan, proven bound and gap.

    """
    start = time.perf_counter()
    workers = max(1, int(threads or 1))
    dec = _Decomposition(lp, first_stage, linking_rows)
    master = _Master(dec, _master_names(dec, column_names), gap=min(mip_gap, lp_gap))
    run = _Run(dec, master, start, time_limit_s, log, on_progress)
    pool = ThreadPoolExecutor(max_workers=workers)
    run.pool = pool
    status, notes = "iteration_limit", []
    try:
        # 1. LP relaxation of the master, stabilised (in-out), to a tight cut set.
        run.lp_loop(in_out, lp_gap, max_iterations)
        if len(master.active):
            master.prune(master.last_x)
        if not len(master.integer):
            status = "optimal" if run.best - run.bound <= mip_gap * abs(run.best) else status
        elif not run.out_of_time() and not run.at_limit(max_iterations):
            # A first plan (upper bound) from the rounded LP point, before the tree.
            rounding_heuristic(
                run, master.last_x, mip_gap, run.heuristic, max_iterations=max_iterations
            )
        # 2. Branch and bound on the master LP, sharing the cut pool.
        if len(master.integer) and not run.out_of_time():
            status, stats = branch_and_cut(run, mip_gap, max_iterations)
            if stats.abandoned:
                notes.append(f"{stats.abandoned} tree node(s) abandoned after master LP failures")
            if stats.stalled:
                notes.append(f"{stats.stalled} tree node(s) closed unsolved after rejected cuts")
            if log is not None:
                log(f"benders tree: {status}, {stats}")
        elif run.out_of_time():
            status = "time_limit"
    except BendersError as err:
        # Keep what was found: the best plan and the bound proven so far.
        status = "error"
        notes.insert(0, str(err))
        if log is not None:
            log(f"benders stops: {err}")
    finally:
        pool.shutdown(wait=True)
    if on_progress is not None:  # the final state (the tree may raise the bound at its end)
        on_progress(
            {
                "iteration": run.iterations,
                "phase": "end",
                "bound": run.bound,
                "best": run.best,
                "seconds": time.perf_counter() - start,
                "line": "",
            }
        )
    best, bound = run.best, run.bound
    best_x_master, best_blocks = run.best_x, run.best_blocks
    history = run.history

    x_full = None
    if best_x_master is not None and best_blocks is not None:
        x_full = np.zeros(len(dec.cost))
        x_full[dec.master_cols] = best_x_master[: dec.n_first]
        for blk, sol in zip(dec.blocks, best_blocks, strict=True):
            x_full[blk.cols] = sol
    if log is not None:
        failed = ", ".join(f"{k} x{n}" for k, n in sorted(master.failed_attempts.items()))
        log(
            f"benders master: unit {master.unit:g} cost units, {master.runs} LP solves, "
            f"failed attempts: {failed or 'none'}"
        )
    if master.rejected:
        notes.append(f"{master.rejected} cut(s) rejected, first: {master.rejections[0]}")
    gap = (best - bound) / abs(best) if math.isfinite(best) and abs(best) > 0 else INF
    return BendersResult(
        status,
        x_full,
        best,
        bound,
        gap,
        run.iterations,
        dec.n_blocks,
        history,
        "; ".join(notes),
        master.rejected,
        list(master.rejections),
    )


def _master_names(dec: _Decomposition, column_names: list[str] | None) -> list[str] | None:
    """Name the master columns: model names, then ``alloc[k]`` and ``theta[block b]``."""
    if column_names is None:
        return None
    first = [column_names[int(j)] for j in dec.master_cols]
    alloc = [f"alloc[{k}]" for k in range(dec.n_alloc)]
    return first + alloc + [f"theta[block {b}]" for b in range(dec.n_blocks)]
