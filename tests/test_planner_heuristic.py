"""The Benders rounding heuristic gives true plans, leaves the bound alone, and seeds the tree.

Independent truth: the compiled model's own rows, bounds, integrality and costs (the
plan is checked against the matrix, not against the decomposition that produced it),
and the LP bound proven before the heuristic runs.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import gridlayers.planner.benders as benders
from conftest import simple_config, two_bus
from gridlayers.planner import build_model, load_planner_config, read_inputs, solve_model
from gridlayers.planner.benders_blocks import _Decomposition, lp_matrix
from gridlayers.planner.benders_heuristic import HeuristicStats, rounding_heuristic
from gridlayers.planner.benders_master import _Master
from gridlayers.planner.solve import _compile

ROOT = Path(__file__).resolve().parents[1]
GAP = 1e-4


@pytest.fixture(scope="module")
def after_lp_phase():  # noqa: ANN201
    """ISO-NE, one epoch, representative day 1: the Benders run at the end of its LP phase."""
    _, config = load_planner_config(ROOT / "scenarios" / "isone8-so.yaml")
    config = config.model_copy(update={"days": [1], "n_epochs": 1})
    m = build_model(read_inputs(config), config)
    lp, columns, _, _, rows = _compile(m)
    first = np.array([v.parent_component().name in m.Investment_Variables for v in columns])
    link = np.array([c.parent_component().name in m.Cross_Day_Constraints for c in rows])
    dec = _Decomposition(lp, first, link)
    # the master as solve_benders builds it (its unit follows the gap to prove)
    master = _Master(dec, gap=min(GAP, 1e-5))
    run = benders._Run(dec, master, time.perf_counter(), None, None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        run.pool = pool
        run.lp_loop(0.2, 1e-5, None)
        lp_bound, lp_x = run.bound, run.master.last_x.copy()
        assert not np.all(np.abs(lp_x[run.master.integer] % 1.0) < 1e-6), "LP point is integral"
        stats = HeuristicStats()
        # Every incumbent the heuristic records, not only the last one, is checked.
        incumbents = []
        evaluate = run.evaluate

        def recording(x, integer_point):  # noqa: ANN001, ANN202
            before = run.best
            out = evaluate(x, integer_point)
            if run.best < before:
                incumbents.append((run.best, run.best_x.copy(), list(run.best_blocks)))
            return out

        run.evaluate = recording
        value = rounding_heuristic(run, lp_x, GAP, stats)
    return lp, dec, run, lp_bound, value, stats, incumbents


def full_plan(dec, best_x, blocks, n_cols):  # noqa: ANN001, ANN201
    x = np.zeros(n_cols)
    x[dec.master_cols] = best_x[: dec.n_first]
    for blk, sol in zip(dec.blocks, blocks, strict=True):
        x[blk.cols] = sol
    return x


def test_heuristic_plans_satisfy_every_row_and_cost_what_they_report(after_lp_phase) -> None:  # noqa: ANN001
    lp, dec, run, lp_bound, value, stats, incumbents = after_lp_phase
    assert stats.calls == 1
    assert stats.plans == 1
    assert stats.master_solves > 0
    assert math.isfinite(value)
    assert value == run.best == incumbents[-1][0]
    a = lp_matrix(lp)
    lo, up = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    scale = np.maximum(1.0, np.abs(np.where(np.isfinite(lo), lo, up)))
    integer = np.asarray([int(t) for t in lp.integrality_]) != 0
    assert integer.any()
    for cost, best_x, blocks in incumbents:
        # The full plan, assembled from the master and block solutions, against the model.
        x = full_plan(dec, best_x, blocks, lp.num_col_)
        activity = a @ x
        assert np.all((activity - lo) / scale >= -1e-6)
        assert np.all((up - activity) / scale >= -1e-6)
        assert np.all(x >= np.asarray(lp.col_lower_) - 1e-6)
        assert np.all(x <= np.asarray(lp.col_upper_) + 1e-6)
        assert np.all(np.abs(x[integer] - np.round(x[integer])) <= 1e-9)
        assert float(np.asarray(lp.col_cost_) @ x) == pytest.approx(cost, rel=1e-7)


def test_heuristic_leaves_the_proven_bound_alone_and_lies_above_it(after_lp_phase) -> None:  # noqa: ANN001
    _, _, run, lp_bound, value, _, incumbents = after_lp_phase
    # The restricted (fixed-topology) master LPs bound nothing: the bound is the LP one.
    assert run.bound == lp_bound
    assert all(cost >= lp_bound for cost, _, _ in incumbents)
    # The master's integer columns are free again for the tree.
    master = run.master
    lp_now = master.h.getLp()
    idx = master.integer
    assert np.array_equal(np.asarray(lp_now.col_lower_)[idx], master.int_lo)
    assert np.array_equal(np.asarray(lp_now.col_upper_)[idx], master.int_up)


def test_tree_starts_from_the_heuristic_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two-bus case (LP builds 0.6 of the upgrade): the tree gets the rounded plan as incumbent."""
    real = benders.branch_and_cut
    seen: dict[str, float] = {}

    def record(run, mip_gap, max_iterations=None):  # noqa: ANN001, ANN202
        seen["best"], seen["bound"] = run.best, run.bound
        seen["heuristic_plans"] = run.heuristic.plans
        return real(run, mip_gap, max_iterations)

    monkeypatch.setattr(benders, "branch_and_cut", record)
    config = simple_config(solve_method="benders")
    m = build_model(two_bus(10.0, load_mw=80.0), config)
    history = []
    res = solve_model(m, mip_gap=config.mip_gap, method="benders", on_iteration=history.append)
    assert seen["heuristic_plans"] == 1
    heur = [p for p in history if p.phase == "heur"]
    assert heur, "the heuristic ran after the LP phase"
    assert math.isfinite(seen["best"])
    assert seen["best"] >= seen["bound"]
    plan = min(p.objective for p in heur if p.objective is not None)
    # The tree's first node already reports the heuristic's plan; the final plan is no worse.
    first_node = next(p for p in history if p.phase == "node")
    assert first_node.objective == pytest.approx(plan, rel=1e-12)
    assert res.termination == "Optimal"
    assert res.objective <= plan * (1 + 1e-12)
    assert res.bound <= res.objective
