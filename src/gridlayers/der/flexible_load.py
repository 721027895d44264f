"""Flexible load: a baseline profile plus shiftable energy that nets to zero each day."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from gridlayers.der.base import Device
from gridlayers.der.conditions import DeviceConditions, DispatchResult, Interval
from gridlayers.der.curves import make_curve
from gridlayers.domain.bid_curve import BidCurve

if TYPE_CHECKING:
    from gridlayers.der.strategies import OfferStrategy


@dataclass(frozen=True)
class FlexibleLoadParams:
    """Parameters of a flexible (shiftable) load.

    Parameters
    ----------
    shift_up_max_mw : float
        Largest consumption increase above the baseline (MW, >= 0).
    shift_down_max_mw : float
        Largest consumption decrease below the baseline (MW, >= 0); should not
        exceed the smallest baseline, otherwise the load can turn into a net
        injection.
    shift_energy_max_mwh : float
        Largest magnitude of the shifted energy accumulated within a day (MWh,
        > 0; ``inf`` for no limit).
    reference_price_usd_per_mwh : float
        Price the shifted energy is expected to be settled at later in the day ($/MWh).
    shift_cost_usd_per_mwh : float
        Discomfort cost of shifting one MWh ($/MWh, >= 0), in either direction:
        enters the offer and is the true resource cost of
        :meth:`FlexibleLoad.dispatch`.
    profile : str
        Name of the baseline profile the caller uses to fill
        ``DeviceConditions.load_baseline_mw``.
    share_of_bus_load : float
        Share of the bus load this device represents (0..1); the caller removes
        it from the feeder's ordinary load so it is not counted twice.

    """

    shift_up_max_mw: float
    shift_down_max_mw: float
    shift_energy_max_mwh: float = math.inf
    reference_price_usd_per_mwh: float = 50.0
    shift_cost_usd_per_mwh: float = 5.0
    profile: str = "load"
    share_of_bus_load: float = 0.0

    def __post_init__(self) -> None:
        if not (self.shift_up_max_mw >= 0 and self.shift_down_max_mw >= 0):
            msg = "shift limits must be >= 0"
            raise ValueError(msg)
        if not (self.shift_energy_max_mwh > 0 and self.shift_cost_usd_per_mwh >= 0):
            msg = "shift_energy_max_mwh must be > 0 and shift_cost_usd_per_mwh >= 0"
            raise ValueError(msg)


@dataclass(frozen=True)
class FlexibleLoadState:
    """Flexible load state.

    Parameters
    ----------
    day : int
        Day of the last dispatched interval (-1 before the first).
    shifted_mwh : float
        Shifted energy accumulated since the start of ``day`` (MWh, positive
        when more than the baseline was consumed).
    consumed_mwh, baseline_mwh : float
        Cumulative realised consumption and actual baseline since the start (MWh).
    neutrality_error_mwh : float
        Sum of ``|shifted_mwh|`` left over at day ends (MWh; 0 when neutrality held).

    """

    day: int = -1
    shifted_mwh: float = 0.0
    consumed_mwh: float = 0.0
    baseline_mwh: float = 0.0
    neutrality_error_mwh: float = 0.0


class FlexibleLoad(Device):
    r"""Baseline consumption ``b`` plus a shift ``s`` with daily energy neutrality.

    Notes
    -----
    Net injection :math:`p = -(b + s)`. With shifted energy :math:`S` since midnight,
    :math:`m` intervals left in the day after this one, bounds :math:`u, d` (MW) and
    :math:`\bar S` (MWh), the shift must satisfy

    .. math::
        \max(-d, \frac{-m u \Delta t - S}{\Delta t}, \frac{-\bar S - S}{\Delta t})
        \le s \le
        \min(u, \frac{m d \Delta t - S}{\Delta t}, \frac{\bar S - S}{\Delta t})

    so that the remaining intervals can always bring :math:`S` back to 0. In the last
    interval of a day (:math:`m = 0`) the range collapses to :math:`s = -S/\Delta t`,
    so :math:`\sum_{day} s\,\Delta t = 0` under any set-points within the ranges.
    The shift is the controlled quantity: dispatch derives it from the set-point
    and the *forecast* baseline, and realises :math:`p = -(b^{actual} + s)`.

    Offer: the extra-consumption part (:math:`s > 0`) is bid at
    :math:`\pi_{ref} - c_{shift}`, the reduction part (:math:`s < 0`) at
    :math:`\pi_{ref} + c_{shift}`: the load consumes more only when the price is below
    what it expects to pay later, and less only when it is above.

    True resource cost of an interval: :math:`c_{shift}|s|\Delta t` (both
    directions count, so shifting :math:`+x` then :math:`-x` MWh costs
    :math:`2 c_{shift} x`); following the baseline costs 0.
    :attr:`stored_energy_mwh` is :math:`S`, the shifted energy carried since midnight.

    """

    max_offer_blocks: ClassVar[int] = 2
    kind: ClassVar[str] = "flexible_load"

    def __init__(
        self,
        device_id: str,
        bus: int,
        params: FlexibleLoadParams,
        state: FlexibleLoadState | None = None,
        strategy: OfferStrategy | None = None,
    ) -> None:
        super().__init__(device_id, bus, strategy)
        self.params = params
        self.state = state if state is not None else FlexibleLoadState()
        self._record_initial_storage()

    @property
    def stored_energy_mwh(self) -> float:
        """Return the shifted energy carried since midnight (MWh, > 0 when consumed ahead)."""
        return self.state.shifted_mwh

    def _carried_shift_mwh(self, interval: Interval) -> float:
        """Shifted energy at the start of ``interval`` (0 on a new day)."""
        return self.state.shifted_mwh if interval.day == self.state.day else 0.0

    def shift_range_mw(self, interval: Interval) -> tuple[float, float]:
        """Return ``(s_min, s_max)``, the allowed shift (MW) in ``interval``."""
        p, h = self.params, interval.hours
        s0 = self._carried_shift_mwh(interval)
        m = interval.remaining_in_day
        e = p.shift_energy_max_mwh
        lo = max(-p.shift_down_max_mw, (-m * p.shift_up_max_mw * h - s0) / h, (-e - s0) / h)
        hi = min(p.shift_up_max_mw, (m * p.shift_down_max_mw * h - s0) / h, (e - s0) / h)
        if m == 0:
            lo = hi = -s0 / h
        return min(lo, hi), hi

    def feasible_range(self, interval: Interval, cond: DeviceConditions) -> tuple[float, float]:
        """Return ``(-(b + s_max), -(b + s_min))`` in MW."""
        lo, hi = self.shift_range_mw(interval)
        b = cond.load_baseline_mw
        return -(b + hi), -(b + lo)

    def cost_curve(self, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return extra-consumption blocks below and reduction blocks above the baseline."""
        p = self.params
        lo, hi = self.shift_range_mw(interval)
        up = max(hi - max(lo, 0.0), 0.0)
        down = max(min(hi, 0.0) - lo, 0.0)
        c = p.shift_cost_usd_per_mwh
        ref = p.reference_price_usd_per_mwh
        return make_curve(-(cond.load_baseline_mw + hi), [(up, ref - c), (down, ref + c)])

    def self_schedule_mw(self, interval: Interval, cond: DeviceConditions) -> float:
        """Return the injection closest to the baseline (smallest feasible shift)."""
        lo, hi = self.shift_range_mw(interval)
        return -(cond.load_baseline_mw + min(max(0.0, lo), hi))

    def dispatch(
        self,
        p_set_mw: float,
        interval: Interval,
        actual: DeviceConditions,
        forecast: DeviceConditions | None = None,
    ) -> DispatchResult:
        """Apply the shift implied by ``p_set`` and the forecast baseline; update state, cost."""
        fc = actual if forecast is None else forecast
        lo, hi = self.shift_range_mw(interval)
        s = min(max(-p_set_mw - fc.load_baseline_mw, lo), hi)
        h = interval.hours
        st = self.state
        err = st.neutrality_error_mwh
        if interval.day != st.day:
            err += abs(st.shifted_mwh)
        shifted = self._carried_shift_mwh(interval) + s * h
        if interval.remaining_in_day == 0:
            shifted = 0.0  # s = -S/h exactly; drop the rounding residue (< 1e-15 MWh)
        p = -(actual.load_baseline_mw + s)
        self.state = replace(
            st,
            day=interval.day,
            shifted_mwh=shifted,
            consumed_mwh=st.consumed_mwh - p * h,
            baseline_mwh=st.baseline_mwh + actual.load_baseline_mw * h,
            neutrality_error_mwh=err,
        )
        cost = self.params.shift_cost_usd_per_mwh * abs(s) * h
        return DispatchResult(self.device_id, self.bus, p_set_mw, p, p * h, cost_usd=cost)
