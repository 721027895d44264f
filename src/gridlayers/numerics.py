"""Numerical faults of the interval models: kinds, cheap value checks, infeasibility diagnosis.

Every numerical fault the co-simulation survives is recorded as an ``event`` row whose
``kind`` is one of :data:`FAULT_KINDS` and counted per kind in the KPIs
(``numerical_faults``, :mod:`gridlayers.results.kpis`). See ``docs/faults.md``.

* :func:`bad_values` / :func:`bad_bounds` find non-finite or extreme numbers with a few
  vectorised numpy operations (no per-element Python), so they run before every push of
  changed coefficients, bounds and costs into the persistent HiGHS models
  (:meth:`gridlayers.highs_params.ParamUpdater.push`).
* :func:`diagnose_infeasibility` names the constraint families an infeasible LP has to
  relax (an elastic re-solve on a copy of the HiGHS model; the persistent model and its
  basis are left alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

#: Event kinds of numerical faults (``event.kind``), counted per paradigm in the KPIs.
POWERFLOW_NOT_CONVERGED = "powerflow_not_converged"
DSO_INFEASIBLE = "dso_infeasible"
TSO_INFEASIBLE = "tso_infeasible"
SOLVER_TIME_LIMIT = "solver_time_limit"
BAD_COEFFICIENT = "bad_coefficient"
FAULT_KINDS = (
    POWERFLOW_NOT_CONVERGED,
    DSO_INFEASIBLE,
    TSO_INFEASIBLE,
    SOLVER_TIME_LIMIT,
    BAD_COEFFICIENT,
)
#: pyomo component of a feeder model (DSO LPs, Total TSO blocks) -> constraint family
#: named in fault messages.
FEEDER_FAMILIES = {
    "VmMin": "voltage lower limits at buses",
    "VmMax": "voltage upper limits at buses",
    "ThermalLimit": "thermal limits of branches (by child bus)",
    "PBalance": "active power balance at buses",
    "QBalance": "reactive power balance at buses",
    "VoltageDrop": "voltage drop of branches (by child bus)",
    "RootVoltage": "root voltage",
    "InterfaceP": "interface capacity (award band)",
    "OfferBlock": "device offer ranges",
    "Move": "redispatch moves",
    "VmSq": "squared voltage",
    "VmSlackLow": "voltage slack caps",
    "VmSlackHigh": "voltage slack caps",
    "ThermalSlack": "thermal slack caps",
}
#: Coefficients, costs and finite bounds larger than this in magnitude are rejected
#: (HiGHS treats 1e20 as infinite; anything near 1e9 is a unit or data error here).
MAX_ABS_VALUE = 1e9
#: Entries named in a fault message (the count of the rest is given).
MAX_NAMED = 5
#: HiGHS time limit of one infeasibility diagnosis (s).
DIAGNOSIS_TIME_LIMIT_S = 10.0
#: Elastic variables above this count as used in a diagnosis (model units).
ELASTIC_TOL = 1e-9


class BadCoefficientError(ValueError):
    """A non-finite or extreme number was about to enter an interval model.

    Attributes
    ----------
    kind : str
        :data:`BAD_COEFFICIENT`.
    entries : list of str
        The offending rows / columns with their values, e.g. ``"row 'Balance[3]'
        lower bound (nan)"``.

    """

    kind = BAD_COEFFICIENT

    def __init__(self, where: str, entries: Sequence[str], n_bad: int) -> None:
        self.entries = list(entries)
        more = f" and {n_bad - len(entries)} more" if n_bad > len(entries) else ""
        super().__init__(f"{where}: non-finite or extreme value in {'; '.join(entries)}{more}")


def bad_values(values: np.ndarray) -> np.ndarray:
    """Return the positions of non-finite entries or entries above :data:`MAX_ABS_VALUE`.

    One comparison over the array (NaN and inf both fail ``|x| <= MAX_ABS_VALUE``);
    the positions are only computed when something is wrong.
    """
    ok = np.abs(values) <= MAX_ABS_VALUE
    if ok.all():
        return _NONE
    return np.flatnonzero(~ok)


def bad_bounds(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Return the positions of invalid ``(lower, upper)`` bound pairs.

    Valid: finite with ``|x| <= MAX_ABS_VALUE``, ``lower = -inf`` or ``upper = +inf``
    (no bound). Invalid: NaN, a wrong-signed infinity or an extreme finite bound.
    """
    ok = ((np.abs(lower) <= MAX_ABS_VALUE) | (lower == -np.inf)) & (
        (np.abs(upper) <= MAX_ABS_VALUE) | (upper == np.inf)
    )
    if ok.all():
        return _NONE
    return np.flatnonzero(~ok)


_NONE = np.zeros(0, dtype=np.intp)


