"""Push a frozen pyomo model's Param-dependent data straight to persistent HiGHS.

pyomo's persistent HiGHS (``pyomo.contrib.solver.solvers.highs.Highs``) keeps one helper
per Param-dependent number of the HiGHS model (row bound, matrix coefficient, column
bound, objective coefficient) and its ``update_parameters`` re-evaluates each helper's
expression with pyomo's generic tree walker and pushes it with one HiGHS call. That is
the dominant cost of re-solving a built-once model with new Param values.

:class:`ParamUpdater` reads the same helpers once, after the first solve, compiles all
their expressions into one Python function (:func:`compile_values`) and pushes the values
in batches (``changeRowsBounds``, ``changeColsBounds``, ``changeColsCost``; matrix
coefficients one by one with ``changeCoeff``). Every number reaching HiGHS is computed
by the same floating-point operations in the same order as pyomo's evaluation, so the
HiGHS model, and with it the solution and the duals, is exactly the one pyomo's
``update_parameters`` would give.

Notes
-----
Relies on private attributes of pyomo 6.10's ``Highs`` (``_solver_model``,
``_mutable_helpers``, ``_mutable_bounds``, ``_mutable_objective``,
``_pyomo_con_to_solver_con_map``, ``_pyomo_var_to_solver_var_map``); any other layout
raises at construction, so a pyomo upgrade fails loudly instead of solving a stale model.

"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.util import NoSolutionError
from pyomo.core.base.param import ParamData
from pyomo.core.base.set import _AnySet
from pyomo.core.base.var import VarData
from pyomo.core.expr import numeric_expr as ne
from pyomo.core.expr.numvalue import is_constant, native_numeric_types
from pyomo.core.staleflag import StaleFlagManager

from gridlayers.numerics import bad_signed, bad_values, push_fault

_INFIX = (
    (ne.NegationExpression, "-{0}"),
    (ne.ProductExpression, "{0} * {1}"),  # incl. MonomialTermExpression and NPV variants
    (ne.DivisionExpression, "{0} / {1}"),
    (ne.PowExpression, "{0} ** {1}"),
)


class _Compiler:
    """Translate pyomo expressions into straight-line Python code, one statement per node.

    Each expression node becomes ``t<i> = <operation on its arguments>`` with the
    operation of the node's ``_apply_operation`` (a sum is ``sum(rest, start=first)``,
    the builtin as in pyomo), so any nesting depth compiles and the values match pyomo's
    on every Python version. Shared subexpressions are computed once; a named expression
    (a pyomo ``Expression``) is the value of its body.
    """

    def __init__(self) -> None:
        self.params: list[Any] = []  # mutable ParamData leaves, read as p[i]
        self.others: list[Any] = []  # Var leaves (fixed Vars as parameters), read as v[i]
        self.consts: list[Any] = []  # numbers, referenced as k[i] (exact type kept)
        self.subtrees: list[Callable[[], Any]] = []  # anything else, evaluated by pyomo
        self.lines: list[str] = []
        self._name: dict[int, str] = {}

    def _leaf(self, node: Any) -> str | None:
        """Return the name of a leaf's value, or None for an expression node."""
        if node.__class__ in native_numeric_types:
            self.consts.append(node)
            return f"k[{len(self.consts) - 1}]"
        key = id(node)
        if key in self._name:
            return self._name[key]
        if isinstance(node, ParamData):
            store, prefix = self.params, "p"
        elif isinstance(node, VarData):
            store, prefix = self.others, "v"
        elif not node.is_expression_type():
            store, prefix = self.subtrees, "s"
            node = functools.partial(pyo.value, node)
        else:
            return None
        store.append(node)
        name = f"{prefix}[{len(store) - 1}]" + ("()" if prefix == "s" else "")
        self._name[key] = name
        return name

    def source(self, root: Any) -> str:
        """Add the statements computing ``pyo.value(root)``; return its name."""
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if self._leaf(node) is not None:
                continue
            if not expanded:
                stack.append((node, True))
                stack.extend((a, False) for a in node.args)
                continue
            args = [self._leaf(a) for a in node.args]
            if node.is_named_expression_type():  # pyomo Expression: the value of its body
                self._name[id(node)] = args[0]
                continue
            self._name[id(node)] = name = f"t{len(self.lines)}"
            self.lines.append(f"{name} = {self._operation(node, args)}")
        return self._leaf(root)

    def _operation(self, node: Any, args: list[str]) -> str:
        if isinstance(node, ne.SumExpression):
            if not args:
                return "0"
            return f"sum(({''.join(a + ', ' for a in args[1:])}), start={args[0]})"
        for cls, template in _INFIX:
            if isinstance(node, cls):
                return template.format(*args)
        if isinstance(node, ne.MaxExpression | ne.MinExpression):
            fn = "max" if isinstance(node, ne.MaxExpression) else "min"
            return f"{fn}(({''.join(a + ', ' for a in args)}))"
        self.subtrees.append(functools.partial(pyo.value, node))
        return f"s[{len(self.subtrees) - 1}]()"


