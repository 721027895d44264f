"""Battery storage with efficiencies, state of charge and a water-value offer."""

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
class BatteryParams:
    """Parameters of a battery.

    Parameters
    ----------
    power_mw : float
        Maximum charge and discharge power at the grid side (MW, >= 0).
    energy_mwh : float
        Usable energy capacity (MWh, > 0); SOC is stored energy / capacity.
    eta_charge : float
        Charge efficiency (0, 1]: stored energy per grid energy.
    eta_discharge : float
        Discharge efficiency (0, 1]: grid energy per stored energy.
    soc_min_pu, soc_max_pu : float
        State-of-charge bounds (per unit of ``energy_mwh``).
    reference_price_usd_per_mwh : float
        Value of stored energy at mid-SOC ($/MWh, >= 0), e.g. the expected
        average wholesale price.
    water_value_spread : float
        Relative change of the water value from the lowest to the highest SOC
        (0..2): the value is ``ref * (1 + spread/2)`` when empty and
        ``ref * (1 - spread/2)`` when full.
    degradation_cost_usd_per_mwh : float
        Cost per MWh of grid-side throughput ($/MWh, >= 0): enters the offer and
        is the true resource cost of :meth:`Battery.dispatch`.
    price_blocks : int
        Number of offer blocks per direction (charge, discharge).

    """

    power_mw: float
    energy_mwh: float
    eta_charge: float = 0.95
    eta_discharge: float = 0.95
    soc_min_pu: float = 0.1
    soc_max_pu: float = 0.9
    reference_price_usd_per_mwh: float = 50.0
    water_value_spread: float = 0.5
    degradation_cost_usd_per_mwh: float = 2.0
    price_blocks: int = 2

    def __post_init__(self) -> None:
        checks = [
            (self.power_mw >= 0.0, "power_mw >= 0"),
            (self.energy_mwh > 0.0, "energy_mwh > 0"),
            (0.0 < self.eta_charge <= 1.0, "0 < eta_charge <= 1"),
            (0.0 < self.eta_discharge <= 1.0, "0 < eta_discharge <= 1"),
            (0.0 <= self.soc_min_pu <= self.soc_max_pu <= 1.0, "0 <= soc_min <= soc_max <= 1"),
            (self.reference_price_usd_per_mwh >= 0.0, "reference price >= 0"),
            (0.0 <= self.water_value_spread <= 2.0, "0 <= water_value_spread <= 2"),
            (self.degradation_cost_usd_per_mwh >= 0.0, "degradation cost >= 0"),
            (self.price_blocks >= 1, "price_blocks >= 1"),
        ]
        for ok, what in checks:
            if not ok:
                msg = f"BatteryParams: need {what} ({self})"
                raise ValueError(msg)

    @property
    def e_min_mwh(self) -> float:
        """Lowest allowed stored energy (MWh)."""
        return self.soc_min_pu * self.energy_mwh

    @property
    def e_max_mwh(self) -> float:
        """Highest allowed stored energy (MWh)."""
        return self.soc_max_pu * self.energy_mwh


@dataclass(frozen=True)
class BatteryState:
    """Battery state.

    Parameters
    ----------
    energy_mwh : float
        Stored energy (MWh).
    charged_mwh, discharged_mwh : float
        Cumulative grid-side energy charged / discharged since the start (MWh).

    """

    energy_mwh: float
    charged_mwh: float = 0.0
    discharged_mwh: float = 0.0


