"""Benders decomposition of a compiled planner MILP over its operating blocks.

The planner's first-stage columns (builds, corridor upgrades, cable choices) form
the *master*. Removing them splits the operating columns into independent blocks
(one per epoch and representative day for the ISO-NE model), except for a few
*linking rows* that sum over days (the RPS). Each linking row is split exactly
with one free allocation column per block it touches::

    lo <= sum_b a_b y_b + B x <= up
    <=>  a_b y_b >= s_b (lo only), <= s_b (up only) or == s_b (both), for each b,
         lo <= sum_b s_b + B x <= up (in the master).

The master holds the first-stage and allocation columns, one epigraph column
``theta_b`` per block and the cuts. Block ``b`` is an LP in its operating
columns with the master columns fixed; its optimal value ``z_b(x)`` is convex in
``x``, so with the row duals ``pi`` of the solve at ``xbar``::

    theta_b >= z_b(xbar) - (C_b' pi)' (x - xbar)          (optimality cut)

where ``C_b`` is the block's coupling matrix. An infeasible block gives a
feasibility cut from its phase-1 LP (minimum total violation ``w`` of the
coupled rows): ``w(xbar) - (C_b' pi_1)' (x - xbar) <= 0``.

The solve has two phases:

1. *LP phase*: the master's integer columns are relaxed, the blocks price a
   violation of a coupled row at :data:`PENALTY_FACTOR` times the largest
   operating cost (always feasible; a relaxation, so its cuts stay valid), and
   separation points are stabilised between the master point and a core point
   (in-out). It ends when the master bound is within ``lp_gap`` of the best
   evaluated point or stalls; it yields the LP-relaxation bound and most cuts.
2. *MIP phase*: rows are strict again. The master MIP proposes a topology (the
   integer columns); an LP loop with those columns fixed finds its best
   continuous plan, whose cost is an upper bound when every block is feasible.
   Repeat until (best plan - master bound) / best plan <= mip_gap.

Every master bound is a valid lower bound of the MILP (any subset of valid cuts
is a relaxation), so the reported gap is proven, as with branch and bound. The
master keeps all cuts in a pool and only the binding ones as rows.

Block models are built once and updated in place (row bounds only), so each
re-solve warm-starts from the previous basis; blocks are solved on ``threads``
Python threads (highspy releases the GIL).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

INF = highspy.kHighsInf
#: Smallest coefficient written into a master cut row; the master's HiGHS
#: ``small_matrix_value`` is set 10 times lower, so none is dropped silently.
TINY = 1e-9
#: LP loops stop after this many master solves without bound progress.
STALL_STOP = 15
#: Penalty of the LP phase per unit of coupled-row violation, as a multiple of the
#: largest operating cost coefficient.
PENALTY_FACTOR = 10.0
#: Time cap of one master MIP solve, s: at the cap its incumbent is the next
#: proposal and its dual bound (valid) the bound.
MASTER_MIP_SECONDS = 120.0
OPTIMAL = highspy.HighsModelStatus.kOptimal
INFEASIBLE = (
    highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,
)


class BendersError(RuntimeError):
    """The decomposition cannot proceed (a block is infeasible for every plan, or unbounded)."""


@dataclass(frozen=True)
class BendersResult:
    """Outcome of :func:`solve_benders`.

    Parameters
    ----------
    status : str
        ``"optimal"`` (gap reached), ``"time_limit"``, ``"iteration_limit"`` or
        ``"master_error"`` (the master MIP failed; best plan and bound so far kept).
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

    """

    status: str
    x: np.ndarray | None
    objective: float
    bound: float
    mip_gap: float
    iterations: int
    n_blocks: int
    history: list[dict] = field(default_factory=list)


@dataclass
class _Block:
    """One operating block: its LP, coupling to the master and cuts."""

    cols: np.ndarray  # global column indices
    coupling: sp.csr_matrix  # block rows x master columns
    row_lo: np.ndarray
    row_up: np.ndarray
    coupled: np.ndarray  # local indices of rows with a master coupling
    highs: highspy.Highs
    lower_bound: float = 0.0


def _new_highs() -> highspy.Highs:
    # No "threads" option: HiGHS has one global task scheduler per process, and an
    # instance asking for a different thread count than it was started with fails
    # to run ("Not Set"). Block LPs are serial simplex solves; parallelism comes
    # from solving blocks on Python threads.
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def _pass_lp(
    h: highspy.Highs,
    cost: np.ndarray,
    col_lo: np.ndarray,
    col_up: np.ndarray,
    a: sp.csr_matrix,
    row_lo: np.ndarray,
    row_up: np.ndarray,
) -> None:
    lp = highspy.HighsLp()
    lp.num_col_ = a.shape[1]
    lp.num_row_ = a.shape[0]
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(col_lo, dtype=float)
    lp.col_upper_ = np.asarray(col_up, dtype=float)
    lp.row_lower_ = np.asarray(row_lo, dtype=float)
    lp.row_upper_ = np.asarray(row_up, dtype=float)
    csc = sp.csc_matrix(a)
    csc.sort_indices()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr
    lp.a_matrix_.index_ = csc.indices
    lp.a_matrix_.value_ = csc.data
    h.passModel(lp)


def lp_matrix(lp: highspy.HighsLp) -> sp.csr_matrix:
    """Return the constraint matrix of a column-wise HiGHS LP as CSR (row units x column units)."""
    return sp.csc_matrix(
        (
            np.asarray(lp.a_matrix_.value_),
            np.asarray(lp.a_matrix_.index_),
            np.asarray(lp.a_matrix_.start_),
        ),
        shape=(lp.num_row_, lp.num_col_),
    ).tocsr()


class _Decomposition:
    """The master/block split of a compiled LP/MIP."""

    def __init__(
        self,
        lp: highspy.HighsLp,
        first_stage: np.ndarray,
        linking_rows: np.ndarray,
    ) -> None:
        n_cols = lp.num_col_
        a = lp_matrix(lp)
        self.cost = np.asarray(lp.col_cost_, dtype=float)
        self.col_lo = np.asarray(lp.col_lower_, dtype=float)
        self.col_up = np.asarray(lp.col_upper_, dtype=float)
        row_lo = np.asarray(lp.row_lower_, dtype=float)
        row_up = np.asarray(lp.row_upper_, dtype=float)
        integrality = (
            np.asarray([int(t) for t in lp.integrality_], dtype=int)
            if len(lp.integrality_)
            else np.zeros(n_cols, dtype=int)
        )
        first_stage = np.asarray(first_stage, dtype=bool)
        if np.any(integrality[~first_stage] != 0):
            msg = "integer columns must be first-stage for the Benders decomposition"
            raise BendersError(msg)
        self.master_cols = np.flatnonzero(first_stage)
        op_cols = np.flatnonzero(~first_stage)
        a_m = a[:, self.master_cols]
        a_o = a[:, op_cols]
        has_op = np.diff(a_o.indptr) > 0
        master_rows = np.flatnonzero(~has_op)
        link_rows = np.flatnonzero(np.asarray(linking_rows, dtype=bool) & has_op)
        block_rows = np.flatnonzero(has_op & ~np.asarray(linking_rows, dtype=bool))

        # Blocks: connected components of operating columns over the block rows.
        a_ob = a_o[block_rows]
        n_br, n_op = a_ob.shape
        graph = sp.bmat([[None, a_ob], [a_ob.T, None]], format="csr")
        n_comp, labels = connected_components(graph, directed=False)
        row_label, col_label = labels[:n_br], labels[n_br:]
        with_rows = np.unique(row_label)
        # Columns in no block row are merged into one block of their own.
        loose = ~np.isin(col_label, with_rows)
        remap = {int(c): i for i, c in enumerate(with_rows)}
        n_blocks = len(with_rows) + int(loose.any())
        col_block = np.array([remap.get(int(c), n_blocks - 1) for c in col_label], dtype=int)
        row_block = np.array([remap[int(c)] for c in row_label], dtype=int)

        # Allocation columns for the linking rows.
        alloc_of: list[tuple[int, int, int]] = []  # (link row, block, alloc index)
        a_link_o = a_o[link_rows]
        for k, r in enumerate(link_rows):
            lo_cols = a_link_o.indices[a_link_o.indptr[k] : a_link_o.indptr[k + 1]]
            for b in np.unique(col_block[lo_cols]):
                alloc_of.append((int(r), int(b), len(alloc_of)))
        n_first = len(self.master_cols)
        n_alloc = len(alloc_of)
        self.n_first, self.n_alloc, self.n_blocks = n_first, n_alloc, n_blocks
        op_cost = np.abs(self.cost[op_cols])
        #: Price of a unit of coupled-row violation in the penalised mode.
        self.penalty = PENALTY_FACTOR * float(op_cost.max(initial=0.0) or 1.0)
        self.penalised = False
        self.n_master = n_first + n_alloc + n_blocks
        self.theta0 = n_first + n_alloc
        self.integrality = integrality[self.master_cols]

        # Master rows: first-stage-only rows and the split linking rows.
        m_rows = [a_m[master_rows]]
        m_lo, m_up = [row_lo[master_rows]], [row_up[master_rows]]
        if n_alloc:
            alloc_rows = [r for r, _, _ in alloc_of]
            row_index = {int(r): i for i, r in enumerate(link_rows)}
            s = sp.coo_matrix(
                (
                    np.ones(n_alloc),
                    ([row_index[r] for r in alloc_rows], [n_first + j for _, _, j in alloc_of]),
                ),
                shape=(len(link_rows), self.n_master),
            )
            first_part = sp.hstack(
                [a_m[link_rows], sp.csr_matrix((len(link_rows), n_alloc + n_blocks))]
            )
            m_rows.append(first_part + s)
            m_lo.append(row_lo[link_rows])
            m_up.append(row_up[link_rows])
        m_rows[0] = sp.hstack([m_rows[0], sp.csr_matrix((len(master_rows), n_alloc + n_blocks))])
        self.master_a = sp.vstack(m_rows, format="csr")
        self.master_lo = np.concatenate(m_lo)
        self.master_up = np.concatenate(m_up)

        # Block LPs.
        self.blocks: list[_Block] = []
        for b in range(n_blocks):
            cols_local = np.flatnonzero(col_block == b)
            rows_b = block_rows[row_block == b]
            a_b = a_o[rows_b][:, cols_local]
            c_b = sp.hstack(
                [a_m[rows_b], sp.csr_matrix((len(rows_b), n_alloc + n_blocks))], format="csr"
            )
            lo_b, up_b = row_lo[rows_b], row_up[rows_b]
            mine = [(r, j) for r, bb, j in alloc_of if bb == b]
            if mine:
                link_idx = [int(np.searchsorted(link_rows, r)) for r, _ in mine]
                a_alloc = a_link_o[link_idx][:, cols_local]
                coup = sp.coo_matrix(
                    (-np.ones(len(mine)), (np.arange(len(mine)), [n_first + j for _, j in mine])),
                    shape=(len(mine), self.n_master),
                ).tocsr()
                lo_r = np.array([0.0 if math.isfinite(row_lo[r]) else -INF for r, _ in mine])
                up_r = np.array([0.0 if math.isfinite(row_up[r]) else INF for r, _ in mine])
                a_b = sp.vstack([a_b, a_alloc], format="csr")
                c_b = sp.vstack([c_b, coup], format="csr")
                lo_b = np.concatenate([lo_b, lo_r])
                up_b = np.concatenate([up_b, up_r])
            g_cols = op_cols[cols_local]
            coupled = np.flatnonzero(np.diff(c_b.indptr) > 0)
            k = len(coupled)
            slack = sp.coo_matrix(
                (
                    np.concatenate([np.ones(k), -np.ones(k)]),
                    (np.concatenate([coupled, coupled]), np.arange(2 * k)),
                ),
                shape=(a_b.shape[0], 2 * k),
            )
            h = _new_highs()
            h.setOptionValue("presolve", "off")
            block = _Block(g_cols, c_b, lo_b, up_b, coupled, h)
            block.lower_bound = self._lower_bound(block, a_b)
            # Violation columns of the coupled rows, fixed at 0 except in phase 1.
            _pass_lp(
                h,
                np.concatenate([self.cost[g_cols], np.zeros(2 * k)]),
                np.concatenate([self.col_lo[g_cols], np.zeros(2 * k)]),
                np.concatenate([self.col_up[g_cols], np.zeros(2 * k)]),
                sp.hstack([a_b, slack], format="csr"),
                lo_b,
                up_b,
            )
            self.blocks.append(block)

    def set_penalised(self, on: bool) -> None:
        """Switch every block between penalised violations and strict rows.

        Penalised, a block is always feasible and its value is a lower bound of the
        strict value (a relaxation), so its cuts stay valid for the MILP; they give
        fast progress while the master is far from feasible plans (LP phase).
        """
        for block in self.blocks:
            h = block.highs
            n, k = len(block.cols), 2 * len(block.coupled)
            slack = np.arange(n, n + k, dtype=np.int32)
            h.changeColsCost(k, slack, np.full(k, self.penalty if on else 0.0))
            h.changeColsBounds(k, slack, np.zeros(k), np.full(k, INF if on else 0.0))
        self.penalised = on

    def _lower_bound(self, block: _Block, a_b: sp.csr_matrix) -> float:
        """Return a bound on ``z_b`` valid for every master point (cost units)."""
        c = self.cost[block.cols]
        lo, up = self.col_lo[block.cols], self.col_up[block.cols]
        with np.errstate(invalid="ignore"):
            terms = np.where(c > 0, c * lo, np.where(c < 0, c * up, 0.0))
        if np.all(np.isfinite(terms)):
            return float(terms.sum())
        h = _new_highs()
        lo_r = block.row_lo.copy()
        up_r = block.row_up.copy()
        lo_r[block.coupled], up_r[block.coupled] = -INF, INF
        _pass_lp(h, c, lo, up, a_b, lo_r, up_r)
        h.run()
        if h.getModelStatus() != OPTIMAL:
            msg = "a block LP is unbounded without its coupling rows; give it a lower bound"
            raise BendersError(msg)
        return float(h.getInfo().objective_function_value)


@dataclass
class _Cut:
    block: int
    coef: np.ndarray  # on master columns
    rhs: float  # optimality cut: theta_b + coef . x >= rhs; feasibility cut: coef . x >= rhs
    optimality: bool


def _run_block(h: highspy.Highs) -> highspy.HighsModelStatus:
    """Re-solve a block LP from its last basis; from scratch if that fails."""
    h.run()
    status = h.getModelStatus()
    if status != OPTIMAL and status not in INFEASIBLE:
        h.clearSolver()  # a warm start can fail numerically; a cold one rarely does
        h.run()
        status = h.getModelStatus()
    return status


def _evaluate(
    dec: _Decomposition, b: int, x_master: np.ndarray
) -> tuple[float | None, np.ndarray | None, _Cut, float]:
    """Solve block ``b`` at ``x_master``; return (value, solution, cut, relaxed value).

    The relaxed value is the block LP's optimum (with penalised violations in the
    penalised mode, ``inf`` if infeasible); value and solution are None unless the
    operation is feasible.

    Feasible: the optimality cut ``theta_b >= z + g (x - xbar)``. Infeasible
    (value and solution None): phase 1 minimises the total violation ``w`` of the
    coupled rows; ``w(x) >= w + g (x - xbar)`` and ``w(x) <= 0`` for a feasible
    plan give the feasibility cut ``-g x >= w - g xbar``.
    """
    block = dec.blocks[b]
    shift = block.coupling @ x_master
    idx = block.coupled
    h = block.highs
    lo = block.row_lo[idx] - shift[idx]
    up = block.row_up[idx] - shift[idx]
    h.changeRowsBounds(len(idx), idx.astype(np.int32), lo, up)
    status = _run_block(h)
    n = len(block.cols)
    if status == OPTIMAL:
        z = float(h.getInfo().objective_function_value)
        sol = h.getSolution()
        g = -(block.coupling.T @ np.asarray(sol.row_dual))
        cut = _Cut(b, -g, z - float(g @ x_master), True)
        values = np.asarray(sol.col_value)
        if dec.penalised and values[n:].max(initial=0.0) > 0.0:
            return None, None, cut, z  # a valid cut, but not a feasible operation
        return z, values[:n], cut, z
    if status not in INFEASIBLE:
        msg = f"block {b} LP ended with status {h.modelStatusToString(status)}"
        raise BendersError(msg)
    if dec.penalised:
        msg = f"block {b} is infeasible even with penalised rows"
        raise BendersError(msg)
    k = 2 * len(idx)
    cols = np.arange(n + k, dtype=np.int32)
    slack = cols[n:]
    h.changeColsCost(n + k, cols, np.concatenate([np.zeros(n), np.ones(k)]))
    h.changeColsBounds(k, slack, np.zeros(k), np.full(k, INF))
    try:
        if _run_block(h) != OPTIMAL:
            status_text = h.modelStatusToString(h.getModelStatus())
            msg = f"block {b} is infeasible for every plan (phase 1: {status_text})"
            raise BendersError(msg)
        w = float(h.getInfo().objective_function_value)
        g = -(block.coupling.T @ np.asarray(h.getSolution().row_dual))
    finally:
        h.changeColsCost(n + k, cols, np.concatenate([dec.cost[block.cols], np.zeros(k)]))
        h.changeColsBounds(k, slack, np.zeros(k), np.zeros(k))
    return None, None, _Cut(b, -g, w - float(g @ x_master), False), INF


class _Master:
    """The master LP/MIP with a pool of cuts, of which the useful ones are rows.

    Every cut found is kept in the pool. Cuts that stay slack are removed from
    the HiGHS model (:meth:`prune`) and come back when the master point violates
    them (:meth:`solve`), so the master stays small while keeping every cut's
    information; any subset of the cuts gives a valid lower bound.
    """

    #: Largest number of pool cuts re-added after one master solve.
    READD = 400

    def __init__(self, dec: _Decomposition) -> None:
        self.dec = dec
        n = dec.n_master
        cost = np.zeros(n)
        cost[: dec.n_first] = dec.cost[dec.master_cols]
        cost[dec.theta0 :] = 1.0
        lo = np.concatenate(
            [
                dec.col_lo[dec.master_cols],
                np.full(dec.n_alloc, -INF),
                [blk.lower_bound for blk in dec.blocks],
            ]
        )
        up = np.concatenate([dec.col_up[dec.master_cols], np.full(dec.n_alloc + dec.n_blocks, INF)])
        self.cost = cost
        self.h = _new_highs()
        self.h.setOptionValue("small_matrix_value", TINY / 10.0)
        _pass_lp(self.h, cost, lo, up, dec.master_a, dec.master_lo, dec.master_up)
        self.n_base_rows = len(dec.master_lo)
        self.nonneg = lo >= 0.0
        self.integer = np.flatnonzero(dec.integrality != 0)
        self.int_lo, self.int_up = lo[self.integer].copy(), up[self.integer].copy()
        self.pool_coef = np.zeros((0, n))  # cut: coef . x >= rhs (theta included)
        self.pool_rhs = np.zeros(0)
        self.pool_block = np.zeros(0, dtype=int)
        self.pool_opt = np.zeros(0, dtype=bool)
        self.active: list[int] = []  # pool index of each cut row, in row order

    @property
    def n_cuts(self) -> int:
        return len(self.pool_rhs)

    def add_cuts(self, cuts: list[_Cut]) -> None:
        """Add cuts to the pool and as rows."""
        if not cuts:
            return
        coef = np.vstack([c.coef for c in cuts])
        for i, cut in enumerate(cuts):
            if cut.optimality:
                coef[i, self.dec.theta0 + cut.block] = 1.0
        first = self.n_cuts
        self.pool_coef = np.vstack([self.pool_coef, coef])
        self.pool_rhs = np.concatenate([self.pool_rhs, [c.rhs for c in cuts]])
        self.pool_block = np.concatenate([self.pool_block, [c.block for c in cuts]])
        self.pool_opt = np.concatenate([self.pool_opt, [c.optimality for c in cuts]])
        self._add_rows(list(range(first, self.n_cuts)))

    def _add_rows(self, idx: list[int]) -> None:
        dense = self.pool_coef[idx].copy()
        rhs = self.pool_rhs[idx]
        # HiGHS drops |a| <= small_matrix_value; on columns >= 0 round tiny
        # coefficients so that the row only gets weaker (a > 0 up, a < 0 to 0).
        tiny = (np.abs(dense) < TINY) & (dense != 0.0) & self.nonneg[None, :]
        dense[tiny & (dense > 0.0)] = TINY
        dense[tiny & (dense < 0.0)] = 0.0
        coef = sp.csr_matrix(dense)
        self.h.addRows(
            len(idx),
            rhs,
            np.full(len(idx), INF),
            coef.nnz,
            coef.indptr[:-1].astype(np.int32),
            coef.indices.astype(np.int32),
            coef.data,
        )
        self.active.extend(idx)

    def prune(self, x: np.ndarray) -> None:
        """Remove cut rows that are slack at ``x`` (last solution) and have no dual."""
        if not self.active:
            return
        act = np.asarray(self.active)
        slack = self.pool_coef[act] @ x - self.pool_rhs[act]
        duals = np.asarray(self.h.getSolution().row_dual)[self.n_base_rows :]
        if len(duals) != len(act):
            return
        scale = 1e-7 * np.maximum(1.0, np.abs(self.pool_rhs[act]))
        drop = np.flatnonzero((slack > scale) & (np.abs(duals) <= 1e-12))
        if not len(drop):
            return
        rows = (self.n_base_rows + drop).astype(np.int32)
        self.h.deleteRows(len(rows), rows)
        keep = np.ones(len(act), dtype=bool)
        keep[drop] = False
        self.active = [int(i) for i in act[keep]]

    def _violated(self, x: np.ndarray) -> list[int]:
        inactive = np.ones(self.n_cuts, dtype=bool)
        inactive[self.active] = False
        idx = np.flatnonzero(inactive)
        if not len(idx):
            return []
        viol = self.pool_rhs[idx] - self.pool_coef[idx] @ x
        tol = 1e-7 * np.maximum(1.0, np.abs(self.pool_rhs[idx]))
        bad = idx[viol > tol]
        order = np.argsort(-(viol[viol > tol]))
        return [int(i) for i in bad[order][: self.READD]]

    def solve(
        self, integer: bool, mip_gap: float, time_limit: float | None
    ) -> tuple[np.ndarray, float]:
        """Solve (re-adding violated pool cuts); return (master point, lower bound)."""
        h = self.h
        kinds = highspy.HighsVarType.kInteger if integer else highspy.HighsVarType.kContinuous
        if len(self.integer):
            h.changeColsIntegrality(
                len(self.integer),
                self.integer.astype(np.int32),
                np.array([kinds] * len(self.integer)),
            )
        h.setOptionValue("mip_rel_gap", mip_gap)
        while True:
            if time_limit is not None:
                h.setOptionValue("time_limit", max(time_limit, 1.0))
            x, bound = self._run(integer)
            missing = self._violated(x)
            if not missing:
                return x, bound
            self._add_rows(missing)

    def _run(self, integer: bool) -> tuple[np.ndarray, float]:
        h = self.h
        h.run()
        status = h.getModelStatus()
        limit = highspy.HighsModelStatus.kTimeLimit
        if integer and status not in (OPTIMAL, limit) and h.getInfo().primal_solution_status >= 1:
            # HiGHS flags a MIP whose final point violates a dense cut row by more
            # than its tolerance as "Solve error". The point is still a usable
            # proposal; its dual bound is not trusted (-inf keeps the previous one).
            self.last_x = np.asarray(h.getSolution().col_value)
            return self.last_x, -INF
        for retry in ("fresh", "ipm"):
            if status in (OPTIMAL, highspy.HighsModelStatus.kTimeLimit):
                break
            # Numerical trouble after many cuts: solve the same model in a fresh
            # HiGHS instance (no stale factorisation), then by interior point.
            h = self._fresh(retry == "ipm" and not integer)
            h.run()
            status = h.getModelStatus()
        info = h.getInfo()
        if status != OPTIMAL and info.primal_solution_status != 2:
            msg = f"Benders master has no solution ({h.modelStatusToString(status)})"
            raise BendersError(msg)
        x = np.asarray(h.getSolution().col_value)
        self.last_x = x
        bound = (
            info.mip_dual_bound if integer and len(self.integer) else info.objective_function_value
        )
        if h.getOptionValue("solver")[1] != "choose":
            h.setOptionValue("solver", "choose")
        return x, float(bound)

    def _fresh(self, ipm: bool) -> highspy.Highs:
        """Replace the master's HiGHS instance by a new one holding the same model."""
        old = self.h
        new = _new_highs()
        for name in ("small_matrix_value", "mip_rel_gap", "time_limit"):
            new.setOptionValue(name, old.getOptionValue(name)[1])
        if ipm:
            new.setOptionValue("solver", "ipm")
        new.passModel(old.getModel())
        self.h = new
        return new

    def fix_integers(self, values: np.ndarray | None) -> None:
        """Fix the integer columns at ``values`` (None: restore their bounds)."""
        idx = self.integer.astype(np.int32)
        if values is None:
            lo, up = self.int_lo, self.int_up
        else:
            lo = up = np.asarray(values, dtype=float)
        self.h.changeColsBounds(len(idx), idx, lo, up)

    def warm_start(self, x: np.ndarray) -> None:
        """Offer the master point ``x`` (epigraph values recomputed) as a MIP start."""
        point = x.copy()
        point[self.dec.theta0 :] = self.theta_at(x)
        sol = highspy.HighsSolution()
        sol.col_value = point
        self.h.setSolution(sol)

    def theta_at(self, x: np.ndarray) -> np.ndarray:
        """Smallest epigraph values satisfying every pool cut at ``x``."""
        dec = self.dec
        theta = np.array([blk.lower_bound for blk in dec.blocks])
        if self.n_cuts:
            xs = x.copy()
            xs[dec.theta0 :] = 0.0
            need = self.pool_rhs - self.pool_coef @ xs
            opt = self.pool_opt
            np.maximum.at(theta, self.pool_block[opt], need[opt])
        return theta


