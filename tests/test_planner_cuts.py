"""Benders cuts are checked before they reach the master; a solve at its limit keeps its plan.

Independent truth: the hand-sized two-bus case solved without any tampering (its
optimum), and the cut values planted by the tests themselves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gridlayers.planner.benders as benders
from conftest import simple_config, two_bus
from gridlayers.planner import build_model, solve_model
from gridlayers.planner.benders_blocks import BendersError, _Cut, _Decomposition
from gridlayers.planner.benders_master import (
    MAX_CUT_COEF,
    MAX_CUT_RHS,
    MasterOutOfTime,
    _Master,
    cut_defect,
)
from gridlayers.planner.solve import _compile


def two_bus_partial_upgrade():  # noqa: ANN201
    """Bus B: 80 MW load; 50 MW corridor of 10 miles, upgrade +50 MW.

    The LP relaxation builds 0.6 of the upgrade, so the tree has to branch.
    """
    return two_bus(10.0, load_mw=80.0)


def benders_solve(**kwargs: object):  # noqa: ANN201
    config = simple_config(solve_method="benders")
    m = build_model(two_bus_partial_upgrade(), config)
    return solve_model(m, mip_gap=config.mip_gap, method="benders", **kwargs)


@pytest.fixture(scope="module")
def clean():  # noqa: ANN201
    return benders_solve()


def _decomposition():  # noqa: ANN202
    m = build_model(two_bus_partial_upgrade(), simple_config(solve_method="benders"))
    lp, columns, _, _, _ = _compile(m)
    first = np.array([v.parent_component().name in m.Investment_Variables for v in columns])
    return _Decomposition(lp, first, np.zeros(lp.num_row_, dtype=bool))


@pytest.mark.parametrize(
    ("coef_value", "rhs", "words"),
    [
        (math.nan, 1.0, "x[0] = nan"),
        (math.inf, 1.0, "x[0] = inf"),
        (10 * MAX_CUT_COEF, 1.0, "x[0] = 1e+12"),
        (1.0, math.nan, "rhs = nan"),
        (1.0, -math.inf, "rhs = -inf"),
        (1.0, 10 * MAX_CUT_RHS, "rhs = 1e+14"),
    ],
)
def test_cut_defect_names_the_offending_value(coef_value: float, rhs: float, words: str) -> None:
    coef = np.array([coef_value, 2.0, 1.0])
    assert words in cut_defect(coef, rhs)
    assert cut_defect(np.array([1e8, -3e-9, 1.0]), 1e9) == ""  # ISO-NE-sized values pass


def test_master_refuses_a_malformed_cut_and_keeps_the_fit_ones() -> None:
    dec = _decomposition()
    names = [f"col{j}" for j in range(dec.n_master)]
    master = _Master(dec, names)
    good = _Cut(0, np.zeros(dec.n_master), 1.0)
    bad_coef = np.zeros(dec.n_master)
    bad_coef[0] = math.nan
    refused = master.add_cuts([good, _Cut(0, bad_coef, 2.0, optimality=False), good])
    assert master.n_cuts == 2  # only the fit cuts are in the pool ...
    assert master.h.getNumRow() == dec.master_a.shape[0] + 2  # ... and in the LP
    assert master.rejected == 1
    assert refused == master.rejections
    assert refused[0] == "cut 2 (feasibility, block 0): coefficient col0 = nan"
    assert master.solve() is not None  # the master LP still solves


def test_a_nan_cut_is_rejected_counted_and_the_optimum_still_found(
    clean,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = benders._evaluate
    planted: list[int] = []

    def nan_once(dec, b, x):  # noqa: ANN001, ANN202
        res = real(dec, b, x)
        if not planted:  # the very first cut gets a NaN slope, as from a broken dual
            res.cut.coef[0] = math.nan
            planted.append(b)
        return res

    monkeypatch.setattr(benders, "_evaluate", nan_once)
    res = benders_solve()
    assert planted
    assert res.rejected_cuts == 1
    assert "1 cut(s) rejected, first: cut 1 (optimality, block 0): coefficient" in res.message
    assert "= nan" in res.message
    assert res.termination == "Optimal"
    assert res.objective == pytest.approx(clean.objective, rel=1e-9)


def test_node_whose_cuts_are_all_rejected_is_closed_not_looped(
    clean,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the cuts of its only block the master can't learn: nodes stall, the solve ends."""
    real = benders._evaluate
    calls: list[int] = []

    def always_nan(dec, b, x):  # noqa: ANN001, ANN202
        res = real(dec, b, x)
        res.cut.coef[:] = math.nan
        calls.append(b)
        return res

    monkeypatch.setattr(benders, "_evaluate", always_nan)
    res = benders_solve(time_limit_s=60.0)
    assert res.termination == "Benders stopped on a solver error"  # tree exhausted, gap open
    assert res.rejected_cuts == len(calls) > 0
    assert "closed unsolved after rejected cuts" in res.message
    # Every evaluated plan is a true plan: the best one is no better than the optimum,
    # and the reported bound (no cuts: investment cost only) is below it.
    assert res.objective >= clean.objective * (1 - 1e-9)
    assert res.bound <= clean.objective