def bad_signed(values: np.ndarray, sign: np.ndarray, no_bound: np.ndarray) -> np.ndarray:
    """Return the invalid positions of a mixed array of bounds and coefficients, in one pass.

    Parameters
    ----------
    values : numpy.ndarray
        E.g. all row bounds, coefficients and column bounds pushed to HiGHS at once.
    sign : numpy.ndarray
        ``+1`` for lower bounds and coefficients, ``-1`` for upper bounds, so that "no
        bound" becomes ``-inf`` for both kinds of bound.
    no_bound : numpy.ndarray of bool
        Where ``-inf`` (after ``sign``) means "no bound" and is valid (the bounds).

    Notes
    -----
    Same verdicts as :func:`bad_bounds` / :func:`bad_values` on the parts; a product and
    two comparisons over one contiguous array, the rest only on the few entries below
    ``-MAX_ABS_VALUE`` (the absent bounds).

    """
    y = values * sign
    ok_high = y <= MAX_ABS_VALUE  # False for NaN, +inf (a wrong-signed bound) and extremes
    low = np.flatnonzero(y < -MAX_ABS_VALUE)
    low_bad = low[~(no_bound[low] & (y[low] == -np.inf))]
    if ok_high.all():
        return low_bad
    return np.union1d(np.flatnonzero(~ok_high), low_bad)


def describe(positions: np.ndarray, label: Callable[[int], str]) -> tuple[list[str], int]:
    """Return labels of the first :data:`MAX_NAMED` bad positions and their count."""
    return [label(int(i)) for i in positions[:MAX_NAMED]], len(positions)


def check_injections(where: str, values: Any, row_label: Callable[[Any], str]) -> None:
    """Raise :class:`BadCoefficientError` if a per-bus input Series has a bad entry.

    Parameters
    ----------
    where : str
        What is being set up (the start of the message), e.g. ``"DSO input p_fixed_mw"``.
    values : pandas.Series
        Values by label (e.g. MW per pandapower bus).
    row_label : callable
        Label -> name of the model row it enters, for the message.

    """
    array = np.asarray(values, dtype=float)
    bad = bad_values(array)
    if len(bad):
        index = list(values.index)
        names, n = describe(bad, lambda i: f"{row_label(index[i])} ({float(array[i])!r})")
        raise BadCoefficientError(where, names, n)


def push_fault(
    model: str,
    values: tuple[np.ndarray, int, int, np.ndarray],
    names: tuple[Sequence[Any], Sequence[tuple[Any, Any]], Sequence[Any], Callable[[int], str]],
) -> BadCoefficientError:
    """Return the error naming every bad number of a rejected push (after a failed check).

    Parameters
    ----------
    model : str
        The model's name (start of the message).
    values : tuple
        ``(vals, n_rows, n_coefs, objective)``: the pushed array (row bound pairs,
        coefficients, column bound pairs), its part sizes and the objective's costs plus
        its constant last.
    names : tuple
        The pyomo constraint of each row bound pair, ``(constraint, variable)`` of each
        coefficient, the variable of each column bound pair, and ``cost index -> name``.

    """
    vals, n_rows, n_coefs, objective = values
    bound_cons, coef_items, col_vars, cost_name = names
    rows = vals[: 2 * n_rows]
    coefs = vals[2 * n_rows : 2 * n_rows + n_coefs]
    cols = vals[2 * n_rows + n_coefs :]

    def pair(a: np.ndarray, i: int) -> str:
        return f"[{float(a[2 * i])!r}, {float(a[2 * i + 1])!r}]"

    labels = (
        (bad_bounds(rows[0::2], rows[1::2]),
         lambda i: f"row {bound_cons[i].name!r} bounds {pair(rows, i)}"),
        (bad_values(coefs),
         lambda i: f"row {coef_items[i][0].name!r}, column {coef_items[i][1].name!r} "
                   f"coefficient ({float(coefs[i])!r})"),
        (bad_bounds(cols[0::2], cols[1::2]),
         lambda i: f"column {col_vars[i].name!r} bounds {pair(cols, i)}"),
        (bad_values(objective[:-1]),
         lambda i: f"objective cost of column {cost_name(i)!r} ({float(objective[i])!r})"),
    )  # fmt: skip
    entries: list[str] = []
    n_bad = 0
    for positions, label in labels:
        shown, n = describe(positions, label)
        entries += shown
        n_bad += n
    if not abs(objective[-1]) <= MAX_ABS_VALUE:
        entries.append(f"objective constant ({float(objective[-1])!r})")
        n_bad += 1
    return BadCoefficientError(f"model {model!r}", entries[:MAX_NAMED], n_bad)


# --------------------------------------------------------------- infeasibility diagnosis
def _family(component: str, families: dict[str, str]) -> str:
    return families.get(component, component)


