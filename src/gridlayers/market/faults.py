"""Numerical faults of the TSO clearing: infeasibility naming, power-balance slack, checks.

Used by :meth:`gridlayers.market.TransmissionMarket.clear` (``docs/market.md``,
"Numerical faults"):

* an infeasible clearing (e.g. must-run generation above the load, a fixed participant
  withdrawal a congested bus cannot import) is diagnosed (:func:`diagnose`: the
  constraint families an elastic re-solve has to relax) and then cleared once more with
  power-balance slack at every bus priced at the value of lost load
  (:func:`clear_with_balance_slack`), on a copy of the HiGHS model: the persistent model
  stays as it was;
* participant bids are checked for non-finite or extreme numbers before they are written
  (:func:`check_bids`); every later push into HiGHS is checked by
  :meth:`gridlayers.highs_params.ParamUpdater.push`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.numerics import (
    BAD_COEFFICIENT,
    FEEDER_FAMILIES,
    MAX_NAMED,
    TSO_INFEASIBLE,
    BadCoefficientError,
    bad_values,
    describe,
    diagnose_infeasibility,
)

#: pyomo component of the market model -> constraint family named in fault messages
#: (Total TSO's embedded feeder blocks use the DSO's names).
FAMILIES = {
    **FEEDER_FAMILIES,
    "Balance": "power balance at buses",
    "FlowDefinition": "branch flow definition of branches",
    "Flow": "branch flow limits of branches",
    "Gen": "generator limits of units",
    "Unserved": "unserved-load caps at buses",
    "BidBlock": "bid quantities of participants",
    "CostSeg": "generator cost segments of units",
    "CostSegLink": "generator cost segments of units",
}
#: Balance slack below this (MW) counts as unused.
SLACK_TOL_MW = 1e-6


def diagnose(solver: Any) -> str:
    """Name the constraint families of an infeasible market LP (elastic re-solve on a copy)."""
    return diagnose_infeasibility(solver, FAMILIES)


def check_bids(
    p_min: Mapping[str, float],
    quantity: Mapping[tuple[str, int], float],
    price: Mapping[tuple[str, int], float],
) -> None:
    """Raise :class:`~gridlayers.numerics.BadCoefficientError` for a bad bid number.

    Parameters
    ----------
    p_min : mapping of str to float
        Injection floor per participant (MW).
    quantity, price : mapping of (str, int) to float
        Block width (MW) and price ($/MWh) per participant and block slot.

    """
    for what, values in (
        ("part_p_min_mw", p_min),
        ("bid_quantity_mw", quantity),
        ("bid_price_usd_per_mwh", price),
    ):
        array = np.fromiter(values.values(), dtype=float, count=len(values))
        bad = bad_values(array)
        if len(bad):
            keys = list(values)
            names, n = describe(
                bad, lambda i, w=what, k=keys, a=array: f"{w}[{k[i]}] ({float(a[i])!r})"
            )
            raise BadCoefficientError("market bids", names, n)


def clear_with_balance_slack(
    highs: Any, balance_rows: np.ndarray, penalty_usd_per_mwh: float
) -> tuple[Any, float, np.ndarray] | None:
    """Solve a copy of the market's HiGHS model with priced slack on every power balance.

    Parameters
    ----------
    highs : highspy.Highs
        The persistent market model (left untouched).
    balance_rows : numpy.ndarray
        HiGHS row of ``Balance[n]`` per model bus ``n``.
    penalty_usd_per_mwh : float
        Price of one MW of balance slack for one hour (the value of lost load).

    Returns
    -------
    tuple or None
        ``(solution, objective_usd_per_h, slack_mw)``: a ``highspy.HighsSolution`` over the
        original columns and rows (LMPs are its balance duals, so a bus with slack is priced
        at about ``+-penalty``), the objective including the penalty ($/h), and the slack
        per model bus (MW; positive: injection short, negative: injection spilled).
        ``None`` if even this copy has no optimum.

    Notes
    -----
    Two non-negative columns per balance row: a supply ``s+`` (coefficient +1) and a
    spill ``s-`` (coefficient -1), each costing the penalty, so any over-supply (must-run
    above the load) or shortfall (a fixed withdrawal no unit or line can serve) is
    balanced at the value of lost load.

    """
    import highspy

    inf = highspy.kHighsInf
    copy = highspy.Highs()
    copy.setOptionValue("output_flag", False)
    copy.passModel(highs.getModel())  # incl. the Hessian of a QP
    for name in ("time_limit", "qp_regularization_value", "simplex_dual_edge_weight_strategy"):
        copy.setOptionValue(name, highs.getOptionValue(name)[1])
    n_col, n_row = highs.getNumCol(), highs.getNumRow()
    k = len(balance_rows)
    rows = np.concatenate([balance_rows, balance_rows]).astype(np.int32)
    values = np.concatenate([np.ones(k), -np.ones(k)])
    copy.addCols(
        2 * k,
        np.full(2 * k, float(penalty_usd_per_mwh)),
        np.zeros(2 * k),
        np.full(2 * k, inf),
        2 * k,
        np.arange(2 * k, dtype=np.int32),
        rows,
        values,
    )
    copy.run()
    if copy.getModelStatus().name != "kOptimal":
        return None
    full = copy.getSolution()
    solution = highspy.HighsSolution()
    solution.col_value = list(full.col_value)[:n_col]
    solution.col_dual = list(full.col_dual)[:n_col]
    solution.row_value = list(full.row_value)[:n_row]
    solution.row_dual = list(full.row_dual)
    solution.value_valid, solution.dual_valid = full.value_valid, full.dual_valid
    extra = np.asarray(full.col_value)[n_col:]
    slack = extra[:k] - extra[k:]
    slack[np.abs(slack) < SLACK_TOL_MW] = 0.0
    return solution, float(copy.getInfo().objective_function_value), slack


def slack_summary(slack_mw: np.ndarray, bus_of_node: Mapping[int, int]) -> str:
    """``"short 12.000 MW at buses 4; spilled 3.500 MW at buses 7, 9"`` (net bus indices)."""
    parts = []
    for label, mask in (("short", slack_mw > 0), ("spilled", slack_mw < 0)):
        nodes = np.flatnonzero(mask)
        if len(nodes):
            buses = ", ".join(str(bus_of_node.get(int(n), n)) for n in nodes[:MAX_NAMED])
            more = f" (+{len(nodes) - MAX_NAMED})" if len(nodes) > MAX_NAMED else ""
            total = float(np.abs(slack_mw[nodes]).sum())
            parts.append(f"{label} {total:.3f} MW at buses {buses}{more}")
    return "; ".join(parts) or "no slack used"


def reject_bad_bids(
    bids: Mapping[str, BidCurve], faults: list[dict[str, str]]
) -> dict[str, BidCurve]:
    """Return ``bids`` with every bid holding a bad number replaced by ``BidCurve.fixed(0)``.

    Each rejection is appended to ``faults`` (``{"kind": "bad_coefficient", "message"}``).
    """
    out = dict(bids)
    for name, curve in bids.items():
        blocks = dict(enumerate(curve.blocks))
        try:
            check_bids(
                {name: float(curve.p_min_mw)},
                {(name, k): float(b.quantity_mw) for k, b in blocks.items()},
                {(name, k): float(b.price_usd_per_mwh) for k, b in blocks.items()},
            )
        except BadCoefficientError as exc:
            out[name] = BidCurve.fixed(0.0)
            message = f"{exc}; the bid is rejected (participant fixed at 0 MW)"
            faults.append({"kind": BAD_COEFFICIENT, "message": message})
    return out


def clear_infeasible(
    solver: Any,
    condition: str,
    balance_rows: np.ndarray,
    penalty_usd_per_mwh: float,
    bus_of_node: Mapping[int, int],
) -> tuple[str, float | None, dict[str, str] | None]:
    """Name what makes a clear infeasible and clear it with power-balance slack.

    Parameters
    ----------
    solver : pyomo.contrib.solver.solvers.highs.Highs
        The market's persistent solver after the infeasible solve (left untouched, but
        for its stored solution, set to the slack clear's as :func:`gridlayers.highs.run`
        stores one).
    condition : str
        The infeasible solve's termination condition.
    balance_rows : numpy.ndarray
        HiGHS row of ``Balance[n]`` per model bus.
    penalty_usd_per_mwh : float
        Price of balance slack ($/MWh; the value of lost load).
    bus_of_node : mapping of int to int
        Model bus -> net bus named in the message.

    Returns
    -------
    tuple
        ``(status, objective_usd_per_h, fault)``; ``fault`` is ``None`` (and ``status``
        the error message) if even the slack clear failed.

    """
    families = diagnose(solver)
    cleared = clear_with_balance_slack(solver._solver_model, balance_rows, penalty_usd_per_mwh)  # noqa: SLF001
    if cleared is None:
        return f"market clearing failed: {condition} ({families}), even with slack", None, None
    solution, objective, slack = cleared
    solver._sol = solution  # noqa: SLF001 - as gridlayers.highs.run stores it
    message = (
        f"market clearing {condition}: {families}; cleared with power-balance slack at "
        f"{penalty_usd_per_mwh:g} $/MWh: {slack_summary(slack, bus_of_node)}"
    )
    return f"{condition}+balanceSlack", objective, {"kind": TSO_INFEASIBLE, "message": message}
