"""Zonal prices of a solved plan: the duals of the nodal balance with investments fixed.

A MILP has no duals. :func:`zone_prices_usd_per_mwh` compiles the solved model again,
fixes every investment decision (``m.Investment_Variables``) and every integer column
at its solved value, solves the remaining operational LP with HiGHS and converts the
duals of ``ZonePowerBalance[y, z, d, h]`` to $/MWh:

    lambda[y, z, d, h] = dual / (obj_scale * DF(y) * tau_d)

(the objective is ``obj_scale * sum_y DF(y) * sum_d tau_d * sum_h cost``, so a MW more
withdrawal in one hour of day ``d`` of epoch ``y`` costs ``dual`` scaled $). These are
short-run prices of the planned system, the planner's counterpart of the
co-simulation's LMPs; the operations->planning loop compares the two
(:mod:`gridlayers.loop.prices`).
"""

from __future__ import annotations

import highspy
import numpy as np
import pyomo.environ as pyo

from gridlayers.planner.solve import PlannerSolveError, _compile

#: HiGHS model status of a solved LP.
_OPTIMAL = highspy.HighsModelStatus.kOptimal


def _fixed_columns(m: pyo.ConcreteModel, columns: list) -> np.ndarray:
    """Return a mask of the columns to fix: investments and integer variables."""
    invest = {id(getattr(m, name)) for name in m.Investment_Variables}
    return np.array(
        [v.is_integer() or v.is_binary() or id(v.parent_component()) in invest for v in columns],
        dtype=bool,
    )


def zone_prices_usd_per_mwh(
    m: pyo.ConcreteModel, obj_scale: float, epoch: int | None = None
) -> dict[tuple[str, int, int], float]:
    """Return the zonal prices of a solved planner model in one epoch ($/MWh).

    Parameters
    ----------
    m : pyomo.environ.ConcreteModel
        A planner model whose variables hold a solution (after
        :func:`~gridlayers.planner.solve.solve_model`); not modified.
    obj_scale : float
        The model's objective scale (``PlannerConfig.obj_scale``), 1/$.
    epoch : int, optional
        Epoch ``y``; default the last.

    Returns
    -------
    dict
        ``{(zone, day, hour): price}``, $/MWh: the cost of one more MW withdrawn at the
        zone for that hour, with every build, upgrade and cable fixed.

    Raises
    ------
    PlannerSolveError
        The operational LP did not solve to optimality.

    """
    y = m.EPOCHS.last() if epoch is None else epoch
    lp, columns, _offset, sign, rows = _compile(m)
    values = np.array([float(v.value or 0.0) for v in columns])
    fixed = _fixed_columns(m, columns)
    is_int = np.array([v.is_integer() or v.is_binary() for v in columns], dtype=bool)
    values = np.where(is_int, np.round(values), values)
    lower, upper = np.array(lp.col_lower_), np.array(lp.col_upper_)
    lp.col_lower_ = np.where(fixed, np.clip(values, lower, upper), lower)
    lp.col_upper_ = np.where(fixed, np.clip(values, lower, upper), upper)
    lp.integrality_ = []
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != _OPTIMAL:
        msg = f"operational LP of the plan: {h.modelStatusToString(h.getModelStatus())}"
        raise PlannerSolveError(msg)
    duals = np.asarray(h.getSolution().row_dual)
    balance = m.ZonePowerBalance
    out = {}
    for row, con in enumerate(rows):
        if con.parent_component() is not balance:
            continue
        yy, z, d, hh = con.index()
        if yy != y:
            continue
        weight = obj_scale * pyo.value(m.discount_factor[yy]) * pyo.value(m.day_days_per_yr[d])
        out[z, d, hh] = sign * float(duals[row]) / weight  # d(cost)/d(withdrawal)
    return out
