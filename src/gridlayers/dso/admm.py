r"""The DSO's ADMM subproblem (paradigm ``iterative``) on its built-once feeder model.

Round ``r`` of a market interval (:mod:`gridlayers.coordination.admm`):

.. math::

    \min_{x} \; \mathrm{DerCost}(x) - \lambda P + \tfrac{\rho}{2} (P - p^T)^2

over the DSO's LinDistFlow model with limits and offer blocks
(:class:`~gridlayers.dso.DSOOperator`), ``P`` the interface export (MW), :math:`\lambda`
($/MWh) and :math:`p^T` (MW) the TSO's last price and schedule. :func:`attach` adds the
Params ``admm_price_usd_per_mwh``, ``admm_target_mw`` and the objective ``AdmmCost`` to
the operator's hard-limit model *before its first solve* (the structure is frozen after
it); between rounds only the two Params change (linear costs and the objective offset
pushed by :class:`~gridlayers.highs_params.ParamUpdater`, the Hessian
:math:`\rho` is a constant). Without a TSO schedule yet (the run's first interval) the
round solves the operator's linear ``DispatchCost`` with the export free: no proximal
term. Switching back to linear objectives clears the Hessian
(:meth:`~gridlayers.highs_params.ParamUpdater.set_objective`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain import BidCurve
from gridlayers.dso.offer_blocks import InfeasibleDSOError
from gridlayers.dso.operator import DSOOperator

#: HiGHS options of the ADMM QPs, each restored to HiGHS's default (:data:`HIGHS_DEFAULTS`)
#: after the QP, so every LP keeps the defaults.
#:
#: * ``primal_feasibility_tolerance`` 1e-4 (default 1e-7): HiGHS's active-set QP solver
#:   reaches its optimum with primal infeasibilities up to 3.9e-5 on the congested
#:   scenario's feeders (loss coefficients down to 2e-8) and then reports a solve error;
#:   1e-4 (MW, pu: far below the LinDistFlow error) accepts them. Only the proposal comes
#:   from the QP; the final set-points come from the disaggregation LP.
#: * ``qp_regularization_value`` 1e-4 (default 1e-7): the Hessian has rank one (only the
#:   export ``P``), so the reduced Hessian is singular along every degenerate face of the
#:   DER cost, and with 1e-7 (also 1e-6, 1e-5) the active-set solver never finished one
#:   night-time round of the congested scenario (a semi-urban feeder, target 40 MW above
#:   the reachable export: > 25 min). With 1e-4 it solves in 25 ms (292 iterations); the
#:   proposal moved by 0.006 MW between 1e-4 and 1e-3, i.e. ~6e-4 MW of bias at 1e-4,
#:   below the consensus tolerance.
#: * ``qp_iteration_limit`` 50,000 (default 2^31 - 1): a safety net. A QP that still does
#:   not finish (~2 s) fails the round like an infeasible one: the proposal is the
#:   TSO's schedule clipped to the reachable range, and the failure is recorded.
QP_OPTIONS: dict[str, float] = {
    "primal_feasibility_tolerance": 1e-4,
    "qp_regularization_value": 1e-4,
    "qp_iteration_limit": 50_000,
}
#: HiGHS's defaults of :data:`QP_OPTIONS`, restored after each QP.
HIGHS_DEFAULTS: dict[str, float] = {
    "primal_feasibility_tolerance": 1e-7,
    "qp_regularization_value": 1e-7,
    "qp_iteration_limit": 2**31 - 1,
}


@contextmanager
def _qp_options(operator: DSOOperator, quadratic: bool) -> Iterator[None]:
    """Set :data:`QP_OPTIONS` on the operator's HiGHS for a QP solve, restore them afterwards."""
    if not quadratic:
        yield
        return
    solver = operator._lp.solver  # noqa: SLF001 - the operator's persistent HiGHS
    options = solver.config.solver_options
    before = {key: options.get(key) for key in QP_OPTIONS}
    for key, value in QP_OPTIONS.items():
        options[key] = value  # used if this is the model's first solve
        if operator._lp.solved:  # noqa: SLF001
            solver._solver_model.setOptionValue(key, value)  # noqa: SLF001
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                options.pop(key, None)
            else:
                options[key] = value
            restored = HIGHS_DEFAULTS[key] if value is None else value
            solver._solver_model.setOptionValue(key, restored)  # noqa: SLF001


