r"""The DSO of one LDA: virtual resource, disaggregation, redispatch, Total-TSO extension.

:class:`DSOOperator` is built once per LDA from a :class:`~gridlayers.dso.LinDistFlowFeeder`
and its DER devices (device id -> pandapower bus). Its pyomo model (feeder with limits +
every device's offer blocks, :mod:`gridlayers.dso.offer_blocks`) is built once and only
its mutable Params change per interval; it is solved by persistent HiGHS.

Notes
-----
One model (LinDistFlow with limits, ``0 <= x_dk <= q_dk``) with three prebuilt
objectives serves three LPs; between them only the objective choice and the bounds of
``InterfaceP`` (``P``) change, pushed incrementally to the persistent solver:

* ``MinExport`` (``min P``) and ``MaxExport`` (``min -P``), ``P`` free: the virtual
  resource's feasible range;
* ``DispatchCost`` (``min sum_dk pi_dk x_dk - lambda P``) with
  ``A - delta <= P <= A + delta``, ``delta = 1e-7 |A|`` (``AWARD_BAND_REL``): the
  disaggregation of an award ``A`` at interface price ``lambda``, i.e. the least-cost DER
  dispatch delivering ``A`` (to ``delta``).

**Re-linearisation** (``max_relinearisations``, default 3): the losses of the first
disaggregation LP are linearised at the interval's midpoint point (as the virtual
resource's). Then, up to ``max_relinearisations`` times, the losses are re-linearised at
the solution's injections (:func:`~gridlayers.dso.offer_blocks.setpoint_operating_point`)
and the LP is solved again, until no set-point moves by more than ``RELINEARISE_TOL_MW``.
The dispatched point is then where the linear model is exact (~1e-6 pu against the AC
power flow of the forecast), so the feeder limits hold on the AC power flow.

The new linearisation also corrects the losses, so the last set-points no longer export
exactly ``A`` but ``A'`` (the loss correction the midpoint linearisation missed: 1e-4 MW
near the midpoint, 0.3 MW at the bottom of a wide range on the rural feeder). The
re-solves hold the interchange in ``[min(A, A') - delta, max(A, A') + delta]``: within
the correction the DSO trades its DER against the interchange at the interface price
(the LP's ``- lambda P``), i.e. it fills the award with DER cheaper than ``lambda`` and
does not buy a loss correction from a dearer block (which at a kink of the curve would
also flip the DLMPs for a few kW). ``Disaggregation.interface_p_mw`` is the export the
set-points produce, between ``A'`` and ``A``. If a limit makes that band infeasible, the
interchange moves to the nearest deliverable export (one or two extra LPs); if even
that fails, the last feasible solution is kept.

**Soft-limit fallback** (``slack_penalty_usd_per_mwh``, default 5,000 $/MWh): when an
LP on the hard-limit model is infeasible (e.g. the uncontrolled PV alone overvolts the
feeder), the call is repeated on a second model whose voltage and thermal limits have
slack priced per MW-equivalent (:func:`gridlayers.dso.opf.set_slack_penalty`; built on
first use, updated in place; ``DispatchCost`` there includes ``SlackCost``, and a
``MinSlack`` objective exists). The hard model is never touched by it, so results that
need no slack are bit for bit those without the fallback, and the next call starts on
the hard model again (the slack is "off").

* :meth:`DSOOperator.virtual_resource` and :meth:`DSOOperator.interface_range`: one LP
  ``min SlackCost`` finds the least violation; every slack variable is capped at its
  value (``SLACK_CAP_TOL_PU`` / ``SLACK_CAP_TOL_MVA`` above) and the range and curve are
  built within those caps (the curve's cost includes ``SlackCost``): the exports
  reachable with the least violation. The caps are removed afterwards.
* :meth:`DSOOperator.disaggregate`: the same LP and re-linearisations on the soft model,
  slack free: the award at least DER cost plus slack penalty.
* :meth:`DSOOperator.redispatch`: see :mod:`gridlayers.dso.redispatch`.

The results carry ``slack`` (:func:`gridlayers.dso.opf.slack_report`) and
``hard_limit_failure``; ``last_slack`` holds the last call's. The penalty is not part of
any reported DER cost. With ``slack_penalty_usd_per_mwh=None`` an infeasible LP raises
:class:`~gridlayers.dso.offer_blocks.InfeasibleDSOError` as before.

DLMPs are the duals of the nodal balances ``PBalance`` of the disaggregation LP
(:func:`gridlayers.dso.opf.dlmp_usd_per_mwh`): the marginal cost of serving one more MW
at a bus with the interchange held at the award. The tiny band lets the interchange
itself be the marginal resource at price ``lambda`` when the LDA's own marginal cost is
not unique (award at a kink of the DER cost curve, as a TSO clearing typically gives):
then the root DLMP is ``lambda``. With ``A = 0`` the band is empty, so the DLMPs are set
by the LDA's own resources only and do not depend on ``lambda`` (layered pricing, see
``docs/dso.md``).

"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain.bid_curve import BidBlock, BidCurve
from gridlayers.dso import opf
from gridlayers.dso.faults import (
    DSOBadCoefficientError,
    check_fixed_injections,
    soft_fallback_helps,
)
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.linear_system import OperatingPoint
from gridlayers.dso.offer_blocks import (
    DerSolution,
    InfeasibleDSOError,
    OfferArrays,
    add_der_to_block,
    check_offers,
    injections_with_setpoints,
    midpoint_operating_point,
    set_offers,
    setpoint_operating_point,
)
from gridlayers.dso.persistent_lp import PersistentLP
from gridlayers.dso.virtual_resource import VirtualResource, interface_curve

T = TypeVar("T")

#: Awards outside the virtual resource's range by at most this (MW) are clipped.
AWARD_TOL_MW = 1e-6
#: A device total this far (MW) inside its offered range at the extreme exports means a
#: feeder limit binds there.
BINDING_TOL_MW = 1e-6
#: Half-width of the interchange band in disaggregation, relative to ``|award|`` (-).
AWARD_BAND_REL = 1e-7
#: Re-linearisation stops when no device set-point moves by more than this (MW).
RELINEARISE_TOL_MW = 1e-4
#: Default number of re-linearisations at the solution (disaggregation and redispatch).
DEFAULT_MAX_RELINEARISATIONS = 3
#: Default price of limit slack in the soft-limit fallback ($ per MW-equivalent and hour),
#: the same as the Total-TSO market extension's.
DEFAULT_SLACK_PENALTY_USD_PER_MWH = 5_000.0
#: Least-violation caps: the slack of the minimum-slack LP plus this (pu, MVA).
SLACK_CAP_TOL_PU = 1e-9
SLACK_CAP_TOL_MVA = 1e-8
#: Factor on the least-violation caps when the capped range LPs fail numerically once.
SLACK_CAP_RETRY = 1e4
#: Inward moves of a failed end sample of the curve, as fractions of the range width (-).
SAMPLE_NUDGES = (1e-7, 1e-5, 1e-3)


@dataclass(frozen=True)
class Disaggregation:
    """A Total-DSO disaggregation of an interface award.

    Attributes
    ----------
    setpoints_mw : dict of str to float
        Net injection set-point per device id (MW, injection positive).
    dlmp_usd_per_mwh : pandas.Series
        DLMP per energised pandapower bus ($/MWh).
    interface_p_mw : float
        Net export at the interface in the solution (MW): the award (to ``1e-7 |award|``)
        without re-linearisation; with it, the export of the set-points at the final
        linearisation, between the award and the award minus the loss correction (see
        module notes).
    cost_usd_per_h : float
        As-offered DER cost of the set-points ($/h), ``sum_d offer_d.cost(p_d)``.
    losses_p_mw : float
        Linearised losses: sum of all injections minus interface export (MW).
    solve_seconds : float
        Wall time of the solves incl. Param updates and re-linearisations (s).
    relinearisations : int
        Number of re-solves with the losses re-linearised at the previous solution.
    slack : dict or None
        ``None`` when the award could be met within the feeder's limits; otherwise the
        limit slack of the soft-limit fallback's set-points (keys of
        :func:`gridlayers.dso.opf.slack_report`). Not part of ``cost_usd_per_h``.
    hard_limit_failure : str or None
        Why the hard-limit LP failed (set with ``slack``).

    """

    setpoints_mw: dict[str, float]
    dlmp_usd_per_mwh: pd.Series
    interface_p_mw: float
    cost_usd_per_h: float
    losses_p_mw: float
    solve_seconds: float
    relinearisations: int = 0
    slack: dict[str, float | int] | None = None
    hard_limit_failure: str | None = None


class DSOOperator:
    """Optimal ("Total DSO") operator of one LDA; also hosts Minimal-DSO and Total-TSO parts.

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The LDA's linear feeder model (limits taken from it).
    devices : mapping of str to int
        DER device id -> pandapower bus of the feeder.
    blocks_per_device : int
        Offer block slots per device; an offer with more blocks raises ``ValueError``.
    max_blocks : int
        Maximum number of blocks of the virtual resource's curve (the TSO's slots).
    binding_samples : int
        When a limit binds at the minimum or maximum export, the curve is rebuilt from
        this many exact cost segments (``binding_samples + 1`` extra LPs, only interface
        bounds change); 0 keeps the merit-order curve.
    max_relinearisations : int
        Re-solves of :meth:`disaggregate` and :meth:`redispatch` with the losses
        re-linearised at the previous solution (see module notes); 0 linearises at the
        interval's midpoint point only (and checks redispatch set-points there).
    slack_penalty_usd_per_mwh : float or None
        Price of limit slack in the soft-limit fallback ($ per MW-equivalent and hour,
        :func:`gridlayers.dso.opf.set_slack_penalty`); ``None``: hard limits only, an
        infeasible LP raises :class:`InfeasibleDSOError` (the behaviour before the
        fallback existed).

    Attributes
    ----------
    operating_point : OperatingPoint
        Loss-linearisation base point of the last solve (the interval's midpoint point
        after :meth:`set_interval` / :meth:`virtual_resource`; the final point after
        :meth:`disaggregate`).
    last_slack : dict or None
        Slack report of the last public call if it used the soft-limit fallback
        (:func:`gridlayers.dso.opf.slack_report`), else ``None``; also on the results.
    last_hard_limit_failure : str or None
        Why the last call's hard-limit LP failed (with ``last_slack``).

    """

    def __init__(
        self,
        feeder: LinDistFlowFeeder,
        devices: Mapping[str, int],
        *,
        blocks_per_device: int = 6,
        max_blocks: int = 10,
        binding_samples: int = 4,
        max_relinearisations: int = DEFAULT_MAX_RELINEARISATIONS,
        slack_penalty_usd_per_mwh: float | None = DEFAULT_SLACK_PENALTY_USD_PER_MWH,
    ) -> None:
        if slack_penalty_usd_per_mwh is not None and not slack_penalty_usd_per_mwh > 0:
            msg = f"slack_penalty_usd_per_mwh must be > 0 or None, got {slack_penalty_usd_per_mwh}"
            raise ValueError(msg)
        if blocks_per_device < 1 or max_blocks < 1:
            msg = "blocks_per_device and max_blocks must be >= 1"
            raise ValueError(msg)
        if max_relinearisations < 0:
            msg = f"max_relinearisations must be >= 0, got {max_relinearisations}"
            raise ValueError(msg)
        unknown = [d for d, b in devices.items() if int(b) not in feeder.bus_node_bus]
        if unknown:
            msg = f"devices {unknown[:5]} are not at energised buses of the feeder"
            raise KeyError(msg)
        self.feeder = feeder
        self.devices: dict[str, int] = {str(d): int(b) for d, b in devices.items()}
        self.blocks_per_device = blocks_per_device
        self.max_blocks = max_blocks
        self.binding_samples = binding_samples
        self.max_relinearisations = max_relinearisations
        self.slack_penalty_usd_per_mwh = slack_penalty_usd_per_mwh
        self.model = self._build()
        self._lp = PersistentLP(self.model)
        self._soft: tuple[pyo.ConcreteModel, PersistentLP] | None = None  # built on first use
        self._soft_active = False
        self._offers: dict[str, BidCurve] | None = None
        self._offer_arrays: OfferArrays | None = None  # the offers' Params, as arrays
        self._fixed: tuple[pd.Series, pd.Series] | None = None
        self._fixed_p_mw = 0.0  # total uncontrolled injection of the interval (MW)
        self._readers: dict[PersistentLP, DerSolution] = {}  # per LP, after its first solve
        #: Model-bus position of each device's bus (reads its delivery factor).
        self._device_node = np.array(
            [feeder.node_index[feeder.bus_node_bus[b]] for b in self.devices.values()],
            dtype=np.intp,
        )
        self._range: tuple[float, float] | None = None
        self.operating_point: OperatingPoint = feeder.base_point
        self._interval_point: OperatingPoint = feeder.base_point
        self._model_point: OperatingPoint = feeder.base_point  # in the active model's Params
        self._redispatcher = None
        self._rejected: DSOBadCoefficientError | None = None  # this interval's refused inputs
        self.last_slack: dict[str, float | int] | None = None
        self.last_hard_limit_failure: str | None = None

    def _build(self, soft: bool = False) -> pyo.ConcreteModel:
        """Build the dispatch model once (see module notes); ``soft``: with limit slack."""
        m = pyo.ConcreteModel(name="gridlayers_dso_soft" if soft else "gridlayers_dso")
        add_der_to_block(m, self.feeder, self.devices, self.blocks_per_device, slack_limits=soft)
        m.interface_price_usd_per_mwh = pyo.Param(
            initialize=0.0, mutable=True, within=pyo.Reals, doc="interface LMP ($/MWh)"
        )
        p_int = m.feeder.InterfaceP
        m.MinExport = pyo.Objective(expr=p_int, sense=pyo.minimize, doc="MW")
        m.MaxExport = pyo.Objective(expr=-p_int, sense=pyo.minimize, doc="-MW")
        cost = m.DerCost - m.interface_price_usd_per_mwh * p_int
        if soft:
            opf.set_slack_penalty(self.feeder, m.feeder, self.slack_penalty_usd_per_mwh)
            cost = cost + m.feeder.SlackCost
            m.MinSlack = pyo.Objective(expr=m.feeder.SlackCost, sense=pyo.minimize, doc="$/h")
            m.MinSlack.deactivate()
        m.DispatchCost = pyo.Objective(
            expr=cost,
            sense=pyo.minimize,
            doc="DER cost minus interchange revenue (plus the slack penalty if soft) ($/h)",
        )
        m.MaxExport.deactivate()
        m.DispatchCost.deactivate()
        return m

    # ------------------------------------------------------ soft-limit fallback
    @property
    def soft_limits(self) -> bool:
        """Whether an infeasible LP falls back to soft limits (a slack penalty is set)."""
        return self.slack_penalty_usd_per_mwh is not None

    @contextmanager
    def _soft_limits(self) -> Iterator[None]:
        """Solve on the soft-limit model (built on first use) with the interval's inputs.

        The hard-limit model and its solver stay untouched, so results that need no
        slack are bit for bit those of a DSO without the fallback.
        """
        if self._soft is None:
            model = self._build(soft=True)
            self._soft = (model, PersistentLP(model))
        hard = (self.model, self._lp, self._params_changed, self._model_point)
        price = pyo.value(self.model.interface_price_usd_per_mwh)
        self.model, self._lp = self._soft
        set_offers(self.model, self._offers)  # the same arrays as the hard model's
        self.feeder.set_fixed_injections(self.model.feeder, *self._fixed)
        self.model.interface_price_usd_per_mwh.set_value(price)
        self._set_point(self._interval_point)
        self._soft_active = True
        try:
            yield
        finally:
            self._soft_active = False
            self.model, self._lp, self._params_changed, self._model_point = hard

    def _set_point(self, point: OperatingPoint) -> None:
        """Linearise the active model's losses at ``point`` (mutable Params, in place)."""
        self.feeder.set_operating_point(self.model.feeder, point)
        self.operating_point = self._model_point = point
        self._params_changed = True

    def _slack_report(self) -> dict[str, float | int] | None:
        """Slack of the last solve on the soft model (``None`` on the hard one)."""
        return opf.slack_report(self.model.feeder) if self._soft_active else None

    def _least_violation(self, loosen: float = 1.0) -> dict[str, float | int]:
        """Find the least slack any dispatch needs and cap every slack variable there.

        One LP (``MinSlack``, interface export free); each slack variable's upper bound
        becomes its value plus ``loosen`` times ``SLACK_CAP_TOL_PU`` /
        ``SLACK_CAP_TOL_MVA``, so the following LPs move only within the least violation.
        :meth:`_release_slack` removes the caps.
        """
        m = self.model
        self._lp.set_bounds(m.feeder.InterfaceP, None, None)
        self._solve(m.MinSlack)
        report = opf.slack_report(m.feeder)
        fb = m.feeder
        caps = [
            (var, 0.0, max(pyo.value(var), 0.0) + loosen * tol)
            for group, tol in (
                (fb.VmSlackLow, SLACK_CAP_TOL_PU),
                (fb.VmSlackHigh, SLACK_CAP_TOL_PU),
                (fb.ThermalSlack, SLACK_CAP_TOL_MVA),
            )
            for var in group.values()
        ]
        self._lp.set_bounds_many(caps)
        return report

    def _at_least_violation(self, solve: Callable[[], T]) -> tuple[dict[str, float | int], T]:
        """Run ``solve`` on the soft model within the least violation; return (slack, result).

        ``solve`` builds an export range (pure min/max export objectives), so it must never
        run with the slack free: the range would then stretch across every limit. If the
        capped problem fails (numerically; the minimum-slack point satisfies the caps), it
        is retried once with caps loosened by ``SLACK_CAP_RETRY``; if that fails too,
        :class:`InfeasibleDSOError` propagates (the agent records it and uses its last
        resort).
        """
        try:
            slack = self._least_violation()
            try:
                return slack, solve()
            except InfeasibleDSOError:
                slack = self._least_violation(loosen=SLACK_CAP_RETRY)
                return slack, solve()
        finally:
            self._release_slack()

    def _release_slack(self) -> None:
        """Remove the least-violation caps of the soft model (slack free again)."""
        self._lp.set_bounds_many([(v, 0.0, None) for v in opf.slack_variables(self.model.feeder)])

    def _read(self) -> DerSolution:
        """Reader of the active model's last solution (built after its first solve)."""
        reader = self._readers.get(self._lp)
        if reader is None:
            reader = self._readers[self._lp] = DerSolution(self.model, self._lp, self.feeder)
        return reader

    def _setpoints(self) -> dict[str, float]:
        """Solved set-point per device id (MW), the model's ``DeviceP``."""
        values = self._read().setpoints_mw(self._lp.col_value, self._offer_arrays)
        return dict(zip(self.devices, values.tolist(), strict=True))

    def _decision_cost(self) -> float:
        """DER cost of the solved point, plus the slack penalty on the soft model ($/h)."""
        cost = self._read().der_cost_usd_per_h(self._lp.col_value, self._offer_arrays)
        if self._soft_active:
            cost += float(pyo.value(self.model.feeder.SlackCost))
        return cost

    # ----------------------------------------------------------------- inputs
    @property
    def n_variables(self) -> int:
        """Number of variables of the DSO's problem."""
        return self.model.nvariables()

    @property
    def n_constraints(self) -> int:
        """Number of constraints of the DSO's problem."""
        return self.model.nconstraints()

    def set_interval(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> None:
        """Write one interval's inputs into the model (mutable Params, in place).

        Parameters
        ----------
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled net injection (MW, Mvar, injection positive) per
            pandapower bus: everything that is not a DER device.
        offers : mapping of str to BidCurve
            Offer per device id (exactly the DSO's devices).

        Notes
        -----
        Losses are re-linearised every interval around
        :func:`~gridlayers.dso.offer_blocks.midpoint_operating_point`.

        """
        check_offers(offers, self.devices, self.blocks_per_device)
        p_fixed = pd.Series(p_fixed_mw, dtype=float)
        q_fixed = pd.Series(q_fixed_mvar, dtype=float)
        self._rejected = None
        try:  # before any Param is written (a NaN would reach the loss model and HiGHS)
            check_fixed_injections(self.feeder, p_fixed, q_fixed)
        except DSOBadCoefficientError as exc:
            self._rejected = exc
            raise
        self._offer_arrays = set_offers(self.model, offers)
        p_by_bus, _ = self.feeder.set_fixed_injections(self.model.feeder, p_fixed, q_fixed)
        self._fixed_p_mw = sum(p_by_bus.values())
        point = midpoint_operating_point(self.feeder, self.devices, p_fixed, q_fixed, offers)
        self._interval_point = point
        self._set_point(point)
        self._offers, self._fixed = dict(offers), (p_fixed, q_fixed)
        self._range = None

    def _require_interval(self) -> None:
        if self._offers is None:
            msg = "call set_interval() or virtual_resource() first"
            raise RuntimeError(msg)

    # --------------------------------------------------------- virtual resource
    def _solve(self, objective: pyo.Objective) -> float:
        seconds = self._lp.solve(objective, params_changed=self._params_changed)
        self._params_changed = False
        return seconds

    def _export_extreme(self, objective: pyo.Objective) -> tuple[float, float, float]:
        """Solve min or max export (``objective``); return (P MW, total DER MW, seconds)."""
        self._lp.set_bounds(self.model.feeder.InterfaceP, None, None)
        seconds = self._solve(objective)
        der = sum(self._setpoints().values())
        return self._read().interface_p_mw(self._lp.col_value), float(der), seconds

    def _delivery_factors(self) -> dict[str, float]:
        """Return ``beta_d = dP/dp_d`` per device from the min-export LP's balance duals.

        With objective ``+P`` the dual of ``PBalance[b]`` is ``dP/d(withdrawal at b)``,
        i.e. ``-beta_b``. Values outside ``[0.5, 1.5]`` (a limit binding at ``P_lo``
        distorts the duals) fall back to 1.
        """
        duals = self._read().balance_duals(self._lp.row_dual)
        betas = (-duals[self._device_node]).tolist()
        return {
            dev: beta if 0.5 <= beta <= 1.5 else 1.0
            for dev, beta in zip(self.devices, betas, strict=True)
        }

    def interface_range(
        self,
        p_fixed_mw: pd.Series,
        q_fixed_mvar: pd.Series,
        offers: Mapping[str, BidCurve],
    ) -> tuple[float, float]:
        """Return the feasible interface export range within feeder limits (MW, MW).

        Two LPs (min and max export) over the offers' ranges, without building a curve.
        Fix a device by giving it a zero-width offer (``BidCurve.fixed``). Used by the
        flexibility probe of the planning loop (:mod:`gridlayers.loop`).

        Raises
        ------
        InfeasibleDSOError
            The fixed injections and offers admit no point within the feeder's limits
            and the soft-limit fallback is off (``slack_penalty_usd_per_mwh=None``).

        Notes
        -----
        If no point is within the limits, the range is that of the exports reachable with
        the least limit slack (soft-limit fallback, see the module notes;
        ``last_slack`` reports that slack).

        """
        self.set_interval(p_fixed_mw, q_fixed_mvar, offers)
        self.last_slack = self.last_hard_limit_failure = None
        try:
            return self._export_range()
        except InfeasibleDSOError as exc:
            if not self.soft_limits or not soft_fallback_helps(exc):
                raise
            failure = self._lp.named_failure(exc)  # which constraint families conflict
            with self._soft_limits():
                slack, p_range = self._at_least_violation(self._export_range)
            self.last_slack, self.last_hard_limit_failure = slack, failure
            return p_range

    def solve_free_export(self, objective: pyo.Objective) -> tuple[float, float]:
        """Minimise ``objective`` on the interval's hard-limit model, export free.

        For objectives added to :attr:`model` before its first solve (the iterative
        paradigm's ADMM subproblem, :mod:`gridlayers.dso.admm`); call
        :meth:`set_interval` first. Params the objective reads may have changed.
        Returns the interface export (MW) and the DER cost of the solution ($/h).
        """
        self._require_interval()
        if self._model_point is not self._interval_point:  # a disaggregation re-linearised
            self._set_point(self._interval_point)
        self._params_changed = True
        p_mw, _, _ = self._export_extreme(objective)
        return p_mw, self._read().der_cost_usd_per_h(self._lp.col_value, self._offer_arrays)

    def _export_range(self) -> tuple[float, float]:
        """Minimum and maximum export of the active model (MW, MW)."""
        p_lo, _, _ = self._export_extreme(self.model.MinExport)
        p_hi, _, _ = self._export_extreme(self.model.MaxExport)
        return p_lo, p_hi

    def virtual_resource(
        self,
        p_fixed_mw: pd.Series,
        q_fixed_mvar: pd.Series,
        offers: Mapping[str, BidCurve],
    ) -> VirtualResource:
        """Build the interval's virtual resource (see :mod:`gridlayers.dso.virtual_resource`).

        Parameters
        ----------
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled net injection (MW, Mvar, injection positive) per bus.
        offers : mapping of str to BidCurve
            Offer per device id.

        Returns
        -------
        VirtualResource
            Interface bid curve and feasible range (MW, $/MWh), solve statistics; built
            with the least limit slack if no dispatch meets the limits (``slack``, see
            the module notes).

        Raises
        ------
        InfeasibleDSOError
            No dispatch meets the limits and the soft-limit fallback is off, or even the
            soft-limit problem failed.

        """
        self.set_interval(p_fixed_mw, q_fixed_mvar, offers)
        self.last_slack = self.last_hard_limit_failure = None
        try:
            return self._resource(offers)
        except InfeasibleDSOError as exc:
            if not self.soft_limits or not soft_fallback_helps(exc):
                raise
            failure = self._lp.named_failure(exc)
            with self._soft_limits():
                slack, vr = self._at_least_violation(lambda: self._resource(offers))
            self.last_slack, self.last_hard_limit_failure = slack, failure
            return replace(vr, slack=slack, hard_limit_failure=failure)

    def _resource(self, offers: Mapping[str, BidCurve]) -> VirtualResource:
        """Build the virtual resource on the active model (module notes)."""
        p_lo, d_lo, t_lo = self._export_extreme(self.model.MinExport)
        beta = self._delivery_factors()
        p_hi, d_hi, t_hi = self._export_extreme(self.model.MaxExport)
        curve, kappa = interface_curve(offers, beta, (p_lo, p_hi), (d_lo, d_hi), self.max_blocks)
        self._range = (p_lo, p_hi)
        seconds, method = t_lo + t_hi, "merit_order"
        p_min_sum = sum(c.p_min_mw for c in offers.values())
        p_max_sum = sum(c.p_max_mw for c in offers.values())
        binding = d_lo > p_min_sum + BINDING_TOL_MW or d_hi < p_max_sum - BINDING_TOL_MW
        if binding and self.binding_samples > 0 and p_hi - p_lo > BINDING_TOL_MW:
            curve, t_s = self._sampled_curve(p_lo, p_hi)
            seconds, method = seconds + t_s, "sampled"
            p_lo, p_hi = curve.p_min_mw, curve.p_max_mw  # an end sample may have moved in
            self._range = (p_lo, p_hi)
        return VirtualResource(
            curve,
            p_lo,
            p_hi,
            d_lo,
            d_hi,
            kappa,
            seconds,
            self.n_variables,
            self.n_constraints,
            method,
        )

    def _sampled_curve(self, p_lo: float, p_hi: float) -> tuple[BidCurve, float]:
        """Return the least-cost curve through ``binding_samples + 1`` exact points.

        Notes
        -----
        ``C(P) = min DER cost s.t. InterfaceP = P`` is convex and piecewise linear in ``P``
        (an LP's optimal value in a right-hand side; on the soft model the cost includes
        the slack penalty, ``SlackCost``). Evaluating it at equally spaced
        ``P_j`` in ``[P_lo, P_hi]`` (only the bounds of ``InterfaceP`` change between the
        solves) and taking the slopes ``(C_{j+1} - C_j) / (P_{j+1} - P_j)`` as block prices
        gives a monotone curve that is exact at every sample point.

        An end point pins the export at an extreme of the range, where the LP can be
        degenerate enough for HiGHS to stop without a solution (measured: status
        "Unknown", 1.4e-3 MW primal infeasibility, at the maximum export of the congested
        rural feeder at 12:45). Such an end point is moved inward by
        ``SAMPLE_NUDGES`` times the range width, in turn, and solved again; the curve
        then starts or ends there.

        """
        m, n = self.model, min(self.binding_samples, self.max_blocks)
        points = np.linspace(p_lo, p_hi, n + 1)
        costs, seconds = [], 0.0
        for j, p_j in enumerate(points):
            inward = 1.0 if j == 0 else -1.0
            nudges = (0.0, *SAMPLE_NUDGES) if j in (0, n) else (0.0,)
            for k, nudge in enumerate(nudges):
                points[j] = p_j + inward * nudge * (p_hi - p_lo)
                self._lp.set_bounds(m.feeder.InterfaceP, float(points[j]), float(points[j]))
                try:
                    seconds += self._solve(m.DispatchCost)
                    break
                except InfeasibleDSOError:
                    if k == len(nudges) - 1:
                        raise
            costs.append(self._decision_cost())
        blocks, slope = [], -np.inf
        for j in range(n):
            width = float(points[j + 1] - points[j])
            slope = max(slope, (costs[j + 1] - costs[j]) / width)
            blocks.append(BidBlock(width, float(slope)))
        return BidCurve(float(p_lo), tuple(blocks)), seconds

    # ------------------------------------------------------------ disaggregation
    def disaggregate(self, award_mw: float, interface_price_usd_per_mwh: float) -> Disaggregation:
        """Split an interface award among the devices at least DER cost, within limits.

        Parameters
        ----------
        award_mw : float
            Net export awarded at the interface (MW, injection positive).
        interface_price_usd_per_mwh : float
            Interface LMP ($/MWh): the price of the interchange (see module notes).

        Returns
        -------
        Disaggregation
            Set-points (MW), DLMPs ($/MWh), cost ($/h).

        Raises
        ------
        InfeasibleDSOError
            If the feeder cannot deliver ``award_mw`` within its limits and the soft-limit
            fallback is off, or not even with limit slack (an award outside the devices'
            range).

        Notes
        -----
        If no dispatch delivers the award within the limits, the soft-limit fallback
        delivers it with the least-cost dispatch including the slack penalty (module
        notes; ``Disaggregation.slack``).

        """
        self._require_interval()
        if self._rejected is not None:  # the interval's inputs were refused: no model to use
            msg = f"interval rejected: {self._rejected}"
            raise DSOBadCoefficientError(msg)
        self.last_slack = self.last_hard_limit_failure = None
        try:
            return self._disaggregate(award_mw, interface_price_usd_per_mwh)
        except InfeasibleDSOError as exc:
            if not self.soft_limits or not soft_fallback_helps(exc):
                raise
            failure = self._lp.named_failure(exc)
            with self._soft_limits():
                result = self._disaggregate(award_mw, interface_price_usd_per_mwh)
            self.last_slack, self.last_hard_limit_failure = result.slack, failure
            return replace(result, hard_limit_failure=failure)

    def _disaggregate(self, award_mw: float, interface_price_usd_per_mwh: float) -> Disaggregation:
        """Disaggregate on the active model (see :meth:`disaggregate`)."""
        award = float(award_mw)
        lo, hi = self._range if self._range is not None else (award, award)
        if lo - AWARD_TOL_MW <= award <= hi + AWARD_TOL_MW:
            award = min(max(award, lo), hi)
        m = self.model
        if self._model_point is not self._interval_point:  # a previous call re-linearised
            self._set_point(self._interval_point)
        self._set_award(award)
        price = float(interface_price_usd_per_mwh)
        if price != pyo.value(m.interface_price_usd_per_mwh):
            m.interface_price_usd_per_mwh.set_value(price)
            self._params_changed = True
        seconds = self._solve(m.DispatchCost)
        result = self._disaggregation(seconds)
        band = (award, award)
        for _ in range(self.max_relinearisations):
            start = time.perf_counter()
            previous = (self.operating_point, band)
            exported = self._relinearise_at(result.setpoints_mw)
            band = (min(award, exported), max(award, exported))
            self._set_award(*band)
            try:
                try:
                    self._solve(m.DispatchCost)
                except InfeasibleDSOError:  # a limit binds at the new point: nearest export
                    band = self._nearest_deliverable(band)
                    self._set_award(*band)
                    self._solve(m.DispatchCost)
            except InfeasibleDSOError:  # keep the last feasible solution
                point, band = previous
                self._set_point(point)
                self._set_award(*band)
                seconds += time.perf_counter() - start
                break
            seconds += time.perf_counter() - start
            moved = max(
                (abs(v - result.setpoints_mw[d]) for d, v in self._setpoints().items()),
                default=0.0,
            )
            result = self._disaggregation(seconds, result.relinearisations + 1)
            if moved <= RELINEARISE_TOL_MW:
                break
        return replace(result, solve_seconds=seconds)

    def _set_award(self, low: float, high: float | None = None) -> None:
        """Hold ``InterfaceP`` in ``[low, high]`` (MW) widened by ``AWARD_BAND_REL`` each side."""
        high = low if high is None else high
        self._lp.set_bounds(
            self.model.feeder.InterfaceP,
            low - AWARD_BAND_REL * abs(low),
            high + AWARD_BAND_REL * abs(high),
        )

    def _relinearise_at(self, setpoints_mw: Mapping[str, float]) -> float:
        """Re-linearise the losses at the fixed injections plus ``setpoints_mw`` (in place).

        Returns the interface export (MW) of ``setpoints_mw`` under the new linearisation.
        """
        p_fixed, q_fixed = self._fixed
        point = setpoint_operating_point(
            self.feeder, self.devices, p_fixed, q_fixed, setpoints_mw, start=self.operating_point
        )
        self._set_point(point)
        p = injections_with_setpoints(self.devices, p_fixed, setpoints_mw)
        return self.feeder.interface_export_mw(p, q_fixed, operating_point=point)

    def _nearest_deliverable(self, band: tuple[float, float]) -> tuple[float, float]:
        """Return the deliverable export nearest to ``band`` (MW, as a band) at this point."""
        p_hi, _, _ = self._export_extreme(self.model.MaxExport)
        if band[0] >= p_hi:
            return p_hi, p_hi
        p_lo, _, _ = self._export_extreme(self.model.MinExport)
        return p_lo, p_lo

    def _disaggregation(self, seconds: float, relinearisations: int = 0) -> Disaggregation:
        """Read the solved disaggregation LP (set-points, DLMPs, cost)."""
        reader, x = self._read(), self._lp.col_value
        setpoints = self._setpoints()
        p_int = reader.interface_p_mw(x)
        return Disaggregation(
            setpoints_mw=setpoints,
            dlmp_usd_per_mwh=reader.dlmp_usd_per_mwh(self._lp.row_dual),  # all minimisations
            interface_p_mw=p_int,
            cost_usd_per_h=reader.der_cost_usd_per_h(x, self._offer_arrays),
            losses_p_mw=self._fixed_p_mw + sum(setpoints.values()) - p_int,
            solve_seconds=seconds,
            relinearisations=relinearisations,
            slack=self._slack_report(),
        )

    # ------------------------------------------------------- other paradigms
    def redispatch(
        self,
        setpoints_mw: Mapping[str, float],
        p_fixed_mw: pd.Series,
        q_fixed_mvar: pd.Series,
        offers: Mapping[str, BidCurve],
        interface_price_usd_per_mwh: float,
    ):  # noqa: ANN201 - see gridlayers.dso.redispatch.Redispatch
        """Minimal DSO: check aggregator set-points and correct them at least cost.

        See :meth:`gridlayers.dso.redispatch.Redispatcher.redispatch`.
        """
        from gridlayers.dso.redispatch import Redispatcher

        if self._redispatcher is None:  # built once, on first use
            self._redispatcher = Redispatcher(
                self.feeder,
                self.devices,
                self.blocks_per_device,
                max_relinearisations=self.max_relinearisations,
                slack_penalty_usd_per_mwh=self.slack_penalty_usd_per_mwh,
            )
        self._redispatcher.max_relinearisations = self.max_relinearisations
        result = self._redispatcher.redispatch(
            setpoints_mw, p_fixed_mw, q_fixed_mvar, offers, interface_price_usd_per_mwh
        )
        self.last_slack, self.last_hard_limit_failure = result.slack, result.hard_limit_failure
        return result

    def market_extension(  # noqa: ANN201 - FeederMarketExtension
        self,
        interface_bus: int,
        name: str | None = None,
        slack_penalty_usd_per_mwh: float | None | str = "default",
    ):
        """Total TSO: return a :class:`~gridlayers.dso.extension.FeederMarketExtension`.

        Parameters
        ----------
        interface_bus : int
            Transmission (pandapower) bus of the T–D interface.
        name : str, optional
            Block name suffix in the market model (unique per LDA); default ``bus<k>``.
        slack_penalty_usd_per_mwh : float or None, optional
            Price of feeder-limit slack ($ per MW-equivalent and hour); ``None``: hard
            limits; default
            :data:`~gridlayers.dso.extension.DEFAULT_SLACK_PENALTY_USD_PER_MWH`.

        """
        from gridlayers.dso.extension import (
            DEFAULT_SLACK_PENALTY_USD_PER_MWH,
            FeederMarketExtension,
        )

        if slack_penalty_usd_per_mwh == "default":
            slack_penalty_usd_per_mwh = DEFAULT_SLACK_PENALTY_USD_PER_MWH
        return FeederMarketExtension(
            self.feeder,
            self.devices,
            interface_bus,
            blocks_per_device=self.blocks_per_device,
            name=name,
            slack_penalty_usd_per_mwh=slack_penalty_usd_per_mwh,
        )
