"""Rounding heuristic of the Benders solve: a plan from a fractional master point.

The tree's own dives (:mod:`~gridlayers.planner.benders_tree`) solve all block LPs
at every node on the way down (one cut round per node, ~100 nodes deep on ISO-NE),
so the first plan of the full ISO-NE cases came minutes after the LP phase. This
heuristic rounds on the master LP alone, whose cuts already approximate the
operating cost, and only then evaluates the blocks:

1. *Master dive* (:func:`master_dive`): starting from a master point and the
   integer bounds of a node, repeatedly fix one fractional integer column and
   re-solve the master LP (warm, no block LPs), trying the other side if the
   master becomes infeasible, until the point is integral. Each step fixes one
   more column, so it ends after at most twice as many master solves as there are
   integer columns. Two orders are dived (:data:`DIVE_ORDERS`: the column nearest
   to an integer first, or the largest first, rounded up), and the topology with
   the lower master LP value is completed.
2. *Fixed topology* (:func:`complete_plan`): with every integer column fixed at
   the rounded values, a short cut loop (master LP, blocks at its point, their
   cuts) optimises the continuous first-stage columns. Every evaluated point is
   integral, so each one whose blocks are feasible is a plan (an upper bound,
   recorded by :meth:`~gridlayers.planner.benders._Run.evaluate`).

The heuristic never touches the proven bound: the master LPs it solves are
restricted (fixed columns), so their values bound nothing but the rounded
topology. Its cuts are ordinary Benders cuts, valid at every master point, and
stay in the pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gridlayers.planner.benders_blocks import INF, BendersError
from gridlayers.planner.benders_master import MasterOutOfTime

if TYPE_CHECKING:
    from gridlayers.planner.benders import _Run

#: Integrality tolerance of master points (as in the tree), p.u.
INT_TOL = 1e-6
#: Cut rounds of the fixed-topology loop.
FIXED_ROUNDS = 12
#: Weight of the newest master point in the fixed-topology separation point
#: (in-out on the continuous columns; the integer columns are equal in both).
FIXED_IN_OUT = 0.5


@dataclass
class HeuristicStats:
    """Counts of the rounding heuristic (for logs and tests)."""

    calls: int = 0
    master_solves: int = 0  # master LPs of the dives (no block LPs)
    rounds: int = 0  # fixed-topology cut rounds (all blocks solved)
    plans: int = 0  # calls that improved the incumbent
    failed: int = 0  # calls whose dive or fixed topology had no feasible point


class MasterStopped(Exception):  # noqa: N818 - a signal
    """Time ran out or the master LP failed: the heuristic gives up quietly."""


def _solve(run: _Run) -> tuple[np.ndarray, float] | None:
    if run.out_of_time():
        raise MasterStopped
    try:
        return run.master.solve()
    except (MasterOutOfTime, BendersError) as err:
        raise MasterStopped from err


#: Rounding orders of the master dive: the fractional column nearest to an integer
#: first (rounded to that integer), or the one with the largest value first (rounded
#: up: build what the LP relaxation wants most).
DIVE_ORDERS = ("nearest", "largest")


def master_dive(
    run: _Run,
    lo: np.ndarray,
    up: np.ndarray,
    x: np.ndarray,
    stats: HeuristicStats,
    order: str = "nearest",
) -> tuple[np.ndarray, float] | None:
    """Round the integer columns of master point ``x`` within ``[lo, up]``.

    Returns the integral values (in :attr:`_Master.integer` order) and the master
    LP value with them fixed (a cut-based estimate of the topology's cost), or None
    if the master LP (with its current cuts) became infeasible on both sides of a
    column. Leaves the master's integer bounds changed; the caller restores them.
    """
    master = run.master
    lo, up = np.asarray(lo, float).copy(), np.asarray(up, float).copy()
    xi = x[master.integer]
    value = INF
    for _ in range(2 * len(master.integer) + 1):
        frac = np.abs(xi - np.round(xi))
        free = (frac > INT_TOL) & (lo < up)
        if not free.any():
            if not math.isfinite(value):  # x was integral: its value with the columns fixed
                fixed = np.clip(np.round(xi), lo, up)
                master.set_integer_bounds(fixed, fixed)
                solved = _solve(run)
                stats.master_solves += 1
                if solved is None:
                    return None
                value = solved[1]
            return np.clip(np.round(xi), lo, up), value
        cand = np.flatnonzero(free)
        if order == "largest":
            j = int(cand[np.argmax(xi[cand])])
            first = float(math.ceil(xi[j]))
        else:  # the least disruptive rounding first
            j = int(cand[np.argmin(frac[cand])])
            first = float(np.round(xi[j]))
        other = math.floor(xi[j]) if first > xi[j] else math.ceil(xi[j])
        for v in (first, other):
            lo_j, up_j = lo[j], up[j]
            lo[j] = up[j] = v
            master.set_integer_bounds(lo, up)
            solved = _solve(run)
            stats.master_solves += 1
            if solved is not None:
                xi, value = solved[0][master.integer], solved[1]
                break
            lo[j], up[j] = lo_j, up_j
        else:
            return None
    return None


def complete_plan(
    run: _Run, xi: np.ndarray, gap: float, stats: HeuristicStats, max_iterations: int | None
) -> float:
    """Fix the integer columns at ``xi`` and run a short cut loop; return its best plan.

    Returns the best plan value found for this topology (``inf`` if none).
    """
    master = run.master
    master.set_integer_bounds(xi, xi)
    best, core = INF, None
    for _ in range(FIXED_ROUNDS):
        if run.at_limit(max_iterations):
            break
        solved = _solve(run)
        run.iterations += 1
        if solved is None:  # feasibility cuts exclude this topology
            run.log_line("heur", INF, None, None)
            break
        x, lp_value = solved
        x = x.copy()
        x[master.integer] = xi
        point = x if core is None else FIXED_IN_OUT * x + (1.0 - FIXED_IN_OUT) * core
        core = x if core is None else 0.5 * (core + x)
        value, _, violating = run.evaluate(point, True)
        stats.rounds += 1
        best = min(best, value)
        run.log_line("heur", lp_value, value, violating)
        if math.isfinite(best) and best - lp_value <= gap / 4.0 * abs(best):
            break  # the plan is optimal for this topology (to the node tolerance)
        if math.isfinite(run.best) and lp_value >= run.best - gap * abs(run.best):
            break  # lp_value bounds this topology: it cannot improve the incumbent
    return best


def rounding_heuristic(
    run: _Run,
    x: np.ndarray,
    gap: float,
    stats: HeuristicStats,
    lo: np.ndarray | None = None,
    up: np.ndarray | None = None,
    max_iterations: int | None = None,
) -> float:
    """Round master point ``x`` (within integer bounds ``lo``/``up``) to a plan.

    Returns the value of the best plan found (``inf`` if none). The proven bound
    is left alone; the master's integer bounds are restored to the root's.
    """
    master = run.master
    lo = master.int_lo if lo is None else lo
    up = master.int_up if up is None else up
    stats.calls += 1
    best_before = run.best
    value = INF
    try:
        # Each rounding order gives a topology; the one the cuts rate cheapest is completed.
        dives = [master_dive(run, lo, up, x, stats, order) for order in DIVE_ORDERS]
        dives = [d for d in dives if d is not None]
        if dives:
            xi, _ = min(dives, key=lambda d: d[1])
            value = complete_plan(run, xi, gap, stats, max_iterations)
    except MasterStopped:
        pass
    finally:
        master.set_integer_bounds(master.int_lo, master.int_up)
    if run.best < best_before:
        stats.plans += 1
    if not math.isfinite(value):
        stats.failed += 1
    if run.log is not None:
        found = f"plan {value:.8e}" if math.isfinite(value) else "no plan"
        run.log(
            f"benders rounding heuristic: {found} (best {run.best:.8e}; "
            f"{stats.master_solves} dive master LPs, {stats.rounds} fixed rounds in all)"
        )
    return value