def _same_objects(a: list[Any], b: list[Any] | None) -> bool:
    return b is not None and len(a) == len(b) and all(map(operator.is_, a, b))


def _simple(expr: Any) -> tuple[Any, ...] | None:
    """Classify an expression evaluated without generated code, or return None.

    ``("const", value)`` for a number or a min/max of numbers (evaluated here, with the
    builtin the compiled code would call), ``("param", p)`` for a mutable Param, and
    ``("minmax", fn, a, b)`` for ``min``/``max`` of a Param and a number (either order):
    the bound shapes pyomo gives a Var bounded by a Param.
    """
    cls = expr.__class__
    if cls in native_numeric_types:
        return ("const", expr)
    if isinstance(expr, ParamData):
        return ("param", expr)
    if isinstance(expr, ne.MaxExpression | ne.MinExpression) and len(expr.args) == 2:
        fn = max if isinstance(expr, ne.MaxExpression) else min
        a, b = expr.args
        a_num, b_num = a.__class__ in native_numeric_types, b.__class__ in native_numeric_types
        if a_num and b_num:
            return ("const", fn((a, b)))
        if (a_num or isinstance(a, ParamData)) and (b_num or isinstance(b, ParamData)):
            return ("minmax", fn, a, b)
    return None


def compile_values(exprs: Sequence[Any], *, reuse: bool = False) -> Callable[[], np.ndarray]:
    """Compile pyomo expressions into one function evaluating them all.

    Parameters
    ----------
    exprs : sequence of pyomo expressions, Params, Vars or numbers
        Typically the coefficient and bound expressions of a persistent solver (Params),
        or expressions of solved Vars (their current values are read).
    reuse : bool
        Return the previous call's array (the same object: do not modify it) while every
        Param and Var leaf still holds the very value object it held then (nothing was
        written to them); only for expressions compiled entirely.

    Returns
    -------
    callable
        ``f()`` returning ``[pyo.value(e) for e in exprs]`` as a float array, bit for bit
        (sums, products, quotients, powers, negations, min and max are compiled; any
        other node is evaluated by pyomo).

    Notes
    -----
    Numbers, bare Params and ``min``/``max`` of a Param and a number (the bounds of a
    Var bounded by a Param, most of a DSO model's expressions) are read without
    generating code: generating and compiling Python source for tens of thousands of
    such expressions took most of a large DSO model's first solve (2.2 s of 5.9 s for
    3,832 devices). They give the same values as the compiled code: the same leaf
    values, the same builtin ``min``/``max`` on the same argument tuple.

    """
    n = len(exprs)
    kinds = [_simple(e) for e in exprs]
    const_pos = [i for i, k in enumerate(kinds) if k is not None and k[0] == "const"]
    param_pos = [i for i, k in enumerate(kinds) if k is not None and k[0] == "param"]
    mm_pos = [i for i, k in enumerate(kinds) if k is not None and k[0] == "minmax"]
    code_pos = [i for i, k in enumerate(kinds) if k is None]
    const_values = np.array([kinds[i][1] for i in const_pos], dtype=float)
    direct = tuple(kinds[i][1] for i in param_pos)
    # min/max operands: a Param (read at call time) or a number; as (fn, a, b) each
    mm = tuple(kinds[i][1:] for i in mm_pos)
    mm_params = tuple(
        x for _, a, b in mm for x in (a, b) if x.__class__ not in native_numeric_types
    )
    comp = _Compiler()
    names = [comp.source(exprs[i]) for i in code_pos]
    fn = None
    if code_pos:
        body = "".join(f"    {line}\n" for line in comp.lines)
        result = "".join(f"{name}, " for name in names)
        namespace: dict[str, Any] = {}
        source = f"def _values(p, v, k, s):\n{body}    return ({result})\n"
        exec(compile(source, "<params>", "exec"), namespace)  # noqa: S102 - generated above
        fn = namespace["_values"]
    consts, subtrees = tuple(comp.consts), tuple(comp.subtrees)
    params, others = tuple(comp.params), tuple(comp.others)
    idx = [np.array(pos, dtype=np.intp) for pos in (const_pos, param_pos, mm_pos, code_pos)]
    no_value = pyo.Param.NoValue
    reuse = reuse and not subtrees
    last: list[Any] = [None, None, None]  # leaf values and result of the last call

    def _operand(x: Any) -> Any:
        return x if x.__class__ in native_numeric_types else x._value  # noqa: SLF001

    def values() -> np.ndarray:
        p = [x._value for x in params]  # noqa: SLF001 - ParamData.value without the checks
        q = [x._value for x in direct]  # noqa: SLF001
        r = [x._value for x in mm_params]  # noqa: SLF001
        v = [x.value for x in others]
        leaves = (p, q, r)
        if (
            reuse
            and last[0] is not None
            and all(map(_same_objects, leaves, last[0]))
            and _same_objects(v, last[1])
        ):
            return last[2]
        if any(no_value in x or None in x for x in leaves) or None in v:
            return np.array([pyo.value(e) for e in exprs], dtype=float)  # pyomo raises
        out = np.empty(n)
        out[idx[0]] = const_values
        out[idx[1]] = np.array(q, dtype=float)
        if mm:
            out[idx[2]] = [f((_operand(a), _operand(b))) for f, a, b in mm]
        if fn is not None:
            out[idx[3]] = np.array(fn(p, v, consts, subtrees), dtype=float)
        if reuse:
            last[:] = [leaves, v, out]
        return out

    return values


