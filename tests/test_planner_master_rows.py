"""The Benders master stays small while a solve re-adds pool cuts.

A jump to a distant node or dive point makes many pool cuts violated at once. On
ISO-NE MO, re-adding them without pruning grew the master from ~1,100 to over
10,000 cut rows inside one solve; every pass then took 5-25 s and a tree node was
abandoned once each attempt reached the per-solve cap. The tests below build that
situation on a small master: a pool of tangent cuts of a convex bowl, then a row
that moves the optimum far away; and a master full of degenerate rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import simple_config
from gridlayers.planner import build_model
from gridlayers.planner.benders_blocks import _Cut, _Decomposition
from gridlayers.planner.benders_master import _Master
from gridlayers.planner.solve import _compile
from test_planner_cuts import _decomposition, two_bus_partial_upgrade
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


def test_a_solve_at_a_distant_point_prunes_the_old_rows_first_and_keeps_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readd, limit = 3, 12  # a few rows per pass, and a limit that later passes exceed
    monkeypatch.setattr(_Master, "READD", readd)
    monkeypatch.setattr(_Master, "row_limit", property(lambda self: limit))
    dec = _decomposition()
    assert (dec.n_master, dec.n_first) == (10, 9)
    master = _Master(dec)
    cuts = _bowl_tangents(dec, np.random.default_rng(0), 4000)
    master.add_cuts(cuts[:2000])
    x, _ = master.solve()
    master.prune(x)  # the first half leaves the model, but stays in the pool
    master.add_cuts(cuts[2000:])  # the second half are rows, as after many rounds
    assert len(master.active) > 2000 > master.row_limit
    assert np.all(x[:8] < 10.0)  # the bowl's optimum, where building stops paying

    # The next point is far away: total capacity at least 136 MW (17 MW each on average).
    coef = np.zeros(dec.n_master)
    coef[:8] = 1.0
    far = _Cut(0, coef, 136.0, optimality=False)
    master.add_cuts([far])
    added: list[int] = []
    add_rows = master._add_rows

    def recorded(idx: list[int]) -> None:
        added.extend(idx)
        add_rows(idx)

    monkeypatch.setattr(master, "_add_rows", recorded)
    runs = master.runs
    x, bound = master.solve()
    passes = master.runs - runs
    assert passes > 2  # pool cuts came back a few at a time
    # No cut is added twice within the solve (a weak guard only: pruning at every
    # pass, which cycled on ISO-NE MO, does not cycle on this small pool).
    assert len(added) == len(set(added))
    # The old rows went at the first pass: what is left is at most the rows binding
    # there (<= n_master) and the ones re-added since.
    assert len(master.active) <= dec.n_master + readd * (passes - 1)
    # The same optimum as the LP with every pool cut (solved on its own).
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


def test_re_added_cuts_take_turns_between_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block's most violated cut comes back before any block's second one.

    Two epochs give two blocks. Block 0's optimality cuts are violated by ~1e12 $,
    block 1's by ~1e6 $, the feasibility cuts (a group of their own) by a few MW:
    with three cuts per pass, a global order by violation would bring back three
    cuts of block 0, and groups that ignore the block two of block 0.
    """
    monkeypatch.setattr(_Master, "READD", 3)
    m = build_model(two_bus_partial_upgrade(), simple_config(solve_method="benders", n_epochs=2))
    lp, columns, _, _, _ = _compile(m)
    first = np.array([v.parent_component().name in m.Investment_Variables for v in columns])
    dec = _Decomposition(lp, first, np.zeros(lp.num_row_, dtype=bool))
    assert dec.n_blocks == 2
    master = _Master(dec)
    cuts = []
    for block, size in ((0, 1e12), (1, 1e6)):
        for k in range(4):  # theta_b >= rhs: violated by rhs at theta = 0
            cuts.append(_Cut(block, np.zeros(dec.n_master), size * (1.0 + 0.1 * k)))
    for mw in (1.0, 2.0, 3.0):
        coef = np.zeros(dec.n_master)
        coef[0] = 1.0
        cuts.append(_Cut(0, coef, mw, optimality=False))
    master.add_cuts(cuts)
    master.active = []  # every cut in the pool, none a row (rows are not used here)
    picked = master._violated(np.zeros(dec.n_master))
    assert sorted(master.pool_rhs[picked]) == pytest.approx([3.0, 1.3e6, 1.3e12])
