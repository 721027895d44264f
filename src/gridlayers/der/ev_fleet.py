"""EV fleet: charging sessions with deadlines, as a vectorised interval model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from gridlayers.der.base import Device
from gridlayers.der.conditions import MINUTES_PER_DAY, DeviceConditions, DispatchResult, Interval
from gridlayers.der.curves import make_curve
from gridlayers.domain.bid_curve import BidCurve

if TYPE_CHECKING:
    from gridlayers.der.strategies import OfferStrategy

MIN_DWELL_MIN = 15.0
#: Per-session shortfalls below this (MWh, 1 Wh) are rounding and not penalised.
SHORTFALL_TOL_MWH = 1e-9


@dataclass(frozen=True)
class EVFleetParams:
    """Parameters of an EV fleet at one bus (session generation and economics).

    Parameters
    ----------
    n_vehicles : int
        Number of vehicles (one charger each).
    charger_kw : float
        Charger power per vehicle (kW, grid side).
    energy_need_mean_kwh, energy_need_std_kwh : float
        Normal distribution of the energy to store per session (kWh, battery
        side), truncated at 0.
    arrival_mean_h, arrival_std_h : float
        Normal distribution of the arrival time of day (hours), wrapped to [0, 24).
    departure_mean_h, departure_std_h : float
        Normal distribution of the departure time of day (hours), wrapped to
        [0, 24); a departure not after the arrival is on the next day.
    charge_efficiency : float
        Stored energy per grid energy (0, 1].
    value_of_charging_usd_per_mwh : float
        Willingness to pay for charging beyond the deadline-driven minimum ($/MWh).
    horizon_days : int
        Number of days for which sessions are generated (one per vehicle per day).
    unmet_energy_penalty_usd_per_mwh : float
        True resource cost of one MWh (battery side) that a session could have
        received but did not by its departure ($/MWh, >= 0); the default 500 is
        about what the driver pays to make the energy up at a public DC fast
        charger (see ``docs/der.md``).

    """

    n_vehicles: int
    charger_kw: float = 11.0
    energy_need_mean_kwh: float = 20.0
    energy_need_std_kwh: float = 8.0
    arrival_mean_h: float = 18.0
    arrival_std_h: float = 1.5
    departure_mean_h: float = 7.5
    departure_std_h: float = 1.0
    charge_efficiency: float = 0.92
    value_of_charging_usd_per_mwh: float = 120.0
    horizon_days: int = 1
    unmet_energy_penalty_usd_per_mwh: float = 500.0

    def __post_init__(self) -> None:
        if self.n_vehicles < 0 or self.horizon_days < 1 or self.charger_kw < 0:
            msg = "n_vehicles >= 0, charger_kw >= 0 and horizon_days >= 1 required"
            raise ValueError(msg)
        if not self.unmet_energy_penalty_usd_per_mwh >= 0.0:
            msg = (
                "unmet_energy_penalty_usd_per_mwh must be >= 0, "
                f"got {self.unmet_energy_penalty_usd_per_mwh}"
            )
            raise ValueError(msg)
        if not 0.0 < self.charge_efficiency <= 1.0:
            msg = f"charge_efficiency must be in (0, 1], got {self.charge_efficiency}"
            raise ValueError(msg)


@dataclass(frozen=True, eq=False)
class EVSessions:
    """Charging sessions (one row per session; arrays are not modified).

    Parameters
    ----------
    vehicle : ndarray of int
        Vehicle number of each session.
    arrival_min, departure_min : ndarray of float
        Plug-in and plug-out time in minutes after midnight of day 0.
    need_mwh : ndarray of float
        Energy to store by departure (MWh, battery side).
    charger_mw : ndarray of float
        Charger power (MW, grid side).

    """

    vehicle: np.ndarray
    arrival_min: np.ndarray
    departure_min: np.ndarray
    need_mwh: np.ndarray
    charger_mw: np.ndarray

    def __len__(self) -> int:
        return len(self.vehicle)


def generate_sessions(params: EVFleetParams, seed: int) -> EVSessions:
    """Draw one session per vehicle and day, deterministically from ``seed``.

    Parameters
    ----------
    params : EVFleetParams
        Distributions and sizes.
    seed : int
        Seed of the numpy random generator.

    Returns
    -------
    EVSessions
        Sessions sorted by vehicle then arrival; a session's departure is cut to
        the vehicle's next arrival if they would overlap, and dwell times are at
        least 15 minutes.

    """
    rng = np.random.default_rng(seed)
    n, days = params.n_vehicles, params.horizon_days
    shape = (n, days)
    arr_h = np.mod(rng.normal(params.arrival_mean_h, params.arrival_std_h, shape), 24.0)
    dep_h = np.mod(rng.normal(params.departure_mean_h, params.departure_std_h, shape), 24.0)
    need_kwh = np.maximum(
        rng.normal(params.energy_need_mean_kwh, params.energy_need_std_kwh, shape), 0.0
    )
    day0 = np.arange(days)[None, :] * MINUTES_PER_DAY
    arrival = day0 + np.round(arr_h * 4.0) * 15.0  # quarter-hour resolution
    departure = day0 + np.round(dep_h * 4.0) * 15.0
    departure = np.where(departure <= arrival, departure + MINUTES_PER_DAY, departure)
    next_arrival = np.concatenate([arrival[:, 1:], np.full((n, 1), np.inf)], axis=1)
    departure = np.maximum(np.minimum(departure, next_arrival), arrival + MIN_DWELL_MIN)
    return EVSessions(
        vehicle=np.repeat(np.arange(n), days),
        arrival_min=arrival.ravel(),
        departure_min=departure.ravel(),
        need_mwh=need_kwh.ravel() / 1000.0,
        charger_mw=np.full(n * days, params.charger_kw / 1000.0),
    )


@dataclass(frozen=True, eq=False)
class EVFleetState:
    """EV fleet state.

    Parameters
    ----------
    delivered_mwh : ndarray of float
        Energy stored so far per session (MWh, battery side).
    charged_mwh : float
        Cumulative grid-side energy drawn by the fleet (MWh).
    start_min : float or None
        Start of the first dispatched interval (minutes after midnight of day 0;
        ``None`` before the first dispatch): the start of the run's horizon.
    time_min : float or None
        The fleet's current time: end of the last dispatched interval (minutes
        after midnight of day 0; ``None`` before the first dispatch).
    unmet_mwh : float
        Cumulative energy not delivered by departure (MWh, battery side) of the
        sessions that departed within the dispatched intervals.
    cost_usd : float
        Cumulative unmet-energy penalty ($).

    """

    delivered_mwh: np.ndarray
    charged_mwh: float = 0.0
    start_min: float | None = None
    time_min: float | None = None
    unmet_mwh: float = 0.0
    cost_usd: float = 0.0


class EVFleet(Device):
    r"""EV fleet whose feasible range always keeps every feasible session on time.

    Notes
    -----
    For session ``i`` with arrival :math:`a_i`, departure :math:`d_i`, charger power
    :math:`P_i` and efficiency :math:`\eta`, in interval :math:`[t_0, t_1)` of length
    :math:`\Delta t` and with remaining need :math:`r_i`:

    - plugged time :math:`\tau_i = \max(0, \min(t_1, d_i) - \max(t_0, a_i))`;
    - upper bound :math:`\bar x_i = \min(r_i, \eta P_i \tau_i)` (MWh stored);
    - lower bound :math:`\underline x_i = \min(\bar x_i, \max(0, r_i - \eta P_i T_i))`
      with :math:`T_i = \max(0, d_i - \max(t_1, a_i))` the time left after the interval.

    If :math:`r_i \le \eta P_i (d_i - \max(t_0, a_i))` at the start of an interval,
    any :math:`x_i \in [\underline x_i, \bar x_i]` keeps it true, so a session whose
    need fits its dwell time is always complete at departure. The fleet's net
    injection is :math:`p = -\sum_i x_i / (\eta\Delta t)`. A fleet set-point is split by
    giving every session its lower bound, then filling the rest earliest departure
    first. Events inside an interval are represented by the plugged time
    :math:`\tau_i` (no discrete-event simulation needed).

    True resource cost: a session departing in a dispatched interval
    (:math:`t_{prev} < d_i \le t_1`, with :math:`t_{prev}` the end of the previous
    dispatch, or :math:`t_0` for the first) is charged
    :math:`c_{unmet}\max(0, \min(n_i, \eta P_i D_i) - e_i)` with need :math:`n_i`,
    delivered energy :math:`e_i` and :math:`D_i = \max(0, d_i - \max(a_i, t_{start}))`
    its plugged time within the run (:math:`t_{start}` the start of the first
    dispatched interval). Only the avoidable shortfall is a cost: what even full
    power since arrival (or the run start) could not deliver is fixed by the
    session data and reported as energy in ``unmet_mwh``. Sessions departing
    after the last dispatched interval are never charged.
    :attr:`stored_energy_mwh` is the grid-side energy drawn for sessions that have
    not departed by the fleet's current time, :math:`\sum_{d_i > t} e_i/\eta`.

    """

    max_offer_blocks: ClassVar[int] = 1
    kind: ClassVar[str] = "ev_fleet"

    def __init__(
        self,
        device_id: str,
        bus: int,
        params: EVFleetParams,
        sessions: EVSessions,
        state: EVFleetState | None = None,
        strategy: OfferStrategy | None = None,
    ) -> None:
        super().__init__(device_id, bus, strategy)
        self.params = params
        self.sessions = sessions
        if state is None:
            state = EVFleetState(delivered_mwh=np.zeros(len(sessions)))
        self.state = state
        self._record_initial_storage()

    @property
    def stored_energy_mwh(self) -> float:
        """Return the grid-side energy drawn for sessions not departed yet (MWh).

        That is ``delivered / charge_efficiency`` summed over sessions departing
        after the fleet's current time (:attr:`EVFleetState.time_min`; every
        session before the first dispatch): grid energy the run has already bought
        for demand that is still to come.
        """
        now = self.state.time_min
        delivered = self.state.delivered_mwh
        if now is not None:
            delivered = delivered[self.sessions.departure_min > now]
        return float(delivered.sum()) / self.params.charge_efficiency

    def session_bounds_mwh(self, interval: Interval) -> tuple[np.ndarray, np.ndarray]:
        """Return per-session ``(lower, upper)`` stored energy (MWh) for ``interval``."""
        s, eta = self.sessions, self.params.charge_efficiency
        t0, t1 = interval.start_min, interval.end_min
        remaining = np.maximum(s.need_mwh - self.state.delivered_mwh, 0.0)
        plugged_h = (
            np.maximum(np.minimum(t1, s.departure_min) - np.maximum(t0, s.arrival_min), 0.0) / 60.0
        )
        after_h = np.maximum(s.departure_min - np.maximum(t1, s.arrival_min), 0.0) / 60.0
        upper = np.minimum(remaining, eta * s.charger_mw * plugged_h)
        lower = np.minimum(upper, np.maximum(remaining - eta * s.charger_mw * after_h, 0.0))
        return lower, upper

    def feasible_range(self, interval: Interval, cond: DeviceConditions) -> tuple[float, float]:
        """Return ``(-max charging, -min charging)`` in MW (grid side)."""
        lower, upper = self.session_bounds_mwh(interval)
        k = self.params.charge_efficiency * interval.hours
        return -float(upper.sum()) / k, -float(lower.sum()) / k

    def cost_curve(self, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return the deadline floor plus one block of optional charging at its value."""
        lo, hi = self.feasible_range(interval, cond)
        return make_curve(lo, [(hi - lo, self.params.value_of_charging_usd_per_mwh)])

    def self_schedule_mw(self, interval: Interval, cond: DeviceConditions) -> float:
        """Return the charge-as-soon-as-possible injection (the range's lower end)."""
        return self.feasible_range(interval, cond)[0]

    def dispatch(
        self,
        p_set_mw: float,
        interval: Interval,
        actual: DeviceConditions,
        forecast: DeviceConditions | None = None,
    ) -> DispatchResult:
        """Split the fleet set-point over sessions (floors, then earliest departure).

        Advances the fleet's time to the interval end and charges the unmet-energy
        penalty of the sessions that departed since the previous dispatch.
        """
        lower, upper = self.session_bounds_mwh(interval)
        eta, h = self.params.charge_efficiency, interval.hours
        target = min(max(-p_set_mw * eta * h, float(lower.sum())), float(upper.sum()))
        room = upper - lower
        order = np.argsort(self.sessions.departure_min, kind="stable")
        rest = target - float(lower.sum())
        before = np.cumsum(room[order]) - room[order]
        x = lower.copy()
        x[order] += np.clip(rest - before, 0.0, room[order])
        stored = float(x.sum())
        p = -stored / (eta * h)
        st = self.state
        delivered = st.delivered_mwh + x
        start = interval.start_min if st.start_min is None else st.start_min
        since = interval.start_min if st.time_min is None else st.time_min
        unmet, short = self._departing_shortfall_mwh(delivered, since, interval.end_min, start)
        cost = self.params.unmet_energy_penalty_usd_per_mwh * short
        self.state = replace(
            st,
            delivered_mwh=delivered,
            charged_mwh=st.charged_mwh - p * h,
            start_min=start,
            time_min=interval.end_min,
            unmet_mwh=st.unmet_mwh + unmet,
            cost_usd=st.cost_usd + cost,
        )
        return DispatchResult(
            self.device_id, self.bus, p_set_mw, p, p * h, cost_usd=cost, unmet_mwh=unmet
        )

    def _departing_shortfall_mwh(
        self, delivered: np.ndarray, since_min: float, until_min: float, start_min: float
    ) -> tuple[float, float]:
        """Return ``(unmet, avoidable shortfall)`` in MWh of sessions leaving in ``(since, until]``.

        ``unmet`` is need minus delivered; the avoidable shortfall is
        ``min(need, eta * P * D) - delivered`` with ``D`` the plugged time since
        ``max(arrival, start_min)``. Per-session amounts below
        :data:`SHORTFALL_TOL_MWH` are rounding and count as 0.
        """
        s = self.sessions
        leaving = (s.departure_min > since_min) & (s.departure_min <= until_min)
        if not leaving.any():
            return 0.0, 0.0
        need, got = s.need_mwh[leaving], delivered[leaving]
        dwell_h = (
            np.maximum(
                s.departure_min[leaving] - np.maximum(s.arrival_min[leaving], start_min), 0.0
            )
            / 60.0
        )
        eta = self.params.charge_efficiency
        reachable = np.minimum(need, eta * s.charger_mw[leaving] * dwell_h)
        unmet, short = need - got, reachable - got
        unmet = np.where(unmet > SHORTFALL_TOL_MWH, unmet, 0.0)
        short = np.where(short > SHORTFALL_TOL_MWH, short, 0.0)
        return float(unmet.sum()), float(short.sum())

    def feasible_sessions(self) -> np.ndarray:
        """Return a mask of sessions whose need fits their dwell time at full power."""
        s = self.sessions
        dwell_h = (s.departure_min - s.arrival_min) / 60.0
        return s.need_mwh <= self.params.charge_efficiency * s.charger_mw * dwell_h + 1e-12

    def unmet_need_mwh(self, until_min: float) -> np.ndarray:
        """Return the unmet need (MWh) of sessions that departed by ``until_min``."""
        gone = self.sessions.departure_min <= until_min
        return np.where(
            gone, np.maximum(self.sessions.need_mwh - self.state.delivered_mwh, 0.0), 0.0
        )

    def plugged_in(self, interval: Interval) -> int:
        """Return the number of sessions plugged in at some time during ``interval``."""
        s = self.sessions
        return int(
            np.sum((s.arrival_min < interval.end_min) & (s.departure_min > interval.start_min))
        )