class _Run:
    """State of one Benders solve: bounds, best plan, log."""

    def __init__(
        self,
        dec: _Decomposition,
        master: _Master,
        start: float,
        time_limit_s: float | None,
        log: Callable[[str], None] | None,
    ) -> None:
        self.dec, self.master, self.start = dec, master, start
        self.time_limit_s, self.log = time_limit_s, log
        self.pool: ThreadPoolExecutor | None = None
        self.best = INF
        self.bound = -INF
        self.best_x: np.ndarray | None = None
        self.best_blocks: list[np.ndarray] | None = None
        self.iterations = 0
        self.history: list[dict] = []

    def remaining(self) -> float | None:
        if self.time_limit_s is None:
            return None
        return self.time_limit_s - (time.perf_counter() - self.start)

    def out_of_time(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def converged(self, gap: float) -> bool:
        return math.isfinite(self.best) and self.best - self.bound <= gap * abs(self.best)

    def evaluate(self, x: np.ndarray, integer_point: bool) -> tuple[float, float, int]:
        """Solve all blocks at ``x``, add their cuts, track the best plan.

        Returns the plan cost (``inf`` if a block is infeasible), the relaxed cost
        (penalised violations included) and the number of infeasible blocks.
        """
        dec = self.dec
        results = list(self.pool.map(lambda b: _evaluate(dec, b, x), range(dec.n_blocks)))
        infeasible = sum(z is None for z, _, _, _ in results)
        fixed_cost = float(self.master.cost[: dec.n_first] @ x[: dec.n_first])
        relaxed = fixed_cost + sum(r for _, _, _, r in results)
        value = INF if infeasible else fixed_cost + sum(z for z, _, _, _ in results)
        if integer_point and value < self.best:
            self.best = value
            self.best_x = x.copy()
            self.best_blocks = [sol for _, sol, _, _ in results]
        self.master.add_cuts([cut for _, _, cut, _ in results])
        return value, relaxed, infeasible

    def log_line(
        self, phase: str, master_bound: float, value: float | None, infeasible: int | None
    ) -> None:
        entry = {
            "iteration": self.iterations,
            "phase": phase,
            "master_bound": master_bound,
            "value": value,
            "infeasible_blocks": infeasible,
            "bound": self.bound,
            "best": self.best,
            "cuts": self.master.n_cuts,
            "seconds": time.perf_counter() - self.start,
        }
        self.history.append(entry)
        if self.log is not None:
            gap = (
                f"{(self.best - self.bound) / abs(self.best):.2e}"
                if math.isfinite(self.best)
                else "-"
            )
            point = "" if value is None else f" point {value:.8e} infeasible {infeasible}"
            self.log(
                f"benders {self.iterations:4d} {phase:5s} master {master_bound:.8e}{point} "
                f"bound {self.bound:.8e} best {self.best:.8e} gap {gap} "
                f"cuts {self.master.n_cuts} {entry['seconds']:.1f}s"
            )

    def lp_loop(
        self,
        in_out: float,
        gap: float,
        max_iterations: int,
        *,
        x_start: np.ndarray | None = None,
        integer_fixed: bool = False,
    ) -> None:
        """Cutting-plane loop on the relaxed master (integer columns fixed or relaxed).

        Separation points are ``lam * x_master + (1 - lam) * core`` (in-out
        stabilisation); ``lam`` becomes 1 after 5 iterations without bound progress.
        Stops when the best feasible point is within ``gap`` of the master bound,
        after :data:`STALL_STOP` iterations without bound progress, or when the
        master LP has no solution (numerical failure, or a fixed topology proven
        infeasible by its feasibility cuts); every cut found so far stays valid.
        """
        master = self.master
        core = None if x_start is None else x_start.copy()
        lp_best, lp_bound, stall = INF, -INF, 0
        phase = "fixed" if integer_fixed else "lp"
        while self.iterations < max_iterations and not self.out_of_time():
            try:
                x_out, master_bound = master.solve(False, gap, self.remaining())
            except BendersError as err:
                if self.log is not None:
                    self.log(f"benders {phase} loop ends: {err}")
                break
            self.iterations += 1
            if len(master.active) > max(400, 2 * self.dec.n_master):
                master.prune(x_out)
            if not integer_fixed:
                self.bound = max(self.bound, master_bound)
            stall = 0 if master_bound > lp_bound + 1e-9 * abs(master_bound) else stall + 1
            lp_bound = max(lp_bound, master_bound)
            if integer_fixed and lp_bound >= self.best - 1e-9 * abs(self.best):
                self.log_line(phase, master_bound, None, None)
                return  # this topology cannot beat the best plan
            if core is None:
                core = x_out.copy()
                core[master.integer] = self.dec.col_up[self.dec.master_cols][master.integer]
            lam = 1.0 if stall >= 5 else in_out
            x = lam * x_out + (1.0 - lam) * core
            core = 0.5 * (core + x_out)
            value, relaxed, infeasible = self.evaluate(x, integer_fixed or not len(master.integer))
            lp_best = min(lp_best, relaxed if self.dec.penalised else value)
            self.log_line(phase, master_bound, value, infeasible)
            closed = math.isfinite(lp_best) and lp_best - lp_bound <= gap * abs(lp_best)
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
    max_iterations: int = 500,
    in_out: float = 0.2,
    lp_gap: float = 1e-5,
    log: Callable[[str], None] | None = None,
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
    max_iterations : int
        Limit on master solves.
    in_out : float
        Weight of the master point in the stabilised separation point of the LP
        loops (``lam``; 1 = plain Kelley cutting planes).
    lp_gap : float
        Relative gap at which the LP phase ends, p.u.
    log : callable, optional
        Receives one progress line per iteration.

    Returns
    -------
    BendersResult
        Best plan, proven bound and gap.

    """
    start = time.perf_counter()
    workers = max(1, int(threads or 1))
    dec = _Decomposition(lp, first_stage, linking_rows)
    master = _Master(dec)
    run = _Run(dec, master, start, time_limit_s, log)
    pool = ThreadPoolExecutor(max_workers=workers)
    run.pool = pool
    status = "iteration_limit"
    try:
        # 1. LP relaxation of the master, stabilised (in-out), to a tight cut set.
        dec.set_penalised(True)
        run.lp_loop(in_out, lp_gap, max_iterations)
        dec.set_penalised(False)
        if len(master.active):
            master.prune(master.last_x)
        if not len(master.integer):
            status = "optimal" if run.best - run.bound <= mip_gap * abs(run.best) else status
        # 2. Integer master; each new topology is completed by an LP loop with the
        #    integer columns fixed, which yields its best continuous plan (an upper bound).
        while len(master.integer) and run.iterations < max_iterations:
            if run.out_of_time():
                status = "time_limit"
                break
            if run.best_x is not None:
                master.warm_start(run.best_x)
            # The master need not be solved tighter than a tenth of the current gap.
            current = (run.best - run.bound) / abs(run.best) if math.isfinite(run.best) else 1e-2
            master_gap = max(mip_gap / 4.0, min(current / 10.0, 1e-3))
            left = run.remaining()
            cap = MASTER_MIP_SECONDS if left is None else min(left, MASTER_MIP_SECONDS)
            try:
                x_int, master_bound = master.solve(True, master_gap, cap)
            except BendersError as err:
                # Keep what was found: the best plan and the bound proven so far.
                status = "master_error"
                if log is not None:
                    log(f"benders stops: {err}")
                break
            run.bound = max(run.bound, master_bound)
            run.iterations += 1
            run.log_line("mip", master_bound, None, None)
            if run.converged(mip_gap):
                status = "optimal"
                break
            fixed = np.round(x_int[master.integer])
            master.fix_integers(fixed)
            run.lp_loop(in_out, mip_gap / 4.0, max_iterations, x_start=x_int, integer_fixed=True)
            master.fix_integers(None)
            if run.converged(mip_gap):
                status = "optimal"
                break
    finally:
        pool.shutdown(wait=True)
    best, bound = run.best, run.bound
    best_x_master, best_blocks = run.best_x, run.best_blocks
    history = run.history

    x_full = None
    if best_x_master is not None and best_blocks is not None:
        x_full = np.zeros(len(dec.cost))
        x_full[dec.master_cols] = best_x_master[: dec.n_first]
        for blk, sol in zip(dec.blocks, best_blocks, strict=True):
            x_full[blk.cols] = sol
    gap = (best - bound) / abs(best) if math.isfinite(best) and abs(best) > 0 else INF
    return BendersResult(status, x_full, best, bound, gap, run.iterations, dec.n_blocks, history)
