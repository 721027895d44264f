"""Curtailable PV plant driven by a per-unit availability profile."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from gridlayers.der.base import Device
from gridlayers.der.conditions import DeviceConditions, DispatchResult, Interval
from gridlayers.der.curves import make_curve
from gridlayers.domain.bid_curve import BidCurve

if TYPE_CHECKING:
    from gridlayers.der.strategies import OfferStrategy


@dataclass(frozen=True)
class PVParams:
    """Parameters of a PV plant.

    Parameters
    ----------
    rated_mw : float
        Rated AC power (MW, >= 0).
    marginal_cost_usd_per_mwh : float
        Marginal cost of production ($/MWh); negative values model lost
        production incentives (the plant is paid to produce). Also the true
        resource cost per produced MWh in :meth:`PVPlant.dispatch`.
    profile : str
        Name of the per-unit availability profile the caller uses to fill
        ``DeviceConditions.pv_available_pu``.

    """

    rated_mw: float
    marginal_cost_usd_per_mwh: float = 0.0
    profile: str = "pv"

    def __post_init__(self) -> None:
        if not self.rated_mw >= 0.0:
            msg = f"rated_mw must be >= 0, got {self.rated_mw}"
            raise ValueError(msg)


@dataclass(frozen=True)
class PVState:
    """Cumulative energy accounting of a PV plant (MWh since the start of the run)."""

    produced_mwh: float = 0.0
    curtailed_mwh: float = 0.0
    available_mwh: float = 0.0


class PVPlant(Device):
    r"""Curtailable PV: ``0 <= p_mw <= a_pu * rated_mw``.

    Notes
    -----
    Available power :math:`\bar p = \min(a, 1)\, P_r` with ``a`` the per-unit
    availability. Dispatch realises :math:`p = \min(\max(p^{set}, 0), \bar p^{actual})`
    and accounts curtailment :math:`(\bar p^{actual} - p)\,\Delta t` (MWh), so
    ``produced + curtailed = available`` holds exactly in the state. The
    interval's resource cost is :math:`c\,p\,\Delta t` with ``c`` the marginal
    cost (0 by default); curtailed energy is energy lost, not a cost. PV stores
    nothing (:attr:`stored_energy_mwh` is 0).

    """

    max_offer_blocks: ClassVar[int] = 1
    kind: ClassVar[str] = "pv"
    stores_energy: ClassVar[bool] = False

    def __init__(
        self,
        device_id: str,
        bus: int,
        params: PVParams,
        state: PVState | None = None,
        strategy: OfferStrategy | None = None,
    ) -> None:
        super().__init__(device_id, bus, strategy)
        self.params = params
        self.state = state if state is not None else PVState()
        self._record_initial_storage()

    @property
    def stored_energy_mwh(self) -> float:
        """Return 0 MWh: PV stores nothing."""
        return 0.0

    def available_mw(self, cond: DeviceConditions) -> float:
        """Return available power (MW) under ``cond``."""
        return min(cond.pv_available_pu, 1.0) * self.params.rated_mw

    def feasible_range(self, interval: Interval, cond: DeviceConditions) -> tuple[float, float]:
        """Return ``(0, available_mw)`` in MW."""
        return 0.0, self.available_mw(cond)

    def cost_curve(self, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return one block of the available power at the marginal cost."""
        return make_curve(0.0, [(self.available_mw(cond), self.params.marginal_cost_usd_per_mwh)])

    def self_schedule_mw(self, interval: Interval, cond: DeviceConditions) -> float:
        """Return the available power (produce everything)."""
        return self.available_mw(cond)

    def dispatch(
        self,
        p_set_mw: float,
        interval: Interval,
        actual: DeviceConditions,
        forecast: DeviceConditions | None = None,
    ) -> DispatchResult:
        """Produce ``min(max(p_set, 0), actual availability)``; account curtailment and cost."""
        avail = self.available_mw(actual)
        p = min(max(p_set_mw, 0.0), avail)
        h = interval.hours
        curtailed = (avail - p) * h
        s = self.state
        self.state = replace(
            s,
            produced_mwh=s.produced_mwh + p * h,
            curtailed_mwh=s.curtailed_mwh + curtailed,
            available_mwh=s.available_mwh + avail * h,
        )
        cost = self.params.marginal_cost_usd_per_mwh * p * h
        return DispatchResult(
            self.device_id, self.bus, p_set_mw, p, p * h, curtailed_mwh=curtailed, cost_usd=cost
        )
