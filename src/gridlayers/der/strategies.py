"""Offer strategies: how a device's cost curve becomes the offer it submits.

Strategies never touch device physics; they only reprice or reshape the
device's :meth:`~gridlayers.der.base.Device.cost_curve` within its feasible
range. Look them up by name with :func:`make_strategy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gridlayers.der.curves import shift_prices
from gridlayers.domain.bid_curve import BidCurve

if TYPE_CHECKING:
    from gridlayers.der.base import Device
    from gridlayers.der.conditions import DeviceConditions, Interval


class OfferStrategy(Protocol):
    """Turns a device's state and conditions into a :class:`BidCurve`."""

    name: str

    def bid(self, device: Device, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return the offer of ``device`` for ``interval`` (MW, $/MWh, injection positive)."""
        ...


@dataclass(frozen=True)
class TruthfulStrategy:
    """Offer the device's true cost curve (cost-based; the default)."""

    name: str = "truthful"

    def bid(self, device: Device, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return ``device.cost_curve(interval, cond)``."""
        return device.cost_curve(interval, cond)


@dataclass(frozen=True)
class MarkupStrategy:
    """Add a constant markup to every block price (keeps the curve monotone).

    Parameters
    ----------
    markup_usd_per_mwh : float
        Added to every block price ($/MWh). Positive values ask more for
        injecting and bid less for withdrawing.

    """

    markup_usd_per_mwh: float = 0.0
    name: str = "markup"

    def bid(self, device: Device, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return the cost curve with all prices raised by the markup."""
        return shift_prices(device.cost_curve(interval, cond), self.markup_usd_per_mwh)


@dataclass(frozen=True)
class SelfScheduleStrategy:
    """Offer no flexibility: a fixed injection at the device's self-schedule."""

    name: str = "self_schedule"

    def bid(self, device: Device, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return ``BidCurve.fixed(device.self_schedule_mw(interval, cond))``."""
        return BidCurve.fixed(device.self_schedule_mw(interval, cond))


#: Registry of named strategies; values build a strategy from keyword parameters.
STRATEGIES: dict[str, Callable[..., OfferStrategy]] = {
    "truthful": TruthfulStrategy,
    "markup": MarkupStrategy,
    "self_schedule": SelfScheduleStrategy,
}


def make_strategy(name: str, **params: float) -> OfferStrategy:
    """Build a registered strategy by name.

    Parameters
    ----------
    name : str
        A key of :data:`STRATEGIES`.
    **params
        Strategy parameters (e.g. ``markup_usd_per_mwh`` for ``"markup"``).

    Returns
    -------
    OfferStrategy
        The strategy instance.

    """
    try:
        factory = STRATEGIES[name]
    except KeyError:
        msg = f"unknown offer strategy {name!r}; known: {sorted(STRATEGIES)}"
        raise ValueError(msg) from None
    return factory(**params)
