"""mosaik agent for DER aggregators: one entity per (LDA, aggregator).

Phase ``t0+0``: offers from device state and *forecast* conditions — per device
(``offers``) and as one merged portfolio curve (``portfolio``). Under ``passive`` each
device offers only its self-schedule (a fixed curve at its forecast-based choice), which
the DSO forecasts into the LDA's import and passes back unchanged. Under ``minimal_dso`` the TSO's
portfolio award arrives at ``t0+1`` and is split in merit order (``proposed``),
without network knowledge. Final ``setpoints`` (from the DSO) arrive at ``t0+2``:
devices are dispatched under *actual* conditions and the realised injections go to
the feeder (``DER_P[MW]``). With ``output.device_dispatch`` the dispatch is also
reported per device (``der_devices``). After each dispatch the devices' states go to the
collector (``state``, for checkpoints); an entity created with ``state`` (``run
--resume``) starts from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.agents import PHASE_OFFER
from gridlayers.agents.lda_cache import lda_model
from gridlayers.der import Aggregator
from gridlayers.der.base import Device
from gridlayers.der.conditions import DeviceConditions
from gridlayers.der.curves import merge_bid_curves
from gridlayers.domain import BidCurve
from gridlayers.lda import LDAModel
from gridlayers.simulators.base import RunSimulator
from gridlayers.simulators.codec import encode_curve, first_value
from gridlayers.simulators.state import aggregator_state, restore_aggregator

#: Bid block slots of a portfolio offer at the TSO (``TransmissionMarket(max_blocks=10)``);
#: a merged portfolio with more distinct prices is compressed (same range, same cost at
#: every remaining block boundary), and its award is split over the devices' own offers.
PORTFOLIO_BLOCKS = 10
#: What the collector stores per aggregator and interval (see :meth:`AggregatorSim._dispatch`),
#: and the devices' states after it (:func:`gridlayers.simulators.state.aggregator_state`).
RECORD_ATTRS = ["der_report", "state"]
#: Per-device dispatch for the collector, produced only with ``output.device_dispatch``.
DEVICE_ATTRS = ["der_devices"]
ATTRS = ["offers", "portfolio", "awards", "setpoints[MW]", "proposed[MW]", "DER_P[MW]"]
ATTRS += RECORD_ATTRS + DEVICE_ATTRS

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {
        "Aggregator": {
            "public": True,
            "params": ["lda", "aggregator", "state", "area"],
            "attrs": ATTRS,
        }
    },
}


@dataclass
class _Entity:
    lda: LDAModel
    aggregator: Aggregator
    offers: dict[str, BidCurve] = field(default_factory=dict)
    out: dict[str, Any] = field(default_factory=dict)


class AggregatorSim(RunSimulator):
    """Builds offers, splits awards, and dispatches devices for each aggregator entity."""

    def __init__(self) -> None:
        super().__init__(META)
        self._entities: dict[str, _Entity] = {}

    def setup(self) -> None:
        """Read whether the dispatch is also reported per device (``output.device_dispatch``)."""
        self._per_device = bool(self._scenario["output"]["device_dispatch"])

    def create(
        self,
        num: int,
        model: str,
        *,
        lda: str,
        aggregator: str,
        state: dict[str, Any] | None = None,
        area: str | None = None,
    ) -> list[CreateResult]:
        """Create the entity of aggregator ``aggregator`` in LDA ``lda``.

        ``state`` (:func:`~gridlayers.simulators.state.aggregator_state` output, from a
        checkpoint) sets every device's state, e.g. a battery's stored energy (MWh).
        ``area`` (Total DSO with sub-areas, ``docs/layers.md``): only the aggregator's
        devices of that area itself (the LDA's name: outside every sub-area); entity id
        ``<lda>.<aggregator>@<area>``.
        """
        m = lda_model(self._run_id, self._scenario, lda)
        agg = m.aggregators[aggregator]
        eid = f"{lda}.{aggregator}"
        if area is not None:
            from gridlayers.agents.area_setup import devices_in_area

            eid = f"{eid}@{area}"
            agg = Aggregator(aggregator, devices_in_area(m, area, aggregator))
        self._entities[eid] = _Entity(m, agg)
        if state is not None:
            restore_aggregator(agg.devices, state)
        return [{"eid": eid, "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int | None:
        """Offer at the start of each interval; split awards; dispatch final set-points."""
        k, phase = divmod(time, self._step)
        for eid, ent in self._entities.items():
            ent.out = {}
            got = inputs.get(eid, {})
            if phase == PHASE_OFFER:
                self._offer(ent, k)
            awards = first_value(got, "awards")
            if awards is not None:  # minimal_dso: the TSO awarded the portfolio
                award = float(awards[f"agg:{eid}"])
                ent.out["proposed[MW]"] = ent.aggregator.setpoints(award, ent.offers)
            setpoints = first_value(got, "setpoints[MW]")
            if setpoints is not None:
                self._dispatch(ent, k, setpoints)
        return (k + 1) * self._step if phase == PHASE_OFFER else None

    def _offer(self, ent: _Entity, k: int) -> None:
        iv, forecast = ent.lda.interval(k), ent.lda.conditions(k, "forecast")
        ent.offers = {
            d.device_id: d.offer(iv, forecast[d.device_id]) for d in ent.aggregator.devices
        }
        if self._paradigm == "passive":  # no market for DER: each follows its own schedule
            ent.offers = {
                d.device_id: BidCurve.fixed(d.self_schedule_mw(iv, forecast[d.device_id]))
                for d in ent.aggregator.devices
            }
        ent.out["offers"] = {
            dev_id: {"bus": dev.bus, **encode_curve(ent.offers[dev_id])}
            for dev_id, dev in ((d.device_id, d) for d in ent.aggregator.devices)
        }
        portfolio = merge_bid_curves(list(ent.offers.values())).compressed(PORTFOLIO_BLOCKS)
        ent.out["portfolio"] = encode_curve(portfolio)

    def _dispatch(self, ent: _Entity, k: int, setpoints: dict[str, float]) -> None:
        """Dispatch every device under actual conditions; report what physically happened.

        ``der_report`` ($ and MWh over the interval): ``cost_usd`` is the true resource cost
        of what the devices did (:attr:`~gridlayers.der.conditions.DispatchResult.cost_usd`:
        degradation, shifting, undelivered EV energy; nothing done costs nothing);
        ``offer_cost_usd`` the as-offered cost of the set-points (what the offers claimed);
        ``stored_start_mwh``/``stored_end_mwh`` the devices' stored energy before and after;
        ``setpoint_mw``/``realised_mw`` the summed set-points and realised injections (MW).
        With ``output.device_dispatch``, ``der_devices`` has the same per device (see
        :func:`_device_columns`).
        """
        iv = ent.lda.interval(k)
        actual, forecast = ent.lda.conditions(k, "actual"), ent.lda.conditions(k, "forecast")
        devices = ent.aggregator.devices
        stored_start = sum(d.stored_energy_mwh for d in devices)
        realised: dict[str, float] = {}
        report = dict.fromkeys(
            ("cost_usd", "offer_cost_usd", "energy_mwh", "curtailed_mwh", "setpoint_mw"), 0.0
        )
        hours = iv.hours
        dispatched: list[tuple[Device, float, float]] | None = [] if self._per_device else None
        for dev in devices:
            offer = ent.offers[dev.device_id]
            p_set = min(max(float(setpoints[dev.device_id]), offer.p_min_mw), offer.p_max_mw)
            result = dev.dispatch(p_set, iv, actual[dev.device_id], forecast[dev.device_id])
            realised[dev.device_id] = result.p_mw
            report["cost_usd"] += result.cost_usd
            report["offer_cost_usd"] += offer.cost_usd_per_h(p_set) * hours
            report["energy_mwh"] += result.energy_mwh
            report["curtailed_mwh"] += result.curtailed_mwh
            report["setpoint_mw"] += p_set
            if dispatched is not None:
                dispatched.append((dev, p_set, result.p_mw))
        report["realised_mw"] = sum(realised.values())
        report["stored_start_mwh"] = stored_start
        report["stored_end_mwh"] = sum(d.stored_energy_mwh for d in devices)
        ent.out.update(
            {"DER_P[MW]": realised, "der_report": report, "state": aggregator_state(devices)}
        )
        if dispatched is not None:
            ent.out["der_devices"] = _device_columns(dispatched, actual)

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return the outputs produced in the last step (event-based: nothing else)."""
        return {
            eid: {a: self._entities[eid].out[a] for a in attrs if a in self._entities[eid].out}
            for eid, attrs in outputs.items()
        }


def _device_columns(
    dispatched: list[tuple[Device, float, float]], actual: dict[str, DeviceConditions]
) -> dict[str, list[Any]]:
    """Per-device dispatch of one interval, column-wise (the collector's ``device_interval``).

    Parameters
    ----------
    dispatched : list of (Device, float, float)
        Each device (after its dispatch), its final set-point and its realised
        injection (MW, injection positive).
    actual : dict of str to DeviceConditions
        The interval's actual conditions per device id.

    Returns
    -------
    dict of str to list
        ``device``, ``kind``, ``setpoint_mw``, ``realised_mw``, ``available_mw`` (what
        the actual conditions made available, MW; ``None`` but for PV) and
        ``stored_mwh`` (stored energy at the end of the interval, MWh; ``None`` for
        devices that store nothing), one entry per device in the aggregator's order.

    """
    return {
        "device": [dev.device_id for dev, _, _ in dispatched],
        "kind": [dev.kind for dev, _, _ in dispatched],
        "setpoint_mw": [p_set for _, p_set, _ in dispatched],
        "realised_mw": [p for _, _, p in dispatched],
        "available_mw": [dev.available_mw(actual[dev.device_id]) for dev, _, _ in dispatched],
        "stored_mwh": [
            dev.stored_energy_mwh if dev.stores_energy else None for dev, _, _ in dispatched
        ],
    }