def _grouped_values(keys: Sequence[Hashable], exprs: Sequence[Any]) -> Callable[[], np.ndarray]:
    """:func:`compile_values` of ``exprs``, compiled per key and reused per key.

    A group (e.g. the rows of one constraint component) is evaluated again only when one
    of its Params was written since its last evaluation; the result is
    ``[pyo.value(e) for e in exprs]`` in order.
    """
    positions: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        positions.setdefault(key, []).append(i)
    groups = [
        (np.array(pos, dtype=np.intp), compile_values([exprs[i] for i in pos], reuse=True))
        for pos in positions.values()
    ]
    n = len(exprs)

    def values() -> np.ndarray:
        out = np.empty(n)
        for pos, group in groups:
            out[pos] = group()
        return out

    return values


def store_floats(param: Any, values: Mapping[Any, float]) -> None:
    """``param.store_values(values)`` without pyomo's per-entry checks where they cannot fail.

    Parameters
    ----------
    param : pyomo IndexedParam
        A mutable Param.
    values : mapping
        Index -> value.

    Notes
    -----
    For a Param within ``Reals`` and existing indices the only failing check is a NaN
    value; then (and for any other domain, a ``validate`` rule or a new index) pyomo's
    checked path runs and raises as before. A Param within ``Any`` (also pyomo's implicit
    default domain, which only warns about non-real values) takes the same fast path for
    values other than NaN.

    """
    data = param._data  # noqa: SLF001
    domain = param.domain
    if (
        not (domain is pyo.Reals or isinstance(domain, _AnySet))
        or param._validate is not None  # noqa: SLF001
        or any(k not in data for k in values)
        or any(v != v for v in values.values())  # NaN
    ):
        param.store_values(values)
    else:
        param.store_values(values, check=False)


