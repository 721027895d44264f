"""Compiled Param pushes to persistent HiGHS agree to the bit with pyomo's own updates."""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import pytest
from pyomo.core.expr.numeric_expr import NPV_SumExpression

from gridlayers.highs import freeze_structure, persistent_highs, run
from gridlayers.highs_params import compile_values, store_floats


def _model() -> pyo.ConcreteModel:
    """A small LP with Params in row bounds, coefficients, column bounds and objectives."""
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, 11)
    m.a = pyo.Param(m.I, mutable=True, within=pyo.Reals, initialize=lambda _m, i: 1.0 + 0.1 * i)
    m.b = pyo.Param(m.I, mutable=True, within=pyo.Reals, initialize=lambda _m, i: 2.0 + i)
    m.c = pyo.Param(m.I, mutable=True, within=pyo.Reals, initialize=lambda _m, i: 0.3 * i - 1.0)
    m.cap = pyo.Param(mutable=True, within=pyo.Reals, initialize=3.0)
    m.x = pyo.Var(m.I, bounds=lambda _m, i: (0.0, _m.b[i] / 2))
    m.y = pyo.Var(m.I, within=pyo.NonNegativeReals)
    m.Link = pyo.Constraint(m.I, rule=lambda _m, i: _m.a[i] ** 2 * _m.x[i] - _m.y[i] <= _m.c[i] + 3)
    m.Cap = pyo.Constraint(
        expr=sum(m.y[i] for i in m.I) <= 10 * m.cap + sum(m.c[i] for i in m.I) + 30
    )
    m.Mix = pyo.Constraint(m.I, rule=lambda _m, i: -(_m.a[i] / 3) * _m.y[i] + _m.x[i] >= -_m.b[i])
    m.Cost = pyo.Objective(expr=sum((m.c[i] + 2) * m.x[i] + m.a[i] * m.y[i] for i in m.I) + m.cap)
    m.Load = pyo.Objective(expr=-sum(m.x[i] for i in m.I), sense=pyo.minimize)
    m.Load.deactivate()
    return m


def _lp_data(solver) -> dict:
    lp = solver._solver_model.getLp()
    a = lp.a_matrix_
    return {
        "cost": np.array(lp.col_cost_),
        "col": np.array([lp.col_lower_, lp.col_upper_]),
        "row": np.array([lp.row_lower_, lp.row_upper_]),
        "matrix": (np.array(a.start_), np.array(a.index_), np.array(a.value_)),
        "offset": lp.offset_,
        "sense": lp.sense_,
    }


def _assert_same(a: dict, b: dict) -> None:
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, tuple):
            for u, v in zip(x, y, strict=True):
                np.testing.assert_array_equal(u, v, err_msg=key)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=key)
        else:
            assert x == y, key


def _perturb(m: pyo.ConcreteModel, rng: np.random.Generator) -> None:
    for i in m.I:
        m.a[i] = float(rng.uniform(0.5, 2.0))
        m.b[i] = float(rng.uniform(1.0, 5.0))
        m.c[i] = float(rng.uniform(-2.0, 2.0))
    m.cap = float(rng.uniform(1.0, 5.0))


def test_compile_values_is_bit_identical_to_pyomo_value():
    m = _model()
    exprs = [
        m.a[1] * m.b[2] / (m.c[3] - 7) + m.b[4] ** 2 - (-m.a[5]),
        sum(m.a[i] * m.c[i] for i in m.I),
        pyo.exp(m.a[2]) + abs(m.c[0]),  # not compiled: evaluated by pyomo
        m.b[1],
        3,
        0.1 * m.a[6] * 0.7,
    ]
    values = compile_values(exprs)
    rng = np.random.default_rng(1)
    for _ in range(5):
        _perturb(m, rng)
        np.testing.assert_array_equal(values(), [pyo.value(e) for e in exprs])


def test_compile_values_compiles_named_expressions_and_reuses_unchanged_values(monkeypatch):
    """A pyomo Expression is its body (compiled, not handed to pyomo's evaluator); with
    ``reuse`` the last array comes back until a Param is written."""
    m = _model()
    m.E = pyo.Expression(m.I, rule=lambda _m, i: _m.a[i] * _m.x[i] + _m.b[i])
    for i in m.I:
        m.x[i].set_value(0.1 * i)
    exprs = [m.E[i] for i in m.I] + [2.0 * m.E[3]]
    monkeypatch.setattr(pyo, "value", None)  # any pyomo evaluation would fail
    values = compile_values(exprs, reuse=True)
    first = values()
    assert values() is first  # nothing written: reused
    m.a[2] = 7.0
    second = values()
    assert second is not first
    monkeypatch.undo()
    np.testing.assert_array_equal(second, [pyo.value(e) for e in exprs])


