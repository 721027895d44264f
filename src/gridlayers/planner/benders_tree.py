"""Branch and bound on the Benders master LP with one global cut pool.

The MIP phase of :func:`~gridlayers.planner.benders.solve_benders`. Benders cuts
under-estimate the operating cost for *every* master point, so the pool found at
one node is valid at all nodes: each node only tightens the integer columns'
bounds on the same master LP (warm-started) and runs a short cutting-plane loop
(solve the master LP, solve the blocks at its point, add their cuts). This is
branch-and-Benders-cut: unlike re-solving a master MIP per proposed topology,
the bound of a fractional node accounts for the operation at that node's point.

Per node, until one of these holds:

- the master LP is infeasible, or its value reaches the cutoff (best plan minus
  the gap): the node is pruned;
- the cuts are tight at the master point (sum of block values minus sum of
  epigraph values within a quarter of the gap): the node is solved. An integral
  point is then a plan whose blocks were all evaluated (an upper bound, recorded
  by :meth:`~gridlayers.planner.benders._Run.evaluate`); a fractional one is
  branched on;
- a fractional point's bound gained less than :data:`TAIL_GAIN` (relative) in
  :data:`TAIL_ROUNDS` rounds, or the search is diving (see below): it is
  branched on without further cuts.

Branching picks the fractional integer column with the largest
``min(f, 1 - f) * |cost|`` (fractionality weighted by its investment cost).
Nodes are explored best bound first, except that after a branching the search
plunges into the child on the rounding side while the child's bound lies in the
lower :data:`PLUNGE_SHARE` of the open gap, and *dives* (one cut round per
fractional node, always plunging, down to a leaf) until the first plan and then
every :data:`DIVE_EVERY` nodes, to find better plans.

The reported bound is the smallest bound of the open nodes, of the nodes pruned
by the gap cutoff, of nodes abandoned because their master LP failed in every
retry (:meth:`~gridlayers.planner.benders_master._Master.solve`) and of *stalled*
nodes (an integral point that comes back unchanged because its cuts were rejected,
:func:`~gridlayers.planner.benders_master.cut_defect`), so it is proven like a
branch-and-bound bound; such a node only stops the gap from closing below its
bound, it does not end the search.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gridlayers.planner.benders_blocks import INF, BendersError
from gridlayers.planner.benders_heuristic import rounding_heuristic
from gridlayers.planner.benders_master import MasterOutOfTime

if TYPE_CHECKING:
    from gridlayers.planner.benders import _Run

#: Integrality tolerance of master points, p.u. of the column's unit.
INT_TOL = 1e-6
#: A fractional node is branched on after this many cut rounds ...
TAIL_ROUNDS = 3
#: ... whose bound gained less than this (relative) each.
TAIL_GAIN = 1e-6
#: Plunge into a child while its bound is within this share of the open gap.
PLUNGE_SHARE = 0.3
#: Start a dive (one cut round per fractional node, always plunging) from the
#: current node after this many nodes since the last dive began.
DIVE_EVERY = 40
#: Run the rounding heuristic (:mod:`~gridlayers.planner.benders_heuristic`) on the
#: point of a branched node after this many nodes since its last call (0: never).
HEURISTIC_EVERY = 25


@dataclass(order=True)
class _Node:
    bound: float
    seq: int
    lo: np.ndarray = field(compare=False)
    up: np.ndarray = field(compare=False)
    depth: int = field(compare=False, default=0)


@dataclass
class TreeStats:
    """Counts of the branch and bound (for logs and the closing report)."""

    nodes: int = 0
    pruned: int = 0
    infeasible: int = 0
    plans: int = 0  # improving plans found
    max_depth: int = 0
    abandoned: int = 0
    stalled: int = 0  # integral nodes whose master point came back without a new cut


class _Tree:
    def __init__(self, run: _Run, mip_gap: float, max_iterations: int | None) -> None:
        self.run, self.mip_gap, self.max_iterations = run, mip_gap, max_iterations
        master = run.master
        self.integer = master.integer
        self.weight = np.maximum(np.abs(master.cost[self.integer]), 1e-6)
        self.open: list[_Node] = []
        self.seq = 0
        self.pruned_floor = INF  # smallest bound of the nodes pruned by the cutoff
        self.abandoned_floor = INF  # smallest bound of nodes whose master LP failed
        self.stats = TreeStats()
        # From the root until the first plan (past infeasible leaves; with a plan of the
        # rounding heuristic, to the first leaf), then every DIVE_EVERY nodes.
        self.diving = True
        self.dive_start = 0
        self.heuristic_at = 0  # node count at the last rounding-heuristic call

    # -- bounds -------------------------------------------------------------
    def cutoff(self) -> float:
        best = self.run.best
        return best - self.mip_gap * abs(best) if math.isfinite(best) else INF

    def global_bound(self, current: float = INF) -> float:
        """Proven lower bound: min over open, pruned-by-cutoff and current nodes."""
        floors = [self.pruned_floor, self.abandoned_floor, current, self.run.best]
        return min([n.bound for n in self.open] + floors)

    def push(self, node: _Node) -> None:
        heapq.heappush(self.open, node)

    def child(self, parent: _Node, bound: float, j: int, lo: float, up: float) -> _Node:
        self.seq += 1
        c_lo, c_up = parent.lo.copy(), parent.up.copy()
        c_lo[j], c_up[j] = lo, up
        return _Node(bound, self.seq, c_lo, c_up, parent.depth + 1)

    # -- one node -----------------------------------------------------------
    def process(self, node: _Node) -> tuple[str, np.ndarray | None, float]:
        """Run the node's cut loop; return (outcome, master point, node bound)."""
        run, master = self.run, self.run.master
        master.set_integer_bounds(node.lo, node.up)
        bound, flat = node.bound, 0
        previous: np.ndarray | None = None
        while True:
            if run.out_of_time() or run.at_limit(self.max_iterations):
                return "stop", None, bound
            try:
                solved = master.solve()
            except MasterOutOfTime:
                return "stop", None, bound
            except BendersError as err:
                if run.log is not None:
                    run.log(
                        f"benders node abandoned at master LP {run.iterations + 1} "
                        f"(depth {node.depth}, bound {bound:.8e}): {err}"
                    )
                return "failed", None, bound
            run.iterations += 1
            if solved is None:
                run.log_line("node", INF, None, None)
                return "infeasible", None, INF
            x, lp_value = solved
            gain = lp_value - bound
            bound = max(bound, lp_value)
            if bound >= self.cutoff():
                run.log_line("node", lp_value, None, None)
                return "pruned", x, bound
            xi = x[self.integer]
            integral = bool(np.all(np.abs(xi - np.round(xi)) <= INT_TOL))
            if integral:
                x = x.copy()
                x[self.integer] = np.round(xi)
                stuck = previous is not None and np.array_equal(x, previous)
                if stuck and gain <= TAIL_GAIN * abs(bound):
                    # The master returned the point it just evaluated: its cuts were
                    # rejected (cut_defect), so more rounds cannot raise this bound.
                    run.log_line("node", lp_value, None, None)
                    return "stalled", x, bound
                previous = x
            value, relaxed, infeasible = run.evaluate(x, integral)
            run.bound = max(run.bound, self.global_bound(bound))
            run.log_line("node", lp_value, value, infeasible)
            if len(master.active) > master.row_limit:
                master.prune(master.last_x)
            if relaxed - lp_value <= self.mip_gap / 4.0 * abs(lp_value):
                return ("solved" if integral else "branch"), x, bound
            if not integral:
                if self.diving:
                    return "branch", x, bound  # diving for a plan: one round per node
                flat = flat + 1 if gain <= TAIL_GAIN * abs(bound) else 0
                if flat >= TAIL_ROUNDS:
                    return "branch", x, bound

    def branch_column(self, x: np.ndarray) -> int:
        xi = x[self.integer]
        frac = np.abs(xi - np.round(xi))
        score = np.where(frac > INT_TOL, np.minimum(frac, 1 - frac) * self.weight, -1.0)
        return int(np.argmax(score))

    # -- search -------------------------------------------------------------
    def search(self, root_bound: float) -> str:
        run, master = self.run, self.run.master
        self.seq += 1
        nxt: _Node | None = _Node(root_bound, self.seq, master.int_lo.copy(), master.int_up.copy())
        try:
            while nxt is not None or self.open:
                node = nxt if nxt is not None else heapq.heappop(self.open)
                nxt = None
                run.bound = max(run.bound, self.global_bound(node.bound))
                if run.converged(self.mip_gap):
                    return "optimal"
                if node.bound >= self.cutoff():
                    self.pruned_floor = min(self.pruned_floor, node.bound)
                    self.stats.pruned += 1
                    continue
                if run.at_limit(self.max_iterations):
                    self.push(node)
                    return "iteration_limit"
                self.stats.nodes += 1
                self.stats.max_depth = max(self.stats.max_depth, node.depth)
                if self.stats.nodes - self.dive_start >= DIVE_EVERY:
                    self.diving, self.dive_start = True, self.stats.nodes
                best_before = run.best
                outcome, x, bound = self.process(node)
                self.stats.plans += int(run.best < best_before)
                if outcome != "branch" or run.best < best_before:
                    # A dive ends at its leaf once a plan exists. (Carrying the first dive
                    # on past pruned leaves until a node found a plan kept the ISO-NE SO
                    # search at one cut round per node for all 10 minutes.)
                    self.diving = not math.isfinite(run.best)
                if outcome == "stop":
                    self.push(_Node(bound, node.seq, node.lo, node.up, node.depth))
                    # A master solve may stop a hair before the clock says so.
                    at_limit = run.at_limit(self.max_iterations) and not run.out_of_time()
                    return "iteration_limit" if at_limit else "time_limit"
                if outcome == "failed":
                    self.stats.abandoned += 1
                    self.abandoned_floor = min(self.abandoned_floor, bound)
                elif outcome == "stalled":
                    self.stats.stalled += 1
                    self.abandoned_floor = min(self.abandoned_floor, bound)
                elif outcome == "infeasible":
                    self.stats.infeasible += 1
                elif outcome == "pruned":
                    self.pruned_floor = min(self.pruned_floor, bound)
                    self.stats.pruned += 1
                elif outcome == "solved":
                    # Integral and solved to the node tolerance: its bound stays counted.
                    self.pruned_floor = min(self.pruned_floor, bound)
                else:
                    # Not during the first dive: it finds a plan of its own within a few
                    # dozen nodes (ISO-NE: 32-44), and the heuristic's cuts would divert it.
                    first_dive = self.diving and not math.isfinite(run.best)
                    first_dive = first_dive and self.stats.nodes < 4 * HEURISTIC_EVERY
                    due = self.stats.nodes - self.heuristic_at >= HEURISTIC_EVERY
                    if HEURISTIC_EVERY and due and not first_dive:
                        self.heuristic_at = self.stats.nodes
                        best_before = run.best
                        rounding_heuristic(
                            run,
                            x,
                            self.mip_gap,
                            run.heuristic,
                            node.lo,
                            node.up,
                            self.max_iterations,
                        )
                        self.stats.plans += int(run.best < best_before)
                    j = self.branch_column(x)
                    v = x[self.integer[j]]
                    down = self.child(node, bound, j, node.lo[j], math.floor(v))
                    up = self.child(node, bound, j, math.ceil(v), node.up[j])
                    first, second = (up, down) if v - math.floor(v) >= 0.5 else (down, up)
                    self.push(second)
                    gap_open = run.best - self.global_bound(bound)
                    plunge = self.diving or (
                        bound <= self.global_bound(bound) + PLUNGE_SHARE * gap_open
                    )
                    if plunge:
                        nxt = first
                    else:
                        self.push(first)
            run.bound = max(run.bound, self.global_bound())
            if run.converged(self.mip_gap):
                return "optimal"
            # Only abandoned or stalled nodes keep an exhausted tree from closing the gap.
            return "error" if self.stats.abandoned + self.stats.stalled else "infeasible"
        finally:
            master.set_integer_bounds(master.int_lo, master.int_up)


def branch_and_cut(
    run: _Run, mip_gap: float, max_iterations: int | None = None
) -> tuple[str, TreeStats]:
    """Search the integer master columns by branch and bound with Benders cuts.

    Parameters
    ----------
    run : _Run
        A Benders run whose master holds the cuts of the LP phase and whose
        ``bound`` is the LP bound (objective units).
    mip_gap : float
        Relative gap to prove, p.u.
    max_iterations : int, optional
        Limit on master LP solves, counted with those before the tree.

    Returns
    -------
    tuple
        Status (``"optimal"``, ``"time_limit"``, ``"iteration_limit"``,
        ``"infeasible"`` or ``"error"``: the tree is exhausted but nodes whose master
        LP failed keep the gap open) and the tree's counts. ``run.best``/``run.bound`` hold the
        best plan and the proven bound.

    """
    tree = _Tree(run, mip_gap, max_iterations)
    status = tree.search(run.bound)
    return status, tree.stats
