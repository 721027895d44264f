"""The Benders master LP is solved in master units and answers in cost units.

Independent truth: the same master LP (base rows plus the same cuts) written in
cost units and solved by a separate HiGHS instance with HiGHS's defaults, and the
cut rows themselves (the master point must satisfy every one of them in cost units).
"""

from __future__ import annotations

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from gridlayers.planner.benders_blocks import _Cut
from gridlayers.planner.benders_master import _Master
from test_planner_cuts import _decomposition


def _cuts(dec, rng: np.random.Generator, n: int, rhs_scale: float) -> list[_Cut]:  # noqa: ANN001
    """Optimality cuts ``theta + coef . x >= rhs`` with slopes on a few investment columns."""
    cuts = []
    for _ in range(n):
        coef = np.zeros(dec.n_master)
        cols = rng.choice(dec.n_first, size=3, replace=False)
        coef[cols] = -rng.uniform(0.0, 3e8, size=3)  # $ saved per MW built
        coef[rng.integers(dec.n_first)] += -rng.uniform(1e-3, 1e-1)  # tiny slopes, as on ISO-NE
        cuts.append(_Cut(0, coef, float(rng.uniform(0.2, 1.0) * rhs_scale)))
    return cuts


def _reference(master: _Master, cuts: list[_Cut]) -> float:
    """Optimum of the master LP in cost units, solved by its own HiGHS (defaults)."""
    dec = master.dec
    rows = np.vstack([c.coef for c in cuts])
    rows[[c.optimality for c in cuts], dec.theta0] = 1.0
    a = sp.vstack([dec.master_a, sp.csr_matrix(rows)]).tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_ = master.cost
    lp.col_lower_, lp.col_upper_ = master._lo, master._up
    lp.row_lower_ = np.concatenate([dec.master_lo, [c.rhs for c in cuts]])
    lp.row_upper_ = np.concatenate([dec.master_up, np.full(len(cuts), highspy.kHighsInf)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_master_point_and_bound_are_in_cost_units(seed: int) -> None:
    dec = _decomposition()
    master = _Master(dec)
    rng = np.random.default_rng(seed)
    cuts = _cuts(dec, rng, 12, rhs_scale=4e8)
    master.add_cuts(cuts)
    x, bound = master.solve()
    assert master.unit == 1e9  # the first cuts reach ~4e8
    reference = _reference(master, cuts)
    assert bound == pytest.approx(reference, rel=1e-9)
    assert master.cost @ x == pytest.approx(bound, rel=1e-9)  # the point has that cost
    theta = x[dec.theta0]
    assert theta > 1e6  # the epigraph is in use, so its unit matters
    for cut in cuts:  # every cut holds at the point, in cost units
        assert theta + cut.coef[: dec.theta0] @ x[: dec.theta0] >= cut.rhs - 1e-6 * cut.rhs


def test_cut_rows_in_highs_are_a_few_master_units_and_later_cuts_are_too() -> None:
    dec = _decomposition()
    master = _Master(dec, gap=1e-3)  # so the rows' size, not the precision, sets the unit
    rng = np.random.default_rng(3)
    feasibility = _Cut(0, np.eye(dec.n_master)[0] * 5e5, 2e6, optimality=False)
    master.add_cuts([feasibility])  # in cost units until an optimality cut arrives
    assert master.unit == 1.0
    fixed = np.ones(len(master.integer))
    master.set_integer_bounds(fixed, fixed)  # as in a tree node
    first = _cuts(dec, rng, 4, rhs_scale=1.1e6)
    master.add_cuts(first)
    assert master.unit == 1e7  # ISO-NE's first cuts reach 1.1e6 (SO) .. 2.3e6 (MO)
    lp = master.h.getLp()  # the node's bounds survived the reload
    assert np.asarray(lp.col_lower_)[master.integer] == pytest.approx(fixed)
    master.set_integer_bounds(master.int_lo, master.int_up)
    later = _cuts(dec, rng, 4, rhs_scale=2.3e8)  # ISO-NE's largest cuts, later in the solve
    master.add_cuts(later)
    lp = master.h.getLp()
    row_lo = np.asarray(lp.row_lower_)[master.n_base_rows :]
    assert len(row_lo) == 9  # the feasibility cut was kept, not lost or doubled ...
    assert row_lo[0] == 2e6  # ... in its own units (violation, not cost)
    assert np.abs(row_lo[1:]).max() <= 23.0
    _, bound = master.solve()
    assert bound == pytest.approx(_reference(master, [feasibility, *first, *later]), rel=1e-9)


@pytest.mark.parametrize(
    ("rhs", "n_blocks", "gap", "unit"),
    [
        ([1.14e6, 6.32e5, 4.58e5, 5e5, 7e5], 20, 1e-5, 1e7),  # ISO-NE SO's first cuts
        ([2.27e6, 1.27e6, 8.93e5], 20, 1e-5, 1e7),  # ISO-NE MO's
        ([1.14e6], 1, 1e-5, 1e6),  # precision: 1e-7 * unit <= 1 % of 1e-5 * 1.14e6
        ([1.9e6], 1, 1e-9, 100.0),  # a toy solved to 1e-9
        ([1e3], 1, 1e-9, 1.0),
        ([0.3, -0.5], 1, 1e-4, 1.0),
        ([], 1, 1e-4, 1.0),
    ],
)
def test_master_unit_is_set_by_row_size_and_precision(
    rhs: list[float], n_blocks: int, gap: float, unit: float
) -> None:
    assert _Master.master_unit(np.asarray(rhs, dtype=float), n_blocks, gap) == unit


@pytest.mark.parametrize(("coef", "rhs"), [(1.0, 0.05), (5e-4, 0.2)])
def test_feasibility_cuts_in_violation_units_hold_at_the_master_point(
    coef: float, rhs: float
) -> None:
    # a feasibility cut  coef * x0 >= rhs  (MW of violation, not $) beside optimality
    # cuts of ~1e6 $: the master unit (1e6 here) must not weaken it to HiGHS's tolerance
    dec = _decomposition()
    master = _Master(dec)
    master.add_cuts(_cuts(dec, np.random.default_rng(4), 4, rhs_scale=1e6))
    assert master.unit >= 1e6
    row = np.zeros(dec.n_master)
    row[0] = coef
    master.add_cuts([_Cut(0, row, rhs, optimality=False)])
    x, _ = master.solve()
    assert coef * x[0] >= rhs * (1.0 - 1e-9)


def test_epigraph_lower_bound_is_converted_to_master_units() -> None:
    # a block lower bound above every cut: theta sits on it, so a bound left in cost
    # units (1e9 times too high in master units) would show in the point and bound
    dec = _decomposition()
    dec.blocks[0].lower_bound = 3e9
    master = _Master(dec)
    cuts = _cuts(dec, np.random.default_rng(5), 6, rhs_scale=4e8)
    master.add_cuts(cuts)
    x, bound = master.solve()
    assert x[dec.theta0] == pytest.approx(3e9, rel=1e-9)
    assert bound == pytest.approx(_reference(master, cuts), rel=1e-9)


def test_fallback_instances_keep_master_units() -> None:
    """The fresh instances of the "defaults" and IPM retries solve the same master-unit LP.

    Warm and cold attempts are stopped by a zero simplex iteration limit on the
    master's own instance; the retry in a fresh instance (HiGHS's defaults) has none.
    """
    dec = _decomposition()
    master = _Master(dec)
    cuts = _cuts(dec, np.random.default_rng(6), 12, rhs_scale=4e8)
    master.add_cuts(cuts)
    assert master.unit == 1e9
    first = master.h
    first.setOptionValue("simplex_iteration_limit", 0)
    x, bound = master.solve()
    assert master.h is not first  # solved in a fresh instance
    assert set(master.failed_attempts) == {
        "warm: Iteration limit reached",
        "cold: Iteration limit reached",
    }
    assert bound == pytest.approx(_reference(master, cuts), rel=1e-9)
    assert master.cost @ x == pytest.approx(bound, rel=1e-9)
    # and later cuts reach the fresh instance in master units too
    later = _cuts(dec, np.random.default_rng(7), 6, rhs_scale=2e8)
    master.add_cuts(later)
    row_lo = np.asarray(master.h.getLp().row_lower_)[master.n_base_rows :]
    assert np.abs(row_lo).max() <= 1.0
    _, bound = master.solve()
    assert bound == pytest.approx(_reference(master, [*cuts, *later]), rel=1e-9)
