"""The Benders master LP and its cut pool."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import highspy
import numpy as np
import scipy.sparse as sp

from gridlayers.planner.benders_blocks import (
    INF,
    INFEASIBLE,
    OPTIMAL,
    BendersError,
    _Cut,
    _Decomposition,
    _new_highs,
    _pass_lp,
)

#: Smallest coefficient written into a master cut row, master units (cost units
#: divided by :attr:`_Master.unit`) per column unit; the master's HiGHS
#: ``small_matrix_value`` is set 10 times lower, so none is dropped silently.
TINY = 1e-9
#: Time cap of one master LP solve, s. Master LPs take well under a second; a
#: warm-started dual simplex that stalls (seen once after ~3,700 dense cuts) is
#: stopped here and the solve repeated from scratch, then by interior point. HiGHS
#: compares ``time_limit`` with the instance's *cumulative* run time, so each solve
#: sets it to ``getRunTime() + MASTER_LP_SECONDS``; a fixed 30 s made every master
#: solve fail once one instance had run 30 s in total (about 460 solves on ISO-NE).
MASTER_LP_SECONDS = 30.0
#: HiGHS options of the master LP (whose objective and cut rows are in master
#: units, see :meth:`_Master._load`). Presolve is off: the master changes by a few
#: rows or bounds between solves. Scaling is HiGHS's default equilibration
#: (strategy 2): with "max value" scaling (strategy 4) the rescaled ISO-NE master
#: LPs came back "Optimal" with objectives up to 8e-4 (relative) too high.
MASTER_OPTIONS: dict[str, float | int | str] = {
    "small_matrix_value": TINY / 10.0,
    "presolve": "off",
    "simplex_scale_strategy": 2,
}
#: Largest |coefficient| of a master column in an accepted cut (cost units per column
#: unit). Cuts of the ISO-NE runs reach ~1e6 (one day) to ~1e8 (slopes on cable
#: binaries of the full model); HiGHS refuses rows with entries >= 1e15
#: (``large_matrix_value``).
MAX_CUT_COEF = 1e11
#: Largest |right-hand side| of an accepted cut (cost units; ISO-NE: <= ~1e9). HiGHS
#: reads bounds >= 1e20 as infinite, so a larger one could make a row ``>= +inf``.
MAX_CUT_RHS = 1e13
#: Rejected cuts described in full in :attr:`_Master.rejections` (all are counted).
REJECTIONS_KEPT = 20


class MasterOutOfTime(Exception):  # noqa: N818 - a signal, not a failure
    """The solve's own time limit struck during a master LP solve (not a failure)."""


def cut_defect(coef: np.ndarray, rhs: float, names: list[str] | None = None) -> str:
    """Describe what makes a cut row ``coef . x >= rhs`` unfit for the master, or "".

    A cut is unfit when a coefficient or its right-hand side is not finite (NaN or
    inf from a failed block solve) or exceeds :data:`MAX_CUT_COEF` /
    :data:`MAX_CUT_RHS`: such rows make every master solve fail or drown the other
    rows in the master's scaling. Dropping a cut keeps every bound valid (any subset
    of valid cuts is a relaxation).

    Parameters
    ----------
    coef : numpy.ndarray
        Coefficients on the master columns (epigraph column included).
    rhs : float
        Right-hand side (cost units for optimality cuts).
    names : list of str, optional
        Master column names for the message (default ``x[j]``).

    Returns
    -------
    str
        The offending values (at most three columns named), empty if the cut is fit.

    """

    def col(j: int) -> str:
        return names[j] if names is not None else f"x[{j}]"

    problems = []
    bad = np.flatnonzero(~np.isfinite(coef) | (np.abs(coef) > MAX_CUT_COEF))
    if len(bad):
        shown = ", ".join(f"{col(int(j))} = {coef[j]:.3g}" for j in bad[:3])
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        problems.append(f"coefficient {shown}{more}")
    if not np.isfinite(rhs) or abs(rhs) > MAX_CUT_RHS:
        problems.append(f"rhs = {rhs:.3g}")
    return "; ".join(problems)