def attach(operator: Any, rho: float) -> DsoSubproblem:
    """Add the ADMM objective to ``operator``'s model; return the round solver.

    Parameters
    ----------
    operator : DSOOperator
        Built, not yet solved (its LP structure freezes at the first solve).
    rho : float
        ADMM penalty (($/MWh) per MW).

    Raises
    ------
    TypeError
        The LDA's DSO strategy is not the optimal :class:`~gridlayers.dso.DSOOperator`.
    RuntimeError
        The operator's model was solved already.

    """
    if not isinstance(operator, DSOOperator):
        msg = f"the iterative paradigm needs the optimal DSO, not {type(operator).__name__}"
        raise TypeError(msg)
    if operator._lp.solved:  # noqa: SLF001 - the structure is frozen from then on
        msg = "attach the ADMM objective before the DSO's first solve"
        raise RuntimeError(msg)
    return DsoSubproblem(operator, rho)


class DsoSubproblem:
    """One LDA's ADMM rounds (see the module); use :func:`attach` to build it."""

    def __init__(self, operator: DSOOperator, rho: float) -> None:
        self.operator, self.rho = operator, float(rho)
        m = operator.model
        m.admm_price_usd_per_mwh = pyo.Param(
            initialize=0.0, mutable=True, within=pyo.Reals, doc="ADMM price lambda ($/MWh)"
        )
        m.admm_target_mw = pyo.Param(
            initialize=0.0, mutable=True, within=pyo.Reals, doc="TSO schedule p^T (MW)"
        )
        p_int = m.feeder.InterfaceP
        m.AdmmCost = pyo.Objective(
            expr=m.DerCost
            - m.admm_price_usd_per_mwh * p_int
            + 0.5 * self.rho * (p_int - m.admm_target_mw) ** 2,
            sense=pyo.minimize,
            doc="DER cost - lambda P + rho/2 (P - p^T)^2 ($/h)",
        )
        m.AdmmCost.deactivate()
        self._inputs: tuple[pd.Series, pd.Series, dict[str, BidCurve]] | None = None
        self._range: tuple[float, float] | None = None
        self._hard_infeasible = False  # this interval's hard-limit model has no dispatch

    def set_interval(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> None:
        """Write the interval's forecast injections (MW, Mvar per bus) and device offers."""
        self.operator.set_interval(p_fixed_mw, q_fixed_mvar, offers)
        self._inputs = (p_fixed_mw, q_fixed_mvar, dict(offers))
        self._range = None
        self._hard_infeasible = False

    def propose(
        self, price_usd_per_mwh: float, target_mw: float | None
    ) -> tuple[float, str | None]:
        r"""Solve one round; return the proposed export ``p^D`` (MW) and a failure or None.

        Parameters
        ----------
        price_usd_per_mwh : float
            :math:`\lambda` ($/MWh).
        target_mw : float or None
            The TSO's schedule :math:`p^T` (MW); ``None``: no proximal term.

        Notes
        -----
        If the hard-limit model is infeasible (no dispatch within the limits), the
        proposal is ``target_mw`` (or the middle of the range) clipped to the exports
        reachable with the least limit slack
        (:meth:`~gridlayers.dso.DSOOperator.interface_range`), and the failure message is
        returned; the award is disaggregated with the soft-limit fallback later. The
        feasible set does not change within an interval, so later rounds of that
        interval skip the solve and return the clipped target with no new failure.

        Raises
        ------
        InfeasibleDSOError
            Not even the least-violation range could be found.

        """
        if self._hard_infeasible:
            return self._clipped(target_mw), None
        op, m = self.operator, self.operator.model
        m.admm_price_usd_per_mwh.set_value(float(price_usd_per_mwh))
        if target_mw is None:
            m.interface_price_usd_per_mwh.set_value(float(price_usd_per_mwh))
            objective = m.DispatchCost
        else:
            m.admm_target_mw.set_value(float(target_mw))
            objective = m.AdmmCost
        try:
            with _qp_options(op, quadratic=target_mw is not None):
                p_mw, _ = op.solve_free_export(objective)
        except InfeasibleDSOError as exc:
            if self._range is None:
                self._range = op.interface_range(*self._inputs)
            self._hard_infeasible = True
            return self._clipped(target_mw), str(exc)
        return p_mw, None

    def _clipped(self, target_mw: float | None) -> float:
        """``target_mw`` (MW; ``None``: the middle) clipped to the least-slack range."""
        lo, hi = self._range
        wanted = 0.5 * (lo + hi) if target_mw is None else float(target_mw)
        return min(max(wanted, lo), hi)