class _Objective:
    """Compiled Param-dependent part of one objective in HiGHS."""

    def __init__(self, solver: Any, objective: Any) -> None:
        highs, mutable = solver._solver_model, solver._mutable_objective  # noqa: SLF001
        var_col = solver._pyomo_var_to_solver_var_map  # noqa: SLF001
        self.objective = objective
        self.mutable = mutable
        self.var_info = solver._vars  # noqa: SLF001 - names variables in fault messages
        lp = highs.getLp()
        self.sense = lp.sense_
        self.base_cost = np.array(lp.col_cost_, dtype=float)
        self.cols = np.array(
            [var_col[c.pyomo_var_id] for c in mutable.linear_coefs], dtype=np.int32
        )
        self.values = compile_values(
            [c.expr for c in mutable.linear_coefs] + [mutable.constant.expr], reuse=True
        )
        #: Non-constant quadratic coefficients are left to pyomo (rebuilds the Hessian).
        self.quadratic_mutable = any(not is_constant(c.expr) for c in mutable.quadratic_coefs)
        referenced = solver._referenced_variables  # noqa: SLF001
        #: Cacheable: no Hessian and every variable also in a constraint (pyomo keeps it).
        self.cacheable = not mutable.quadratic_coefs and all(
            referenced[id(v)][0]
            for v in solver._vars_referenced_by_obj  # noqa: SLF001
        )

    def var_name(self, i: int) -> str:
        """Name of the variable of the ``i``-th Param-dependent cost (fault messages)."""
        var_id = self.mutable.linear_coefs[i].pyomo_var_id
        return self.var_info[var_id][0].name

    def push(self, highs: Any, *, switch: bool, vals: np.ndarray | None = None) -> None:
        vals = self.values() if vals is None else vals
        if switch:
            highs.changeObjectiveSense(self.sense)
            cost = self.base_cost.copy()
            cost[self.cols] = vals[:-1]
            highs.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        elif len(self.cols):
            highs.changeColsCost(len(self.cols), self.cols, vals[:-1])
        highs.changeObjectiveOffset(float(vals[-1]))
        if self.quadratic_mutable:
            self.mutable.update()