def test_time_limit_returns_the_best_plan_and_its_proven_bound(
    clean,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limit strikes right after the first plan, before the tree could prove it."""
    real = benders._Run.evaluate

    def evaluate_then_expire(self, x, integer_point):  # noqa: ANN001, ANN202
        value, relaxed, violating = real(self, x, integer_point)
        if value < benders.INF:
            self.time_limit_s = 0.0  # out of time from now on
        return value, relaxed, violating

    monkeypatch.setattr(benders._Run, "evaluate", evaluate_then_expire)
    seen = []
    res = benders_solve(time_limit_s=600.0, on_iteration=seen.append)
    assert res.termination == "Time limit reached"
    assert math.isfinite(res.objective)
    assert res.objective >= clean.objective * (1 - 1e-9)
    assert res.bound <= clean.objective * (1 + 1e-9)
    assert res.mip_gap == pytest.approx((res.objective - res.bound) / res.objective)
    assert res.mip_gap > 1e-3  # stopped with the gap open
    # The last progress report shows the same incumbent, bound and gap.
    last = seen[-1]
    assert (last.objective, last.bound) == pytest.approx((res.objective, res.bound))
    assert last.gap == pytest.approx(res.mip_gap)


def test_progress_reports_incumbent_bound_and_gap_every_master_solve(clean) -> None:  # noqa: ANN001
    seen = []
    res = benders_solve(on_iteration=seen.append)
    *during, end = seen
    assert [p.iteration for p in during] == list(range(1, res.iterations + 1))
    assert all(p.line.startswith(f"benders {p.iteration:4d}") for p in during)
    assert end.phase == "end"
    before = [p for p in seen if p.objective is None]
    assert before, "the LP phase has no plan yet"
    assert all(p.gap is None for p in before)
    bounds = [p.bound for p in seen]
    assert bounds == sorted(bounds)  # the proven bound never falls
    assert seen[-1].objective == pytest.approx(res.objective)
    assert seen[-1].bound == pytest.approx(res.bound)
    assert seen[-1].gap == pytest.approx(res.mip_gap, abs=1e-12)


def test_master_time_cap_is_per_solve_not_per_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """HiGHS checks time_limit against an instance's summed run time: the cap must move."""
    import gridlayers.planner.benders_master as benders_master

    cap = 0.05
    monkeypatch.setattr(benders_master, "MASTER_LP_SECONDS", cap)

    def no_fallback(self, ipm):  # noqa: ANN001, ANN202
        msg = "a master solve needed a fresh HiGHS instance"
        raise AssertionError(msg)

    monkeypatch.setattr(_Master, "_fresh", no_fallback)
    dec = _decomposition()
    master = _Master(dec)
    rng = np.random.default_rng(0)
    cuts = []
    for _ in range(200):  # theta_b >= rhs + g x: the simplex has to pivot at least once
        coef = np.zeros(dec.n_master)
        coef[: dec.n_first] = -rng.uniform(0.0, 1e3, dec.n_first)
        cuts.append(_Cut(int(rng.integers(dec.n_blocks)), coef, float(rng.uniform(1e5, 1e6))))
    master.add_cuts(cuts)
    first = master.h
    solves = 0
    while master.h.getRunTime() < 4 * cap:  # well past the cap in total, never in one solve
        master.h.clearSolver()  # a cold solve each time, so the run time adds up
        assert master.solve() is not None
        solves += 1
        assert solves < 100_000
    assert master.h is first


def test_master_solve_cut_by_the_solve_limit_stops_the_solve_not_the_node(
    clean,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A master LP stopped by the overall time limit is a time limit, not an abandoned node."""
    master = _Master(_decomposition())
    master.time_left = lambda: 0.0
    with pytest.raises(MasterOutOfTime):
        master.solve()
    assert not issubclass(MasterOutOfTime, BendersError)

    real = benders._Run.evaluate

    def evaluate_then_time_out(self, x, integer_point):  # noqa: ANN001, ANN202
        out = real(self, x, integer_point)
        if out[0] < benders.INF:  # a plan: from now on every master solve runs out of time

            def out_of_time() -> None:
                raise MasterOutOfTime

            self.master.solve = out_of_time
        return out

    monkeypatch.setattr(benders._Run, "evaluate", evaluate_then_time_out)
    res = benders_solve(time_limit_s=600.0)
    assert res.termination == "Time limit reached"
    assert "abandoned" not in res.message
    assert res.objective >= clean.objective * (1 - 1e-9)
    assert res.bound <= clean.objective * (1 + 1e-9)
