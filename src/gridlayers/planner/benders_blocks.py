"""Operating blocks of a Benders decomposition: the split of a compiled MILP and its cuts.

:class:`_Decomposition` splits a compiled planner model (a ``highspy.HighsLp``)
into *master* columns (first-stage: builds, corridor upgrades, cable choices) and
independent operating *blocks* (connected components of the remaining columns;
one per epoch and representative day for the ISO-NE model). *Linking rows* that
sum over blocks (the RPS) are split exactly with one free allocation column per
block they touch::

    lo <= sum_b a_b y_b + B x <= up
    <=>  a_b y_b >= s_b (lo only), <= s_b (up only) or == s_b (both), for each b,
         lo <= sum_b s_b + B x <= up (in the master).

Block ``b`` is an LP in its operating columns with the master columns fixed; its
optimal value ``z_b(x)`` is convex in ``x``, so with the row duals ``pi`` of the
solve at ``xbar`` (:func:`_evaluate`)::

    theta_b >= z_b(xbar) - (C_b' pi)' (x - xbar)          (optimality cut)

where ``C_b`` is the block's coupling matrix. An infeasible block gives a
feasibility cut from its phase-1 LP (minimum total violation ``w`` of the
coupled rows): ``w(xbar) - (C_b' pi_1)' (x - xbar) <= 0``. A block that
delivers less than its allocation of a split linking row pays
:data:`PENALTY_FACTOR` times the largest operating cost per unit instead of
being infeasible (:meth:`_Decomposition.set_penalised`): a relaxation, so its
cuts stay valid, and a plan is checked on the linking rows summed over blocks
(:meth:`_Decomposition.linking_ok`).

Block models are built once and updated in place (row bounds only), so each
re-solve warm-starts from the previous basis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

INF = highspy.kHighsInf
#: Penalty per unit of coupled-row violation in the penalised mode, as a multiple
#: of the largest operating cost coefficient.
PENALTY_FACTOR = 10.0
OPTIMAL = highspy.HighsModelStatus.kOptimal
INFEASIBLE = (
    highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,
)


class BendersError(RuntimeError):
    """The decomposition cannot proceed (a block is infeasible for every plan, or unbounded)."""


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
    # Split linking rows: local row i of ``alloc_a`` is part of linking row alloc_link[i].
    alloc_a: sp.csr_matrix | None = None
    alloc_link: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    # Per entry of ``coupled``: the row is an allocation row (violations are repairable).
    coupled_alloc: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


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
        #: Linking rows in the model's units: first-stage part and bounds.
        self.link_first = sp.hstack(
            [a_m[link_rows], sp.csr_matrix((len(link_rows), n_alloc + n_blocks))], format="csr"
        )
        self.link_lo, self.link_up = row_lo[link_rows], row_up[link_rows]
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
            a_alloc, link_idx, n_own = None, [], a_b.shape[0]
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
            block.alloc_a, block.alloc_link = a_alloc, np.asarray(link_idx, dtype=int)
            block.coupled_alloc = coupled >= n_own
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
        self.set_penalised(True)

    def set_penalised(self, on: bool) -> None:
        """Switch the allocation rows between penalised violations (default) and strict.

        Penalised, a block may deliver less than its allocation ``s_b`` of a split
        linking row at :attr:`penalty` per unit; its value is a lower bound of the
        strict value (a relaxation), so its cuts are valid for the MILP, and with
        the penalty above the rows' duals (exact penalty) the optimum is unchanged.
        Plans are recognised by :meth:`linking_ok` on the sum over blocks. Only the
        allocation rows are penalised: a penalty on capacity rows would put slopes
        of penalty x capacity x hours (~1e8) into the cuts of binary columns; those
        rows stay strict and give feasibility cuts.
        """
        for block in self.blocks:
            self._set_slacks(block, np.where(block.coupled_alloc & on, self.penalty, -1.0))
        self.penalised = on

    def _set_slacks(self, block: _Block, cost: np.ndarray) -> None:
        """Give the violation columns of the coupled rows a cost (< 0: fixed at 0)."""
        n, k = len(block.cols), len(block.coupled)
        slack = np.arange(n, n + 2 * k, dtype=np.int32)
        both = np.concatenate([cost, cost])
        block.highs.changeColsCost(2 * k, slack, np.maximum(both, 0.0))
        block.highs.changeColsBounds(2 * k, slack, np.zeros(2 * k), np.where(both >= 0.0, INF, 0.0))

    def linking_ok(self, x_master: np.ndarray, results: list[_BlockResult]) -> bool:
        """Whether the block solutions satisfy the linking rows summed over blocks.

        A block may fall short of its allocation ``s_b`` while another exceeds its
        own: the plan is feasible if ``lo <= B x + sum_b a_b y_b <= up`` holds.
        """
        total = self.link_first @ x_master
        for block, res in zip(self.blocks, results, strict=True):
            np.add.at(total, block.alloc_link, res.alloc)
        scale = np.maximum(
            1.0, np.abs(np.where(np.isfinite(self.link_lo), self.link_lo, self.link_up))
        )
        tol = VIOLATION_TOL * scale
        return bool(np.all(total >= self.link_lo - tol) and np.all(total <= self.link_up + tol))

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
    """Cut on the master columns.

    ``theta_b + coef . x >= rhs`` (optimality) or ``coef . x >= rhs`` (feasibility).
    """

    block: int
    coef: np.ndarray
    rhs: float
    optimality: bool = True


@dataclass
class _BlockResult:
    """Block ``b`` solved at a master point.

    ``relaxed`` is the block LP's optimum, penalised shortfalls included (cost
    units; ``inf`` if the block is infeasible, its cut is then a feasibility
    cut). ``operating`` is the operating cost alone and ``solution`` the
    operating columns. ``rows_ok``: the block is feasible. ``alloc`` is the
    block's part ``a_b y_b`` of each of its split linking rows, to check those
    rows on the sum over blocks.
    """

    relaxed: float
    operating: float
    solution: np.ndarray | None
    cut: _Cut
    rows_ok: bool
    alloc: np.ndarray


#: Largest violation of a linking row (summed over blocks) still counted as
#: satisfied, in the row's units relative to max(1, |bound|).
VIOLATION_TOL = 1e-6


def _run_block(h: highspy.Highs) -> highspy.HighsModelStatus:
    """Re-solve a block LP from its last basis; from scratch if that fails."""
    h.run()
    status = h.getModelStatus()
    if status != OPTIMAL and status not in INFEASIBLE:
        h.clearSolver()  # a warm start can fail numerically; a cold one rarely does
        h.run()
        status = h.getModelStatus()
    return status


def _evaluate(dec: _Decomposition, b: int, x_master: np.ndarray) -> _BlockResult:
    """Solve block ``b`` at ``x_master`` and return its value, solution and cut.

    Feasible: the optimality cut ``theta_b >= z + g (x - xbar)`` from the row
    duals. Infeasible (a strict coupled row cannot hold): phase 1 minimises the
    total violation ``w`` of those rows; ``w(x) >= w + g (x - xbar)`` and
    ``w(x) <= 0`` for a feasible plan give the feasibility cut
    ``-g x >= w - g xbar``.
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
    no_alloc = np.zeros(len(block.alloc_link))
    if status == OPTIMAL:
        z = float(h.getInfo().objective_function_value)
        sol = h.getSolution()
        g = -(block.coupling.T @ np.asarray(sol.row_dual))
        y = np.asarray(sol.col_value)[:n]
        alloc = block.alloc_a @ y if block.alloc_a is not None else no_alloc
        operating = float(dec.cost[block.cols] @ y)
        cut = _Cut(b, -g, z - float(g @ x_master))
        return _BlockResult(z, operating, y, cut, True, alloc)
    if status not in INFEASIBLE:
        msg = f"block {b} LP ended with status {h.modelStatusToString(status)}"
        raise BendersError(msg)
    # Phase 1: violations of the strict rows cost 1; penalised ones stay free.
    cols = np.arange(n, dtype=np.int32)
    h.changeColsCost(n, cols, np.zeros(n))
    dec._set_slacks(block, np.where(block.coupled_alloc & dec.penalised, 0.0, 1.0))
    try:
        if _run_block(h) != OPTIMAL:
            status_text = h.modelStatusToString(h.getModelStatus())
            msg = f"block {b} is infeasible for every plan (phase 1: {status_text})"
            raise BendersError(msg)
        w = float(h.getInfo().objective_function_value)
        g = -(block.coupling.T @ np.asarray(h.getSolution().row_dual))
    finally:
        h.changeColsCost(n, cols, dec.cost[block.cols])
        dec._set_slacks(block, np.where(block.coupled_alloc & dec.penalised, dec.penalty, -1.0))
    cut = _Cut(b, -g, w - float(g @ x_master), optimality=False)
    return _BlockResult(INF, INF, None, cut, False, no_alloc)
