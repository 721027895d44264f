"""The Benders master stays small while a solve re-adds pool cuts.

A jump to a distant node or dive point makes many pool cuts violated at once. On
ISO-NE MO, re-adding them without pruning grew the master from ~1,100 to over
10,000 cut rows inside one solve; every pass then took 5-25 s and a tree node was
abandoned once each attempt reached the per-solve cap. The test below builds that
situation on a small master: a pool of tangent cuts of a convex bowl, a master
pruned at the bowl's optimum, then a row that moves the optimum far away.
"""

from __future__ import annotations

import numpy as np
import pytest

from gridlayers.planner.benders_blocks import _Cut
from gridlayers.planner.benders_master import _Master
from test_planner_cuts import _decomposition
from test_planner_master_units import _reference


def _bowl_tangents(dec, rng: np.random.Generator, n: int) -> list[_Cut]:  # noqa: ANN001
    """Optimality cuts: tangents of ``sum_j k_j (x_j - c_j)^2`` at random points, $."""
    k = np.array([1e7] * 8 + [3e7])  # $/MW^2 (8 capacities, then the upgrade binary)
    centre = np.array([10.0] * 8 + [0.9])
    cuts = []
    for _ in range(n):
        p = np.concatenate([rng.uniform(0.0, 20.0, 8), rng.uniform(0.0, 1.0, 1)])
        slope = 2.0 * k * (p - centre)
        coef = np.zeros(dec.n_master)
        coef[:9] = -slope  # theta - slope . x >= f(p) - slope . p
        cuts.append(_Cut(0, coef, float(k @ (p - centre) ** 2 - slope @ p)))
    return cuts


def test_a_solve_that_re_adds_many_cuts_prunes_slack_rows_and_keeps_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit, readd = 12, 3
    monkeypatch.setattr(_Master, "READD", readd)
    monkeypatch.setattr(_Master, "row_limit", property(lambda self: limit))
    dec = _decomposition()
    assert (dec.n_master, dec.n_first) == (10, 9)
    master = _Master(dec)
    cuts = _bowl_tangents(dec, np.random.default_rng(0), 4000)
    master.add_cuts(cuts)
    x, _ = master.solve()
    master.prune(x)  # as after a tree node: only the rows binding at the optimum stay
    assert len(master.active) <= limit
    assert np.all(x[:8] < 10.0)  # the bowl's optimum, where building stops paying

    # The next point is far away: total capacity at least 136 MW (17 MW each on average).
    coef = np.zeros(dec.n_master)
    coef[:8] = 1.0
    far = _Cut(0, coef, 136.0, optimality=False)
    peak = [0]
    add_rows = master._add_rows

    def counted(idx: list[int]) -> None:
        add_rows(idx)
        peak[0] = max(peak[0], len(master.active))

    monkeypatch.setattr(master, "_add_rows", counted)
    master.add_cuts([far])
    runs = master.runs
    x, bound = master.solve()
    passes = master.runs - runs
    assert passes > 10  # the pool cuts came back a few at a time
    # Never more rows than the limit plus one pass of re-added cuts ...
    assert peak[0] <= limit + readd
    # ... and the same optimum as the LP with every pool cut (solved on its own).
    assert bound == pytest.approx(_reference(master, [*cuts, far]), rel=1e-9)
    assert x[:8].sum() >= 136.0 - 1e-6


def test_pruning_drops_tight_rows_without_a_dual_and_keeps_the_basis() -> None:
    """Degenerate rows (tight at the point, basic, no dual) go; the optimum and basis stay.

    Each tangent cut is added five times: at the optimum all copies are tight, but at
    most one of each can be nonbasic, and at most ``n_master`` rows can be nonbasic.
    """
    dec = _decomposition()
    master = _Master(dec)
    cuts = _bowl_tangents(dec, np.random.default_rng(1), 300)
    master.add_cuts([cut for cut in cuts for _ in range(5)])
    x, bound = master.solve()
    act = np.asarray(master.active)
    tight = master.pool_coef[act] @ x - master.pool_rhs[act] <= 1e-7 * np.abs(master.pool_rhs[act])
    assert tight.sum() >= 5 * dec.n_first  # copies of the binding cuts: tight, mostly basic
    master.prune(x)
    assert len(master.active) <= dec.n_master
    _, bound_again = master.solve()
    assert master.h.getInfo().simplex_iteration_count == 0  # its basis is still optimal
    assert bound_again == pytest.approx(bound, rel=1e-12)
    assert bound == pytest.approx(_reference(master, cuts), rel=1e-9)