def test_compile_values_reads_params_and_param_bounds_without_code(monkeypatch):
    """Bare Params, numbers and min/max of a Param and a number (pyomo's Var bounds) are
    read directly, mixed with compiled expressions in any order; written Params show up,
    unchanged ones reuse the last array."""
    from pyomo.core.expr.numeric_expr import NPV_MaxExpression, NPV_MinExpression

    m = _model()
    exprs = [
        NPV_MinExpression((m.b[2], 3.0)),
        m.a[1],
        NPV_MaxExpression((0.0, -0.0)),
        2.5 * m.c[4],
        NPV_MaxExpression((-1.0, m.c[5])),
        7,
        m.a[1],
        NPV_MinExpression((m.a[3], m.b[3])),
    ]
    compiled = []
    real_compile = compile
    monkeypatch.setattr(
        "builtins.compile", lambda src, *a, **k: compiled.append(src) or real_compile(src, *a, **k)
    )
    values = compile_values(exprs, reuse=True)
    monkeypatch.undo()
    assert len(compiled) == 1
    assert "t0" in compiled[0]
    assert "t1" not in compiled[0]  # only 2.5 * c[4] became code
    rng = np.random.default_rng(3)
    for _ in range(4):
        _perturb(m, rng)
        first = values()
        np.testing.assert_array_equal(first, [pyo.value(e) for e in exprs])
        assert values() is first
        m.b[2] = 0.5 * pyo.value(m.b[2])  # written: recomputed
        second = values()
        assert second is not first
        np.testing.assert_array_equal(second, [pyo.value(e) for e in exprs])


def test_compile_values_handles_deep_expressions():
    m = _model()
    chain = m.a[0] * 1.0
    for i in range(3000):  # as generate_standard_repn nests the constants of long sums
        chain = NPV_SumExpression([chain, m.c[i % 12] * (0.1 + i)])
    values = compile_values([chain, 2.0 * chain])
    np.testing.assert_array_equal(values(), [pyo.value(chain), pyo.value(2.0 * chain)])


def test_compile_values_raises_like_pyomo_for_missing_values():
    m = pyo.ConcreteModel()
    m.p = pyo.Param(mutable=True, within=pyo.Reals)
    with pytest.raises(ValueError, match="p"):
        compile_values([2 * m.p])()


def test_push_and_objective_switch_give_pyomos_highs_model():
    m, ref = _model(), _model()
    fast_solver, ref_solver = persistent_highs(), persistent_highs()
    fast_solver.solve(m)
    ref_solver.solve(ref)
    updater = freeze_structure(fast_solver)
    freeze_structure(ref_solver)
    rng_fast, rng_ref = np.random.default_rng(3), np.random.default_rng(3)
    for k in range(6):
        _perturb(m, rng_fast)
        _perturb(ref, rng_ref)
        name = "Load" if k % 2 else "Cost"
        updater.set_objective(m.component(name))
        updater.push()
        ref_solver.set_objective(ref.component(name))
        ref_solver.update_parameters()
        _assert_same(_lp_data(fast_solver), _lp_data(ref_solver))
        res = fast_solver.solve(m, load_solutions=False)
        res_ref = ref_solver.solve(ref)
        updater.load_vars()
        assert [m.x[i].value for i in m.I] == [ref.x[i].value for i in ref.I]
        rows, rows_ref = list(m.Link.values()), list(ref.Link.values())
        duals, duals_ref = (
            res.solution_loader.get_duals(rows),
            res_ref.solution_loader.get_duals(rows_ref),
        )
        assert [duals[c] for c in rows] == [duals_ref[c] for c in rows_ref]
        other = "Cost" if k % 2 else "Load"  # switch without a push: cached costs refreshed
        updater.set_objective(m.component(other))
        ref_solver.set_objective(ref.component(other))
        _assert_same(_lp_data(fast_solver), _lp_data(ref_solver))


def test_store_floats_checks_like_store_values():
    m = _model()
    store_floats(m.a, {0: 4.0, 1: math.inf})
    assert (m.a[0].value, m.a[1].value) == (4.0, math.inf)
    with pytest.raises(ValueError, match="domain"):
        store_floats(m.a, {2: math.nan})
    with pytest.raises(KeyError):
        store_floats(m.a, {99: 1.0})


def test_time_limit_counts_from_each_run_not_from_the_first():
    """HiGHS compares ``time_limit`` with its run time summed over all runs: a long
    co-simulation's market (60 s limit) would fail every clearing once it had cleared
    for 60 s in total. ``run`` sets the limit anew from each run."""
    m = _model()
    solver = persistent_highs()
    solver.config.time_limit = 0.05  # s, per solve
    solver.solve(m)
    updater = freeze_structure(solver)
    highs = updater.highs
    rng = np.random.default_rng(5)
    runs = 0
    while highs.getRunTime() < 0.2 and runs < 200_000:  # 4x the limit in total
        _perturb(m, rng)
        updater.push()
        highs.clearSolver()  # a solve that iterates (HiGHS checks the limit as it works)
        status = run(solver)
        assert status.name == "kOptimal", (runs, highs.getRunTime())
        runs += 1
    assert highs.getRunTime() >= 0.2
