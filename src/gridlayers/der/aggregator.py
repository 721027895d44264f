"""Aggregator core: owns devices, builds their offers, dispatches awards, settles.

The aggregator is the *operator* of ASSUME's unit/strategy/operator split: it
owns :class:`~gridlayers.der.base.Device` objects (units), each priced by its
:class:`~gridlayers.der.strategies.OfferStrategy`, and turns market awards into
device set-points. It is a plain object with explicit state (the offers made
for intervals not yet dispatched); no mosaik.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridlayers.der.base import Device
from gridlayers.der.conditions import NO_CONDITIONS, DeviceConditions, DispatchResult, Interval
from gridlayers.der.curves import merge_bid_curves, split_award
from gridlayers.domain.bid_curve import BidCurve

#: Awards outside the offered range by at most this (MW) are clipped, not rejected.
AWARD_TOL_MW = 1e-6

Conditions = Mapping[str, DeviceConditions]


@dataclass(frozen=True)
class PendingOffers:
    """Offers made for one interval, kept until it is dispatched.

    Parameters
    ----------
    offers : dict of str to BidCurve
        Offer per device id.
    forecasts : dict of str to DeviceConditions
        Conditions each offer was built with.

    """

    offers: dict[str, BidCurve]
    forecasts: dict[str, DeviceConditions]


@dataclass(frozen=True)
class Settlement:
    """Settlement of one device in one interval.

    Parameters
    ----------
    device_id : str
        Device identifier.
    energy_mwh : float
        Realised net injected energy (MWh).
    price_usd_per_mwh : float
        Settlement price at the device's bus ($/MWh).
    revenue_usd : float
        ``price * energy`` ($; negative when the device pays for consumption).
    offer_cost_usd : float
        As-offered cost of the cleared part of the device's offer at its
        set-point, ``cost_usd_per_h(p_set) * hours`` ($).

    """

    device_id: str
    energy_mwh: float
    price_usd_per_mwh: float
    revenue_usd: float
    offer_cost_usd: float


class Aggregator:
    """A portfolio of devices that bids per bus or as one portfolio.

    Parameters
    ----------
    name : str
        Aggregator name.
    devices : sequence of Device
        Devices it operates (device ids must be unique).

    """

    def __init__(self, name: str, devices: Sequence[Device]) -> None:
        ids = [d.device_id for d in devices]
        if len(set(ids)) != len(ids):
            msg = f"aggregator {name!r}: duplicate device ids"
            raise ValueError(msg)
        self.name = name
        self.devices: tuple[Device, ...] = tuple(devices)
        self.pending: dict[int, PendingOffers] = {}
        #: Interval index and offers of the most recent dispatch (used by :meth:`settle`).
        self.last_dispatched: tuple[int, PendingOffers] | None = None

    @property
    def buses(self) -> list[int]:
        """Buses with at least one device, sorted."""
        return sorted({d.bus for d in self.devices})

    def _conditions(self, conds: Conditions | None) -> dict[str, DeviceConditions]:
        """Return conditions per device; PV and flexible loads must be given."""
        conds = conds if conds is not None else {}
        out = {}
        for d in self.devices:
            if d.device_id in conds:
                out[d.device_id] = conds[d.device_id]
            elif d.kind in ("pv", "flexible_load"):
                msg = f"no conditions given for {d.kind} device {d.device_id!r}"
                raise KeyError(msg)
            else:
                out[d.device_id] = NO_CONDITIONS
        return out

    def device_offers(
        self, interval: Interval, forecasts: Conditions | None
    ) -> dict[str, BidCurve]:
        """Build (and remember) every device's offer for ``interval``.

        Parameters
        ----------
        interval : Interval
            Interval offered for.
        forecasts : mapping of str to DeviceConditions
            Forecast conditions per device id (PV and flexible loads required).

        Returns
        -------
        dict of str to BidCurve
            Offer per device id (MW, $/MWh, injection positive).

        """
        fc = self._conditions(forecasts)
        offers = {d.device_id: d.offer(interval, fc[d.device_id]) for d in self.devices}
        self.pending[interval.index] = PendingOffers(offers, fc)
        return offers

    def offers_by_bus(
        self, interval: Interval, forecasts: Conditions | None
    ) -> dict[int, BidCurve]:
        """Return one merged offer per bus (for Total TSO: DER at their own buses)."""
        offers = self.device_offers(interval, forecasts)
        return {
            bus: merge_bid_curves([offers[d.device_id] for d in self.devices if d.bus == bus])
            for bus in self.buses
        }

    def portfolio_offer(self, interval: Interval, forecasts: Conditions | None) -> BidCurve:
        """Return the whole portfolio's merged offer (for Minimal DSO, at the interface)."""
        return merge_bid_curves(list(self.device_offers(interval, forecasts).values()))

    def feasible_range(
        self, interval: Interval, forecasts: Conditions | None
    ) -> tuple[float, float]:
        """Return the portfolio's feasible net injection ``(p_min_mw, p_max_mw)``."""
        fc = self._conditions(forecasts)
        ranges = [d.feasible_range(interval, fc[d.device_id]) for d in self.devices]
        return sum(r[0] for r in ranges), sum(r[1] for r in ranges)

    def dispatch(
        self,
        award: float | Mapping[int, float],
        interval: Interval,
        actuals: Conditions | None,
    ) -> dict[str, DispatchResult]:
        """Disaggregate an award to devices in merit order and dispatch them.

        Parameters
        ----------
        award : float or mapping of int to float
            Portfolio net injection (MW), or net injection per bus (MW; every bus
            of :attr:`buses` must be present).
        interval : Interval
            Interval being dispatched; uses the offers made for it (built from
            ``actuals`` if none were made).
        actuals : mapping of str to DeviceConditions
            Realised conditions per device id.

        Returns
        -------
        dict of str to DispatchResult
            Realised dispatch per device id; device states advance by one interval.

        """
        act = self._conditions(actuals)
        pend = self.pending.pop(interval.index, None)
        if pend is None:
            pend = PendingOffers(
                {d.device_id: d.offer(interval, act[d.device_id]) for d in self.devices}, act
            )
        groups = self._award_groups(award)
        setpoints: dict[str, float] = {}
        for total, devs in groups:
            curves = [pend.offers[d.device_id] for d in devs]
            total = _check_award(total, curves)
            setpoints.update(
                zip((d.device_id for d in devs), split_award(curves, total), strict=True)
            )
        self.last_dispatched = (interval.index, pend)
        return {
            d.device_id: d.dispatch(
                setpoints[d.device_id], interval, act[d.device_id], pend.forecasts[d.device_id]
            )
            for d in self.devices
        }

    def setpoints(
        self, award: float | Mapping[int, float], offers: Mapping[str, BidCurve]
    ) -> dict[str, float]:
        """Return the merit-order set-point per device for ``award`` without dispatching."""
        out: dict[str, float] = {}
        for total, devs in self._award_groups(award):
            curves = [offers[d.device_id] for d in devs]
            out.update(
                zip(
                    (d.device_id for d in devs),
                    split_award(curves, _check_award(total, curves)),
                    strict=True,
                )
            )
        return out

    def _award_groups(self, award: float | Mapping[int, float]) -> list[tuple[float, list[Device]]]:
        """Pair each award total with the devices that share it."""
        if isinstance(award, Mapping):
            missing = set(self.buses) - set(award)
            if missing:
                msg = f"awards missing for buses {sorted(missing)}"
                raise KeyError(msg)
            return [(float(award[b]), [d for d in self.devices if d.bus == b]) for b in self.buses]
        return [(float(award), list(self.devices))]

    def settle(
        self,
        results: Mapping[str, DispatchResult],
        price: float | Mapping[int, float],
        interval: Interval,
        offers: Mapping[str, BidCurve] | None = None,
    ) -> dict[str, Settlement]:
        """Settle realised energy at a price (uniform or per bus).

        Parameters
        ----------
        results : mapping of str to DispatchResult
            Output of :meth:`dispatch`.
        price : float or mapping of int to float
            Price in $/MWh, one for the portfolio or one per bus (LMP/DLMP).
        interval : Interval
            The settled interval.
        offers : mapping of str to BidCurve or None
            Offers to value the as-offered cost with; ``None`` uses the offers of
            the last dispatch if it was for ``interval``, else the cost is 0.

        Returns
        -------
        dict of str to Settlement
            Per device id; sum ``revenue_usd`` for the aggregator's revenue.

        """
        last = self.last_dispatched
        if offers is None and last is not None and last[0] == interval.index:
            offers = last[1].offers
        out = {}
        for dev_id, r in results.items():
            pr = float(price[r.bus]) if isinstance(price, Mapping) else float(price)
            cost = 0.0
            if offers is not None:
                c = offers[dev_id]
                cost = (
                    c.cost_usd_per_h(min(max(r.p_set_mw, c.p_min_mw), c.p_max_mw)) * interval.hours
                )
            out[dev_id] = Settlement(dev_id, r.energy_mwh, pr, pr * r.energy_mwh, cost)
        return out


def _check_award(total: float, curves: Sequence[BidCurve]) -> float:
    """Clip ``total`` to the curves' combined range; reject it if far outside."""
    lo = sum(c.p_min_mw for c in curves)
    hi = sum(c.p_max_mw for c in curves)
    if total < lo - AWARD_TOL_MW or total > hi + AWARD_TOL_MW:
        msg = f"award {total} MW outside offered range [{lo}, {hi}] MW"
        raise ValueError(msg)
    return min(max(total, lo), hi)