class _Master:
    """The master LP with a pool of cuts, of which the useful ones are rows.

    Columns: first-stage columns, allocation columns of the split linking rows and
    one epigraph column ``theta_b`` per block (objective: investment cost plus
    ``sum_b theta_b``). Integer columns are relaxed; branch and bound
    (``benders_tree``) changes their bounds.

    Every cut found is kept in the pool. Cut rows whose slack is basic (no dual)
    are removed from the HiGHS model (:meth:`prune`) and come back when the master point violates
    them (:meth:`solve`), so the master stays small while keeping every cut's
    information; any subset of the cuts gives a valid lower bound.
    """

    #: Largest number of pool cuts re-added after one master LP solve (one pass).
    READD = 400

    def __init__(
        self, dec: _Decomposition, names: list[str] | None = None, gap: float = 1e-4
    ) -> None:
        self.dec = dec
        #: Relative gap the solve must prove (sets the master unit's precision), p.u.
        self.gap = gap
        n = dec.n_master
        #: Master column names for messages (first-stage, allocations, epigraphs).
        self.names = names
        #: Cuts refused by :func:`cut_defect`: count and the first few described.
        self.rejected = 0
        self.rejections: list[str] = []
        self._generated = 0  # cuts offered to add_cuts, fit or not (numbers them)
        #: Seconds left of the whole solve (None = no limit); set by the Benders run.
        self.time_left: Callable[[], float | None] = lambda: None
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
        self._lo, self._up = lo, up
        self.h = _new_highs()
        self._load(1.0)
        self.n_base_rows = len(dec.master_lo)
        self.nonneg = lo >= 0.0
        self.integer = np.flatnonzero(dec.integrality != 0)
        self.int_lo, self.int_up = lo[self.integer].copy(), up[self.integer].copy()
        # Cut k: coef[k] . x >= rhs[k] (theta included); rows grow by doubling.
        self._coef = np.zeros((256, n))
        self._rhs = np.zeros(256)
        self._optimality = np.zeros(256, dtype=bool)  # False: feasibility cut
        self._n_cuts = 0
        self.active: list[int] = []  # pool index of each cut row, in row order
        self._unit_fixed = False  # master_unit is chosen at the first optimality cuts
        #: Master LP solves, and the failed attempts among them by "attempt: status"
        #: (a failed warm attempt that the cold one rescues counts here too).
        self.runs = 0
        self.failed_attempts: Counter[str] = Counter()

    def _load(self, unit: float) -> None:
        """(Re)load the master into HiGHS in master units of ``unit`` cost units.

        The objective and every optimality cut row are divided by ``unit`` and each
        epigraph column is counted in ``unit`` (``theta_b = unit * theta'_b``), so the
        cut rows keep their ``1`` on ``theta'_b``; first-stage and allocation columns,
        the base rows and the feasibility cut rows (in units of row violation, not
        cost; no epigraph column) are unchanged. The basis, and so pruning, is the
        same in both units (pruning's fallback without a basis only asks whether a
        dual is zero, which the units do not change either).

        Why: the cut rows' right-hand sides reach ~2e8 cost units on ISO-NE, while
        HiGHS checks the *unscaled* solution of its internally scaled LP against an
        absolute 1e-7. Rows that large missed it by ~5e-4 after an optimal scaled
        solve; HiGHS answered "Unknown" and then "Not Set" to every retry, and the
        branch-and-bound node was abandoned. In master units the same rows (at most
        ~25) meet it.

        Cut rows already in the model are written again.
        """
        self.unit = float(unit)
        #: Master column j = colscale[j] * HiGHS column j.
        self.colscale = np.ones(self.dec.n_master)
        self.colscale[self.dec.theta0 :] = self.unit
        lo, up = self._lo / self.colscale, self._up / self.colscale
        for name, value in MASTER_OPTIONS.items():
            self.h.setOptionValue(name, value)
        a = sp.csr_matrix(self.dec.master_a @ sp.diags(self.colscale))
        _pass_lp(
            self.h,
            self.cost * self.colscale / self.unit,
            lo,
            up,
            a,
            self.dec.master_lo,
            self.dec.master_up,
        )
        active, self.active = getattr(self, "active", []), []
        if active:
            self._add_rows(active)
        if hasattr(self, "_int_bounds"):  # a node's or a dive's bounds stay in force
            self.set_integer_bounds(*self._int_bounds)

    @staticmethod
    def master_unit(rhs: np.ndarray, n_blocks: int = 1, gap: float = 1e-4) -> float:
        """Cost units per master unit, from the right-hand sides of the first optimality cuts.

        Two powers of ten, the smaller one wins (at least 1):

        - *size*: the smallest at or above the largest ``|rhs|``, so the first cuts
          have right-hand sides of at most 1 master unit (ISO-NE: first cuts 1.1e6
          (SO) and 2.3e6 (MO), so 1e7; the largest cuts of a run, ~2e8, then stay
          near 20 master units);
        - *precision*: HiGHS's absolute tolerances (1e-7 master units, i.e.
          ``1e-7 * unit`` cost units) must stay below 1 % of the gap to be proven,
          ``gap * n_blocks * mean(|rhs|)`` (the first cuts' estimate of the
          objective): the largest with ``1e-7 * unit <= 0.01 * gap * estimate``
          (ISO-NE, gap 1e-5 = min(mip_gap 1e-4, lp_gap 1e-5): 1e7; a two-hour
          toy solved to 1e-9: 100).

        Parameters
        ----------
        rhs : numpy.ndarray
            Right-hand sides of optimality cuts, cost units.
        n_blocks : int
            Number of blocks (epigraph columns).
        gap : float
            Relative gap the solve must prove, p.u.

        Returns
        -------
        float
            The master unit, cost units.

        """
        rhs = np.abs(np.asarray(rhs, dtype=float))
        if not len(rhs) or not np.isfinite(rhs).all() or rhs.max() <= 1.0:
            return 1.0
        size = np.ceil(np.log10(rhs.max()))
        precise = 1e5 * gap * n_blocks * float(rhs.mean())
        if precise < 1.0:
            return 1.0
        return float(10.0 ** min(size, np.floor(np.log10(precise))))

    @property
    def row_limit(self) -> int:
        """Cut rows above which basic ones are pruned: ``max(400, 2 * n_master)``."""
        return max(400, 2 * self.dec.n_master)

    @property
    def n_cuts(self) -> int:
        return self._n_cuts

    @property
    def pool_coef(self) -> np.ndarray:
        return self._coef[: self._n_cuts]

    @property
    def pool_rhs(self) -> np.ndarray:
        return self._rhs[: self._n_cuts]

    def add_cuts(self, cuts: list[_Cut]) -> list[str]:
        """Add the fit cuts to the pool and as rows; return a description of each unfit one.

        Every cut is checked by :func:`cut_defect` first; an unfit one is counted in
        :attr:`rejected` (and described in :attr:`rejections`, the first
        :data:`REJECTIONS_KEPT`) and never reaches the master.
        """
        refused = []
        fit = []
        for cut in cuts:
            self._generated += 1
            defect = cut_defect(cut.coef, cut.rhs, self.names)
            if not defect:
                fit.append(cut)
                continue
            kind = "optimality" if cut.optimality else "feasibility"
            text = f"cut {self._generated} ({kind}, block {cut.block}): {defect}"
            self.rejected += 1
            if len(self.rejections) < REJECTIONS_KEPT:
                self.rejections.append(text)
            refused.append(text)
        cuts = fit
        if not cuts:
            return refused
        coef = np.vstack([c.coef for c in cuts])
        for i, cut in enumerate(cuts):
            if cut.optimality:
                coef[i, self.dec.theta0 + cut.block] = 1.0
        first = self.n_cuts
        need = first + len(cuts)
        if need > len(self._rhs):
            size = max(need, 2 * len(self._rhs))
            self._coef = np.resize(self._coef, (size, self._coef.shape[1]))
            self._rhs = np.resize(self._rhs, size)
            self._optimality = np.resize(self._optimality, size)
        self._coef[first:need] = coef
        self._rhs[first:need] = [c.rhs for c in cuts]
        self._optimality[first:need] = [c.optimality for c in cuts]
        self._n_cuts = need
        if not self._unit_fixed:
            opt = [c.rhs for c in cuts if c.optimality]
            if opt:
                # The first optimality cuts set the master unit; the model is
                # reloaded in it, with the feasibility cut rows added so far.
                self._unit_fixed = True
                self._load(self.master_unit(np.asarray(opt), self.dec.n_blocks, self.gap))
        self._add_rows(list(range(first, self.n_cuts)))
        return refused

    def _add_rows(self, idx: list[int]) -> None:
        # pool -> HiGHS rows: optimality cuts from cost units to master units (see
        # _load); feasibility cuts are in units of row violation (MW, MWh, ...), not
        # cost, and stay as they are (their theta coefficients are 0)
        row = np.where(self._optimality[idx], 1.0 / self.unit, 1.0)
        dense = self.pool_coef[idx] * row[:, None] * self.colscale[None, :]
        rhs = self.pool_rhs[idx] * row
        # HiGHS drops |a| <= small_matrix_value; on columns >= 0 round tiny
        # coefficients so that the row only gets weaker (a > 0 up, a < 0 to 0).
        tiny = (np.abs(dense) < TINY) & (dense != 0.0) & self.nonneg[None, :]
        dense[tiny & (dense > 0.0)] = TINY
        dense[tiny & (dense < 0.0)] = 0.0
        coef = sp.csr_matrix(dense)
        status = self.h.addRows(
            len(idx),
            rhs,
            np.full(len(idx), INF),
            coef.nnz,
            coef.indptr[:-1].astype(np.int32),
            coef.indices.astype(np.int32),
            coef.data,
        )
        if status == highspy.HighsStatus.kError:
            # Not added: the pool's rows and HiGHS's would no longer match.
            msg = f"HiGHS refused {len(idx)} cut row(s) (pool cuts {idx[0] + 1}..{idx[-1] + 1})"
            raise BendersError(msg)
        self.active.extend(idx)

    def prune(self, x: np.ndarray) -> None:
        """Remove the cut rows whose slack is basic in the current basis.

        A basic row of the last solve has no dual, so the rest of the LP keeps
        ``x`` optimal and its basis stays valid (deleting a nonbasic row would
        invalidate it). This includes basic rows that are tight at ``x``
        (degenerate): pruning only rows slack by more than 1e-7 of their
        right-hand side left the ISO-NE MO master with up to 8,300 rows, most of
        them tight and dual-free (at most 552 rows can be nonbasic there), and
        passes of 17-23 s. Rows added since the last solve are basic too (HiGHS
        extends a valid basis with basic rows), so a prune after a cut round (as
        in the tree) removes that round's cuts as well: they stay in the pool and
        come back at the next solve's first pass, after one extra master LP
        (warm-started from the last basis). Without a valid basis, rows slack at ``x`` with no
        dual are removed.
        """
        if not self.active:
            return
        act = np.asarray(self.active)
        n_base = self.n_base_rows
        basis = self.h.getBasis()
        if basis.valid and len(basis.row_status) == n_base + len(act):
            status = basis.row_status[n_base:]
            drop = np.flatnonzero([s == highspy.HighsBasisStatus.kBasic for s in status])
        else:
            slack = self.pool_coef[act] @ x - self.pool_rhs[act]
            duals = np.asarray(self.h.getSolution().row_dual)[n_base:]
            if len(duals) != len(act):
                return
            scale = 1e-7 * np.maximum(1.0, np.abs(self.pool_rhs[act]))
            drop = np.flatnonzero((slack > scale) & (np.abs(duals) <= 1e-12))
        if not len(drop):
            return
        rows = (n_base + drop).astype(np.int32)
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
        bad, viol = idx[viol > tol], viol[viol > tol]
        if len(bad) <= self.READD:
            return [int(i) for i in bad[np.argsort(-viol)]]
        # Round robin over the blocks (feasibility cuts form one more group): each
        # block's most violated cut first, then each one's second, ... A global
        # order by violation spent whole passes on the blocks with the largest
        # costs and took up to 47 passes per solve on ISO-NE MO.
        theta = self.pool_coef[bad, self.dec.theta0 :]
        group = np.where(self._optimality[bad], theta.argmax(axis=1), self.dec.n_blocks)
        order = np.lexsort((-viol, group))  # by group, most violated first
        start = np.searchsorted(group[order], group[order], side="left")
        rank = np.empty(len(bad), dtype=np.int64)
        rank[order] = np.arange(len(bad)) - start
        pick = np.lexsort((-viol, rank))[: self.READD]
        return [int(i) for i in bad[pick]]

    def solve(self) -> tuple[np.ndarray, float] | None:
        """Solve the master LP within the current column bounds.

        Violated pool cuts are re-added (at most :attr:`READD` per pass, block by
        block, see :meth:`_violated`) until none is left. At the first pass that
        re-adds cuts, if the model holds more than :attr:`row_limit` cut rows, it
        is pruned at the new point before rows are added; later passes only add
        rows, so nothing is pruned twice in a solve and it cannot cycle (a cut
        pruned at the first pass may come back in a later one). Measured on ISO-NE MO (30 min):
        without this, re-adding alone grew the master from ~1,100 to over 10,000
        rows after a jump to a distant node or dive point, passes took 5-25 s and a
        node was abandoned when every attempt hit :data:`MASTER_LP_SECONDS`;
        pruning at every pass instead cycled (up to 70 passes per solve, the same
        cuts pruned and re-added). Returns (master point, LP value in objective
        units) or None when no point satisfies the bounds and cuts.
        """
        first = True
        while True:
            if self._run() in INFEASIBLE:
                return None
            h = self.h
            x = np.asarray(h.getSolution().col_value) * self.colscale
            self.last_x = x
            bound = float(h.getInfo().objective_function_value) * self.unit
            missing = self._violated(x)
            if not missing:
                return x, bound
            if first and len(self.active) > self.row_limit:
                self.prune(x)
            first = False
            self._add_rows(missing)

    def _run(self) -> highspy.HighsModelStatus:
        """Run HiGHS warm; if that fails, from scratch, with HiGHS defaults, by IPM.

        Infeasibility is only accepted from a solve that did not start from a
        previous basis. Each attempt gets :data:`MASTER_LP_SECONDS`, or what is left
        of the whole solve (:attr:`time_left`) if that is less; running out of the
        latter raises :class:`MasterOutOfTime`.
        """
        status = None
        tried = []
        self.runs += 1
        try:
            for attempt in ("warm", "cold", "defaults", "ipm"):
                left = self.time_left()
                if left is not None and left <= 0.0:
                    raise MasterOutOfTime
                cap = MASTER_LP_SECONDS if left is None else min(MASTER_LP_SECONDS, left)
                if attempt == "cold":
                    self.h.clearSolver()
                elif attempt in ("defaults", "ipm"):
                    self._fresh(ipm=attempt == "ipm")
                # HiGHS's time_limit is checked against the instance's run time summed
                # over all its runs (getRunTime), not against this run alone.
                self.h.setOptionValue("time_limit", self.h.getRunTime() + cap)
                self.h.run()
                status = self.h.getModelStatus()
                if status == OPTIMAL or (status in INFEASIBLE and attempt != "warm"):
                    return status
                if status == highspy.HighsModelStatus.kTimeLimit and cap < MASTER_LP_SECONDS:
                    raise MasterOutOfTime
                tried.append(f"{attempt}: {self.h.modelStatusToString(status)}")
                self.failed_attempts[tried[-1]] += 1
            msg = f"Benders master LP has no solution ({', '.join(tried)})"
            raise BendersError(msg)
        finally:
            if attempt != "warm":
                # Back to the master's own options for the next (warm) solve.
                for name, value in {**MASTER_OPTIONS, "solver": "choose"}.items():
                    self.h.setOptionValue(name, value)

    def _fresh(self, ipm: bool) -> None:
        """Replace the master's HiGHS instance by a new one with HiGHS's defaults."""
        old = self.h
        new = _new_highs()
        new.setOptionValue("small_matrix_value", TINY / 10.0)
        if ipm:
            new.setOptionValue("solver", "ipm")
        new.passModel(old.getModel())
        self.h = new

    def set_integer_bounds(self, lo: np.ndarray, up: np.ndarray) -> None:
        """Set the bounds of the integer columns (in :attr:`integer` order)."""
        idx = self.integer.astype(np.int32)
        self._int_bounds = (np.asarray(lo, float).copy(), np.asarray(up, float).copy())
        self.h.changeColsBounds(len(idx), idx, *self._int_bounds)
