"""Inputs and outputs shared by all DER device models.

Time base: interval ``k`` of a run starts ``start_offset_min + k * duration_min``
minutes after midnight of day 0 (see :mod:`gridlayers.conventions`). Forecasts
and actuals enter the device models only through :class:`DeviceConditions`; the
caller decides which one it passes (forecast for offers, actual for dispatch).
"""

from __future__ import annotations

from dataclasses import dataclass

from gridlayers.conventions import interval_hours

MINUTES_PER_DAY = 1440.0


@dataclass(frozen=True)
class Interval:
    """One market interval.

    Parameters
    ----------
    index : int
        Interval number ``k`` since the start of the run (>= 0).
    duration_min : float
        Interval length in minutes; must divide a day (1440 min).
    start_offset_min : float
        Time of day (minutes after midnight) at which interval 0 starts; a
        multiple of ``duration_min``.

    """

    index: int
    duration_min: float = 15.0
    start_offset_min: float = 0.0

    def __post_init__(self) -> None:
        if self.index < 0:
            msg = f"Interval index must be >= 0, got {self.index}"
            raise ValueError(msg)
        n = MINUTES_PER_DAY / self.duration_min
        if self.duration_min <= 0 or abs(n - round(n)) > 1e-9:
            msg = f"duration_min must divide 1440, got {self.duration_min}"
            raise ValueError(msg)
        k = self.start_offset_min / self.duration_min
        if abs(k - round(k)) > 1e-9 or not 0 <= self.start_offset_min < MINUTES_PER_DAY:
            msg = (
                "start_offset_min must be a multiple of duration_min in [0, 1440), "
                f"got {self.start_offset_min}"
            )
            raise ValueError(msg)

    @property
    def hours(self) -> float:
        """Interval length in hours (MW times this is MWh)."""
        return interval_hours(self.duration_min)

    @property
    def start_min(self) -> float:
        """Start in minutes after midnight of day 0."""
        return self.start_offset_min + self.index * self.duration_min

    @property
    def end_min(self) -> float:
        """End in minutes after midnight of day 0."""
        return self.start_min + self.duration_min

    @property
    def intervals_per_day(self) -> int:
        """Number of intervals in one day."""
        return round(MINUTES_PER_DAY / self.duration_min)

    @property
    def day(self) -> int:
        """Day number (0-based) that contains the interval start."""
        return int(self.start_min // MINUTES_PER_DAY)

    @property
    def index_in_day(self) -> int:
        """Position of the interval within its day (0 = first after midnight)."""
        return round((self.start_min - self.day * MINUTES_PER_DAY) / self.duration_min)

    @property
    def remaining_in_day(self) -> int:
        """Number of intervals of the same day that follow this one."""
        return self.intervals_per_day - 1 - self.index_in_day

    def next(self) -> Interval:
        """Return the following interval."""
        return Interval(self.index + 1, self.duration_min, self.start_offset_min)


@dataclass(frozen=True)
class DeviceConditions:
    """Exogenous conditions of one device in one interval (forecast or actual).

    Parameters
    ----------
    pv_available_pu : float
        Available PV power per unit of the rated power (0..1), interval average.
    load_baseline_mw : float
        Baseline (unshifted) consumption of a flexible load in MW, positive for
        consumption, interval average.

    """

    pv_available_pu: float = 0.0
    load_baseline_mw: float = 0.0

    def __post_init__(self) -> None:
        if not self.pv_available_pu >= 0.0:
            msg = f"pv_available_pu must be >= 0, got {self.pv_available_pu}"
            raise ValueError(msg)


#: Conditions used when a device needs none (battery, EV fleet).
NO_CONDITIONS = DeviceConditions()


@dataclass(frozen=True)
class DispatchResult:
    """What a device did in one interval.

    Parameters
    ----------
    device_id : str
        Device identifier.
    bus : int
        pandapower bus index of the device.
    p_set_mw : float
        Set-point received (net injection, MW).
    p_mw : float
        Realised net injection (MW, injection positive) with actual conditions.
    energy_mwh : float
        Realised net injected energy in the interval (MWh), ``p_mw * hours``.
    curtailed_mwh : float
        Energy available but not produced (PV curtailment), MWh (>= 0). Energy
        lost, never a cost.
    cost_usd : float
        True resource cost of what the device physically did in the interval ($),
        measured from one baseline: doing nothing costs 0. PV: marginal cost times
        produced energy; battery: degradation cost times grid-side throughput;
        flexible load: shift cost times ``|shift|`` energy; EV fleet: penalty on
        the avoidable shortfall of sessions departing in the interval. See
        ``docs/der.md``, "True resource cost".
    unmet_mwh : float
        EV fleet only: energy not delivered by departure (MWh, battery side) of the
        sessions that departed in the interval, avoidable or not (>= 0). Energy
        lost, like curtailment; only its avoidable part is in ``cost_usd``.

    """

    device_id: str
    bus: int
    p_set_mw: float
    p_mw: float
    energy_mwh: float
    curtailed_mwh: float = 0.0
    cost_usd: float = 0.0
    unmet_mwh: float = 0.0
