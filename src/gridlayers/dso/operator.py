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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain.bid_curve import BidBlock, BidCurve
from gridlayers.dso import opf
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.linear_system import OperatingPoint
from gridlayers.dso.offer_blocks import (
    PersistentLP,
    add_der_to_block,
    bus_dlmp,
    check_offers,
    device_setpoints,
    midpoint_operating_point,
    set_offers,
)
from gridlayers.dso.virtual_resource import VirtualResource, interface_curve

#: Awards outside the virtual resource's range by at most this (MW) are clipped.
AWARD_TOL_MW = 1e-6
#: A device total this far (MW) inside its offered range at the extreme exports means a
#: feeder limit binds there.
BINDING_TOL_MW = 1e-6
#: Half-width of the interchange band in disaggregation, relative to ``|award|`` (-).
AWARD_BAND_REL = 1e-7


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
        Net export at the interface in the solution (MW); equals the award.
    cost_usd_per_h : float
        As-offered DER cost of the set-points ($/h), ``sum_d offer_d.cost(p_d)``.
    losses_p_mw : float
        Linearised losses: sum of all injections minus interface export (MW).
    solve_seconds : float
        Wall time of the solve incl. Param updates (s).

    """

    setpoints_mw: dict[str, float]
    dlmp_usd_per_mwh: pd.Series
    interface_p_mw: float
    cost_usd_per_h: float
    losses_p_mw: float
    solve_seconds: float


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

    """

    def __init__(
        self,
        feeder: LinDistFlowFeeder,
        devices: Mapping[str, int],
        *,
        blocks_per_device: int = 6,
        max_blocks: int = 10,
        binding_samples: int = 4,
    ) -> None:
        if blocks_per_device < 1 or max_blocks < 1:
            msg = "blocks_per_device and max_blocks must be >= 1"
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
        self.model = self._build()
        self._lp = PersistentLP(self.model)
        self._offers: dict[str, BidCurve] | None = None
        self._fixed: tuple[pd.Series, pd.Series] | None = None
        #: Loss-linearisation base point of the current interval.
        self.operating_point: OperatingPoint = feeder.base_point
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
        self.operating_point = point
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
        m, band = self.model, AWARD_BAND_REL * abs(award)
        self._lp.set_bounds(m.feeder.InterfaceP, award - band, award + band)
        price = float(interface_price_usd_per_mwh)
        if price != pyo.value(m.interface_price_usd_per_mwh):
            m.interface_price_usd_per_mwh.set_value(price)
            self._params_changed = True
        seconds = self._solve(m.DispatchCost)
        duals = self._lp.duals(list(m.feeder.PBalance.values()))
        return self._disaggregation(opf.dlmp_usd_per_mwh(m.feeder, duals), seconds)

    def _disaggregation(self, node_dlmp: pd.Series, seconds: float) -> Disaggregation:
        m = self.model
        setpoints = device_setpoints(m)
        p_int = float(pyo.value(m.feeder.InterfaceP))
        fixed = sum(float(pyo.value(m.feeder.p_fixed_mw[b])) for b in m.feeder.BUSES)
        return Disaggregation(
            setpoints_mw=setpoints,
            dlmp_usd_per_mwh=bus_dlmp(self.feeder, node_dlmp),
            interface_p_mw=p_int,
            cost_usd_per_h=float(pyo.value(m.DerCost)),
            losses_p_mw=fixed + sum(setpoints.values()) - p_int,
            solve_seconds=seconds,
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
            self._redispatcher = Redispatcher(self.feeder, self.devices, self.blocks_per_device)
        return self._redispatcher.redispatch(
            setpoints_mw, p_fixed_mw, q_fixed_mvar, offers, interface_price_usd_per_mwh
        )

    def market_extension(self, interface_bus: int, name: str | None = None):  # noqa: ANN201
        """Total TSO: return a :class:`~gridlayers.dso.extension.FeederMarketExtension`.

        Parameters
        ----------
        interface_bus : int
            Transmission (pandapower) bus of the T–D interface.
        name : str, optional
            Block name suffix in the market model (unique per LDA); default ``bus<k>``.

        """
        from gridlayers.dso.extension import FeederMarketExtension

        return FeederMarketExtension(
            self.feeder,
            self.devices,
            interface_bus,
            blocks_per_device=self.blocks_per_device,
            name=name,
        )