class ParamUpdater:
    """Push all Param-dependent data of a frozen model to persistent HiGHS (compiled).

    Parameters
    ----------
    solver : pyomo.contrib.solver.solvers.highs.Highs
        A persistent solver after its first solve, with the model's structure frozen
        (:func:`gridlayers.highs.freeze_structure`).

    Notes
    -----
    :meth:`push` replaces pyomo's ``update_parameters`` (same HiGHS model afterwards);
    :meth:`set_objective` replaces pyomo's ``set_objective`` for objectives seen before:
    their sense, constant costs and compiled Param-dependent costs are cached, so switching
    back costs one ``changeColsCost``. pyomo's own bookkeeping then keeps the variables
    referenced by the first objective, which is harmless because only objectives whose
    variables all appear in constraints are cached.

    """

    def __init__(self, solver: Any) -> None:
        self.solver = solver
        self.highs = solver._solver_model  # noqa: SLF001
        self._compile_rows_and_columns()
        self._objectives: dict[int, _Objective] = {}
        self._objective = self._capture_objective()

    def _compile_rows_and_columns(self) -> None:
        s = self.solver
        row_of, col_of = s._pyomo_con_to_solver_con_map, s._pyomo_var_to_solver_var_map  # noqa: SLF001
        bounds, coefs = [], []  # (row, [col,] expressions, group key)
        for con, helpers in s._mutable_helpers.items():  # noqa: SLF001
            component = con.parent_component()
            for h in helpers:
                kind = type(h).__name__
                if kind == "_MutableLinearCoefficient":
                    coefs.append((row_of[con], col_of[h.pyomo_var_id], h.expr, component))
                elif kind == "_MutableConstraintBounds":
                    bounds.append((row_of[con], h.lower_expr, h.upper_expr, component))
                else:
                    msg = f"unknown pyomo HiGHS helper {kind} (pyomo version not supported)"
                    raise TypeError(msg)
        columns = [
            (col_of[vid], h.lower_expr, h.upper_expr, var.parent_component())
            for vid, (var, h) in s._mutable_bounds.items()  # noqa: SLF001
        ]
        self._rows = np.array([r for r, *_ in bounds], dtype=np.int32)
        self._coef_index = [(r, c) for r, c, *_ in coefs]
        self._cols = np.array([c for c, *_ in columns], dtype=np.int32)
        # pyomo objects behind each pushed number, named only in a fault message
        self._bound_cons = [
            con
            for con, helpers in s._mutable_helpers.items()  # noqa: SLF001
            for h in helpers
            if type(h).__name__ == "_MutableConstraintBounds"
        ]
        self._coef_items = [
            (con, s._vars[h.pyomo_var_id][0])  # noqa: SLF001
            for con, helpers in s._mutable_helpers.items()  # noqa: SLF001
            for h in helpers
            if type(h).__name__ == "_MutableLinearCoefficient"
        ]
        self._col_vars = [var for var, _ in s._mutable_bounds.values()]  # noqa: SLF001
        # one-pass check of everything pushed (see numerics.bad_signed): upper bounds
        # negated, so an absent bound is -inf wherever a bound is
        n_b, n_c = len(bounds), len(coefs)
        bound_sign = np.tile([1.0, -1.0], n_b + len(columns))
        self._check_sign = np.concatenate(
            [bound_sign[: 2 * n_b], np.ones(n_c), bound_sign[2 * n_b :]]
        )
        self._check_no_bound = self._check_sign != 0.0
        self._check_no_bound[2 * n_b : 2 * n_b + n_c] = False
        exprs = [e for _, lo, up, _ in bounds for e in (lo, up)] + [e for *_, e, _ in coefs]
        exprs += [e for _, lo, up, _ in columns for e in (lo, up)]
        keys = [("row", k) for *_, k in bounds for _ in range(2)]
        keys += [("coef", k) for *_, k in coefs]
        keys += [("col", k) for *_, k in columns for _ in range(2)]
        self._values = _grouped_values(keys, exprs)
        self._bound_vars = set(s._mutable_bounds)  # noqa: SLF001

    def _capture_objective(self) -> _Objective:
        obj = _Objective(self.solver, self.solver._objective)  # noqa: SLF001
        if obj.cacheable:
            self._objectives[id(obj.objective)] = obj
        self._index_loaded_vars()
        return obj

    def _index_loaded_vars(self) -> None:
        """Variables pyomo's ``load_vars`` fills: used by a constraint or the objective."""
        s = self.solver
        col_of, info = s._pyomo_var_to_solver_var_map, s._vars  # noqa: SLF001
        used = [
            vid
            for vid, (cons, sos, obj) in s._referenced_variables.items()  # noqa: SLF001
            if cons or sos or obj is not None
        ]
        self._load_vars = [info[vid][0] for vid in used]
        self._load_cols = np.array([col_of[vid] for vid in used], dtype=np.intp)

    def var_updated(self, var: Any) -> None:
        """Call after ``solver.update_variables([var])``: re-reads ``var``'s bound helpers."""
        if id(var) in self._bound_vars or id(var) in self.solver._mutable_bounds:  # noqa: SLF001
            self._compile_rows_and_columns()

    def set_objective(self, objective: Any) -> None:
        """Make ``objective`` (one of the model's) the solver's objective, current values."""
        if objective is self._objective.objective:
            return
        had_hessian = bool(self._objective.mutable.quadratic_coefs)
        cached = self._objectives.get(id(objective))
        if cached is None or cached.objective is not objective:
            n_cols = self.highs.getNumCol()
            self.solver.set_objective(objective)  # pyomo pushes the current values
            if self.highs.getNumCol() != n_cols:  # pyomo added or dropped objective-only Vars
                self._objectives.clear()
                self._compile_rows_and_columns()
            self._objective = self._capture_objective()
        else:
            cached.push(self.highs, switch=True)
            self.solver._objective = objective  # noqa: SLF001
            self.solver._mutable_objective = cached.mutable  # noqa: SLF001
            self._objective = cached
        if had_hessian and not self._objective.mutable.quadratic_coefs:
            # neither pyomo's set_objective nor a cost push removes a quadratic
            # objective's Hessian from HiGHS: without this, a linear objective after a
            # quadratic one would be solved with the old quadratic term (a QP)
            import highspy

            self.highs.passHessian(highspy.HighsHessian())

    def load_vars(self) -> None:
        """Load the last solve's primal values into the model's Vars (as pyomo's ``load_vars``).

        Same values and stale flags as ``VarData.set_value(value, skip_validation=True)``
        for each variable, written directly (no per-variable checks: the values are floats
        from HiGHS).

        Raises
        ------
        pyomo.contrib.solver.common.util.NoSolutionError
            The last solve has no primal solution.

        """
        sol = self.solver._sol  # noqa: SLF001
        if sol is None or not sol.value_valid:
            raise NoSolutionError
        values = np.asarray(sol.col_value)[self._load_cols].tolist()
        StaleFlagManager.mark_all_as_stale()
        flag = StaleFlagManager.get_flag(None)
        for var, val in zip(self._load_vars, values, strict=True):
            var._value = val  # noqa: SLF001
            var._stale = flag  # noqa: SLF001
        StaleFlagManager.mark_all_as_stale(delayed=True)

    def push(self) -> None:
        """Evaluate every Param-dependent number and write it to HiGHS."""
        self.solver._sol = None  # noqa: SLF001 - as pyomo's update_parameters
        last = self.solver._last_results_object  # noqa: SLF001
        if last is not None:
            last.solution_loader.invalidate()
        highs, vals = self.highs, self._values()
        n_rows, n_coefs = len(self._rows), len(self._coef_index)
        objective = self._objective.values()
        self._check(vals, objective, n_rows, n_coefs)  # before HiGHS sees any of it
        if n_rows:
            highs.changeRowsBounds(
                n_rows, self._rows, vals[0 : 2 * n_rows : 2], vals[1 : 2 * n_rows : 2]
            )
        for (row, col), val in zip(
            self._coef_index, vals[2 * n_rows : 2 * n_rows + n_coefs].tolist(), strict=True
        ):
            highs.changeCoeff(row, col, val)
        if len(self._cols):
            cols = vals[2 * n_rows + n_coefs :]
            highs.changeColsBounds(len(self._cols), self._cols, cols[0::2], cols[1::2])
        self._objective.push(highs, switch=False, vals=objective)

    def _check(self, vals: np.ndarray, objective: np.ndarray, n_rows: int, n_coefs: int) -> None:
        """Raise :class:`~gridlayers.numerics.BadCoefficientError` before a bad push.

        Row and column bounds may be infinite (no bound) but not NaN, wrong-signed
        infinite or beyond :data:`~gridlayers.numerics.MAX_ABS_VALUE`; matrix
        coefficients and objective costs must be finite and within it. A few
        vectorised comparisons; rows and variables are only named when one fails.
        """
        bad_cost = bad_values(objective)
        if not len(bad_signed(vals, self._check_sign, self._check_no_bound)) and not len(bad_cost):
            return
        raise push_fault(
            self._objective.objective.model().name,
            (vals, n_rows, n_coefs, objective),
            (self._bound_cons, self._coef_items, self._col_vars, self._objective.var_name),
        )