class Battery(Device):
    r"""Battery with charge/discharge efficiencies and SOC carried between intervals.

    Notes
    -----
    With grid-side charge :math:`c \ge 0`, discharge :math:`d \ge 0`, net injection
    :math:`p = d - c` and interval length :math:`\Delta t` (h), the stored energy evolves
    as :math:`E' = E + \eta_c c \Delta t - d \Delta t / \eta_d`. Only one of ``c``, ``d``
    is non-zero. The feasible range is
    :math:`[-\min(P, (E_{max}-E)/(\eta_c\Delta t)),\ \min(P, (E-E_{min})\eta_d/\Delta t)]`.

    Offer (water value): stored energy is worth
    :math:`v(x) = \pi_{ref}(1 + s(1/2 - x))` $/MWh at normalised SOC
    :math:`x = (E-E_{min})/(E_{max}-E_{min})`. A charge block is priced at
    :math:`\eta_c v(x_{end}) - c_{deg}` (what a stored MWh is worth per grid MWh),
    a discharge block at :math:`v(x_{end})/\eta_d + c_{deg}`, with :math:`x_{end}` the
    SOC reached at the block's midpoint. Prices rise across blocks, so the
    curve is monotone, and the charge/discharge gap is the round-trip loss plus
    degradation.

    True resource cost of an interval: :math:`c_{deg}(c + d)\Delta t` (grid-side
    throughput); idle costs 0. The water value is an offer price, not a cost.
    :attr:`stored_energy_mwh` is :math:`E` (battery side).

    """

    kind: ClassVar[str] = "battery"

    def __init__(
        self,
        device_id: str,
        bus: int,
        params: BatteryParams,
        state: BatteryState | None = None,
        strategy: OfferStrategy | None = None,
    ) -> None:
        super().__init__(device_id, bus, strategy)
        self.params = params
        if state is None:
            state = BatteryState(energy_mwh=0.5 * (params.e_min_mwh + params.e_max_mwh))
        if not params.e_min_mwh - 1e-9 <= state.energy_mwh <= params.e_max_mwh + 1e-9:
            msg = f"initial energy {state.energy_mwh} MWh outside SOC bounds"
            raise ValueError(msg)
        self.state = state
        self.max_offer_blocks = 2 * params.price_blocks  # type: ignore[misc]
        self._record_initial_storage()

    @property
    def stored_energy_mwh(self) -> float:
        """Return the stored energy ``E`` (MWh, battery side, not times ``eta_discharge``)."""
        return self.state.energy_mwh

    @property
    def soc_pu(self) -> float:
        """State of charge (per unit of capacity)."""
        return self.state.energy_mwh / self.params.energy_mwh

    def _limits(self, hours: float) -> tuple[float, float]:
        """Return (max charge MW, max discharge MW) from power and energy limits."""
        p, e = self.params, self.state.energy_mwh
        ch = min(p.power_mw, max(p.e_max_mwh - e, 0.0) / (p.eta_charge * hours))
        dis = min(p.power_mw, max(e - p.e_min_mwh, 0.0) * p.eta_discharge / hours)
        return ch, dis

    def feasible_range(self, interval: Interval, cond: DeviceConditions) -> tuple[float, float]:
        """Return ``(-max charge, max discharge)`` in MW from power and SOC limits."""
        ch, dis = self._limits(interval.hours)
        return -ch, dis

    def water_value_usd_per_mwh(self, energy_mwh: float) -> float:
        """Return the value ($/MWh) of one more stored MWh at stored energy ``energy_mwh``."""
        p = self.params
        span = p.e_max_mwh - p.e_min_mwh
        x = 0.5 if span <= 0.0 else min(max((energy_mwh - p.e_min_mwh) / span, 0.0), 1.0)
        return p.reference_price_usd_per_mwh * (1.0 + p.water_value_spread * (0.5 - x))

    def cost_curve(self, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return the water-value curve: charge blocks below, discharge blocks above."""
        p, e, h = self.params, self.state.energy_mwh, interval.hours
        ch, dis = self._limits(h)
        n = p.price_blocks
        qc, qd = ch / n, dis / n
        blocks = []
        for j in range(n):  # from full charging towards zero
            c_mid = ch - (j + 0.5) * qc
            v = self.water_value_usd_per_mwh(e + p.eta_charge * c_mid * h)
            blocks.append((qc, p.eta_charge * v - p.degradation_cost_usd_per_mwh))
        for j in range(n):  # from zero towards full discharge
            d_mid = (j + 0.5) * qd
            v = self.water_value_usd_per_mwh(e - d_mid * h / p.eta_discharge)
            blocks.append((qd, v / p.eta_discharge + p.degradation_cost_usd_per_mwh))
        return make_curve(-ch, blocks)

    def self_schedule_mw(self, interval: Interval, cond: DeviceConditions) -> float:
        """Return 0 MW (idle without a market)."""
        return 0.0

    def dispatch(
        self,
        p_set_mw: float,
        interval: Interval,
        actual: DeviceConditions,
        forecast: DeviceConditions | None = None,
    ) -> DispatchResult:
        """Clip the set-point to the feasible range, update the stored energy, cost wear."""
        p_ = self.params
        h = interval.hours
        lo, hi = self.feasible_range(interval, actual)
        p = min(max(p_set_mw, lo), hi)
        c, d = max(-p, 0.0), max(p, 0.0)
        e = self.state.energy_mwh + p_.eta_charge * c * h - d * h / p_.eta_discharge
        e = min(max(e, p_.e_min_mwh), p_.e_max_mwh)  # only removes rounding (< 1e-15 MWh)
        s = self.state
        self.state = replace(
            s,
            energy_mwh=e,
            charged_mwh=s.charged_mwh + c * h,
            discharged_mwh=s.discharged_mwh + d * h,
        )
        cost = p_.degradation_cost_usd_per_mwh * (c + d) * h
        return DispatchResult(self.device_id, self.bus, p_set_mw, p, p * h, cost_usd=cost)