def _grouped(items: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family, index in items:
        out.setdefault(family, []).append(index)
    return out


def summarise_families(groups: dict[str, list[Any]]) -> str:
    """``"voltage upper limits at buses 12, 14; interface capacity"`` from family -> indices."""
    parts = []
    for family, indices in groups.items():
        shown = [i for i in indices if i is not None][:MAX_NAMED]
        if not shown:
            parts.append(family)
            continue
        more = f" (+{len(indices) - len(shown)})" if len(indices) > len(shown) else ""
        parts.append(f"{family} {', '.join(map(str, shown))}{more}")
    return "; ".join(parts)


def _component_and_index(obj: Any) -> tuple[str, Any]:
    """Return a pyomo component data's parent name and its index (``None`` if scalar)."""
    parent = obj.parent_component()
    index = obj.index() if parent.is_indexed() else None
    if isinstance(index, tuple):
        index = index[0]  # e.g. ThermalLimit[branch, facet]: the branch
    return parent.local_name, index


def _elastic_copy(highs: Any) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """Return a phase-1 copy of ``highs``'s LP with elastic inequality rows and bounds.

    Returns the copy, the rows and the columns whose limit each elastic column relaxes
    (``-1`` where it relaxes a column bound / a row), and the number of original columns.
    """
    import highspy

    inf = highspy.kHighsInf
    lp = highs.getLp()
    n = lp.num_col_
    row_lo, row_up = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    col_lo, col_up = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
    copy = highspy.Highs()
    copy.setOptionValue("output_flag", False)
    copy.setOptionValue("time_limit", DIAGNOSIS_TIME_LIMIT_S)
    copy.passModel(lp)
    copy.changeColsCost(n, np.arange(n, dtype=np.int32), np.zeros(n))
    ineq = np.flatnonzero(row_lo != row_up)  # equality rows (physics) stay hard
    up_rows = ineq[row_up[ineq] < inf]
    lo_rows = ineq[row_lo[ineq] > -inf]
    rows = np.concatenate([up_rows, lo_rows]).astype(np.int32)
    signs = np.concatenate([-np.ones(len(up_rows)), np.ones(len(lo_rows))])
    k = len(rows)
    copy.addCols(
        k, np.ones(k), np.zeros(k), np.full(k, inf), k, np.arange(k, dtype=np.int32), rows, signs
    )
    bounded = np.flatnonzero(((col_lo > -inf) | (col_up < inf)) & (col_lo != col_up))
    b = len(bounded)
    copy.changeColsBounds(b, bounded.astype(np.int32), np.full(b, -inf), np.full(b, inf))
    first = n + k  # elastic d+ then d- per bounded column: x + d+ - d- within its bounds
    copy.addCols(2 * b, np.ones(2 * b), np.zeros(2 * b), np.full(2 * b, inf), 0, [], [], [])
    starts = np.arange(0, 3 * b, 3, dtype=np.int32)
    index = np.column_stack([bounded, first + np.arange(b), first + b + np.arange(b)]).ravel()
    value = np.tile([1.0, 1.0, -1.0], b)
    copy.addRows(b, col_lo[bounded], col_up[bounded], 3 * b, starts, index.astype(np.int32), value)
    relaxed_rows = np.concatenate([rows, np.full(2 * b, -1)])
    relaxed_cols = np.concatenate([np.full(k, -1), bounded, bounded])
    return copy, relaxed_rows, relaxed_cols, n


def diagnose_infeasibility(solver: Any, families: dict[str, str]) -> str:
    """Name the constraint families an infeasible LP must relax to become feasible.

    Parameters
    ----------
    solver : pyomo.contrib.solver.solvers.highs.Highs
        Persistent solver whose HiGHS model is (believed) infeasible.
    families : dict of str to str
        pyomo component name (constraint or variable) -> family name, e.g.
        ``{"VmMax": "voltage upper limits at buses"}``; unknown components are named
        as is.

    Returns
    -------
    str
        E.g. ``"voltage upper limits at buses 12, 14 (+3)"``, or why nothing was found.

    Notes
    -----
    Elastic (phase-1) re-solve on a copy of the HiGHS model (the persistent model, its
    basis and solution are untouched; the objective and any Hessian are dropped): every
    inequality row and every variable bound gets a non-negative elastic variable
    costing 1 per unit of violation, equality rows (the physics: balances, voltage
    drops, flow definitions) stay hard, and the families whose elastic variables are
    used (> :data:`ELASTIC_TOL`) are reported. HiGHS's IIS (``Highs.getIis``) was tried
    first but returned no or invalid subsystems on the DSO's LPs (HiGHS 1.16). Runs only
    after a failure; ~0.1 s on a 1,600-row DSO LP.

    """
    highs = solver._solver_model  # noqa: SLF001
    try:
        copy, rows, cols, n = _elastic_copy(highs)
        copy.run()
        status = copy.getModelStatus().name
        if status != "kOptimal":
            return f"elastic re-solve ended {status}"
        used = np.flatnonzero(np.asarray(copy.getSolution().col_value)[n:] > ELASTIC_TOL)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must never fail the fallback
        return f"no diagnosis ({type(exc).__name__}: {exc})"
    if not len(used):
        return "nothing to relax (numerical trouble rather than infeasibility)"
    row_con = {r: c for c, r in solver._pyomo_con_to_solver_con_map.items()}  # noqa: SLF001
    col_var = {c: solver._vars[v][0] for v, c in solver._pyomo_var_to_solver_var_map.items()}  # noqa: SLF001
    items = []
    for e in used.tolist():
        if rows[e] >= 0:
            name, index = _component_and_index(row_con[int(rows[e])])
            items.append((_family(name, families), index))
        else:
            name, index = _component_and_index(col_var[int(cols[e])])
            items.append((_family(name, families), index))
    return summarise_families(_grouped(dict.fromkeys(items)))
