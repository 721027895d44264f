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
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain.bid_curve import BidBlock, BidCurve
from gridlayers.dso import opf
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.linear_system import OperatingPoint
from gridlayers.dso.offer_blocks import (
    InfeasibleDSOError,
    PersistentLP,
    add_der_to_block,
    bus_dlmp,
    check_offers,
    device_setpoints,
    injections_with_setpoints,
    midpoint_operating_point,
    set_offers,
    setpoint_operating_point,
)
from gridlayers.dso.virtual_resource import VirtualResource, interface_curve

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

    """

    setpoints_mw: dict[str, float]
    dlmp_usd_per_mwh: pd.Series
    interface_p_mw: float
    cost_usd_per_h: float
    losses_p_mw: float
    solve_seconds: float
    relinearisations: int = 0


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

    Attributes
    ----------
    operating_point : OperatingPoint
        Loss-linearisation base point of the last solve (the interval's midpoint point
        after :meth:`set_interval` / :meth:`virtual_resource`; the final point after
        :meth:`disaggregate`).

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
    ) -> None:
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
        self.model = self._build()
        self._lp = PersistentLP(self.model)
        self._offers: dict[str, BidCurve] | None = None
        self._fixed: tuple[pd.Series, pd.Series] | None = None
        self.operating_point: OperatingPoint = feeder.base_point
        self._interval_point: OperatingPoint = feeder.base_point
        self._redispatcher = None

    def _build(self) -> pyo.ConcreteModel:
        """Build the dispatch model once (see module notes)."""
        m = pyo.ConcreteModel(name="gridlayers_dso")
        add_der_to_block(m, self.feeder, self.devices, self.blocks_per_device)
        m.interface_price_usd_per_mwh = pyo.Param(
            initialize=0.0, mutable=True, within=pyo.Reals, doc="interface LMP ($/MWh)"
        )
        p_int = m.feeder.InterfaceP
        m.MinExport = pyo.Objective(expr=p_int, sense=pyo.minimize, doc="MW")
        m.MaxExport = pyo.Objective(expr=-p_int, sense=pyo.minimize, doc="-MW")
        m.DispatchCost = pyo.Objective(
            expr=m.DerCost - m.interface_price_usd_per_mwh * p_int,
            sense=pyo.minimize,
            doc="DER cost minus interchange revenue ($/h)",
        )
        m.MaxExport.deactivate()
        m.DispatchCost.deactivate()
        return m

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
        set_offers(self.model, offers)
        self.feeder.set_fixed_injections(self.model.feeder, p_fixed, q_fixed)
        point = midpoint_operating_point(self.feeder, self.devices, p_fixed, q_fixed, offers)
        self.feeder.set_operating_point(self.model.feeder, point)
        self.operating_point = self._interval_point = point
        self._offers, self._fixed = dict(offers), (p_fixed, q_fixed)
        self._params_changed = True

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
        der = sum(device_setpoints(self.model).values())
        return float(pyo.value(self.model.feeder.InterfaceP)), float(der), seconds

    def _delivery_factors(self) -> dict[str, float]:
        """Return ``beta_d = dP/dp_d`` per device from the min-export LP's balance duals.

        With objective ``+P`` the dual of ``PBalance[b]`` is ``dP/d(withdrawal at b)``,
        i.e. ``-beta_b``. Values outside ``[0.5, 1.5]`` (a limit binding at ``P_lo``
        distorts the duals) fall back to 1.
        """
        m = self.model
        duals = self._lp.duals(list(m.feeder.PBalance.values()))
        out = {}
        for dev, bus in self.devices.items():
            beta = -float(duals[m.feeder.PBalance[self.feeder.bus_node_bus[bus]]])
            out[dev] = beta if 0.5 <= beta <= 1.5 else 1.0
        return out

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
            The fixed injections and offers admit no point within the feeder's limits.

        """
        self.set_interval(p_fixed_mw, q_fixed_mvar, offers)
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
            Interface bid curve and feasible range (MW, $/MWh), solve statistics.

        """
        self.set_interval(p_fixed_mw, q_fixed_mvar, offers)
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
        (an LP's optimal value in a right-hand side). Evaluating it at equally spaced
        ``P_j`` in ``[P_lo, P_hi]`` (only the bounds of ``InterfaceP`` change between the
        solves) and taking the slopes ``(C_{j+1} - C_j) / (P_{j+1} - P_j)`` as block prices
        gives a monotone curve that is exact at every sample point.

        """
        m, n = self.model, min(self.binding_samples, self.max_blocks)
        points = np.linspace(p_lo, p_hi, n + 1)
        costs, seconds = [], 0.0
        for p_j in points:
            self._lp.set_bounds(m.feeder.InterfaceP, float(p_j), float(p_j))
            seconds += self._solve(m.DispatchCost)
            costs.append(float(pyo.value(m.DerCost)))
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
            If the feeder cannot deliver ``award_mw``.

        """
        self._require_interval()
        award = float(award_mw)
        lo, hi = getattr(self, "_range", (award, award))
        if lo - AWARD_TOL_MW <= award <= hi + AWARD_TOL_MW:
            award = min(max(award, lo), hi)
        m = self.model
        if self.operating_point is not self._interval_point:  # a previous call re-linearised
            self.feeder.set_operating_point(m.feeder, self._interval_point)
            self.operating_point = self._interval_point
            self._params_changed = True
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
                self.operating_point, band = previous
                self.feeder.set_operating_point(m.feeder, self.operating_point)
                self._set_award(*band)
                self._params_changed = True
                seconds += time.perf_counter() - start
                break
            seconds += time.perf_counter() - start
            moved = max(
                (abs(v - result.setpoints_mw[d]) for d, v in device_setpoints(m).items()),
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
        self.feeder.set_operating_point(self.model.feeder, point)
        self.operating_point = point
        self._params_changed = True
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
        m = self.model
        duals = self._lp.duals(list(m.feeder.PBalance.values()))
        setpoints = device_setpoints(m)
        p_int = float(pyo.value(m.feeder.InterfaceP))
        fixed = sum(float(pyo.value(m.feeder.p_fixed_mw[b])) for b in m.feeder.BUSES)
        return Disaggregation(
            setpoints_mw=setpoints,
            dlmp_usd_per_mwh=bus_dlmp(self.feeder, opf.dlmp_usd_per_mwh(m.feeder, duals)),
            interface_p_mw=p_int,
            cost_usd_per_h=float(pyo.value(m.DerCost)),
            losses_p_mw=fixed + sum(setpoints.values()) - p_int,
            solve_seconds=seconds,
            relinearisations=relinearisations,
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
            )
        self._redispatcher.max_relinearisations = self.max_relinearisations
        return self._redispatcher.redispatch(
            setpoints_mw, p_fixed_mw, q_fixed_mvar, offers, interface_price_usd_per_mwh
        )

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
