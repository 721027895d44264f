"""DER device models, their scenario configuration, and the aggregator core (no mosaik).

Units (:mod:`gridlayers.der.base`): :class:`PVPlant`, :class:`Battery`,
:class:`FlexibleLoad`, :class:`EVFleet`. Strategies
(:mod:`gridlayers.der.strategies`) price their offers; the
:class:`Aggregator` owns devices, builds per-bus or portfolio offers and
disaggregates awards. :func:`build_devices` resolves a :class:`DERConfig`.
"""

from gridlayers.der.aggregator import Aggregator, PendingOffers, Settlement
from gridlayers.der.base import Device, build_offer_block, set_offer_block
from gridlayers.der.battery import Battery, BatteryParams, BatteryState
from gridlayers.der.builder import (
    build_aggregators,
    build_devices,
    conditions_from_profiles,
    peak_load_from_net,
)
from gridlayers.der.conditions import NO_CONDITIONS, DeviceConditions, DispatchResult, Interval
from gridlayers.der.config import DERConfig
from gridlayers.der.curves import merge_bid_curves, split_award
from gridlayers.der.ev_fleet import (
    EVFleet,
    EVFleetParams,
    EVFleetState,
    EVSessions,
    generate_sessions,
)
from gridlayers.der.flexible_load import FlexibleLoad, FlexibleLoadParams, FlexibleLoadState
from gridlayers.der.pv import PVParams, PVPlant, PVState
from gridlayers.der.strategies import STRATEGIES, OfferStrategy, make_strategy

__all__ = [
    "NO_CONDITIONS",
    "STRATEGIES",
    "Aggregator",
    "Battery",
    "BatteryParams",
    "BatteryState",
    "DERConfig",
    "Device",
    "DeviceConditions",
    "DispatchResult",
    "EVFleet",
    "EVFleetParams",
    "EVFleetState",
    "EVSessions",
    "FlexibleLoad",
    "FlexibleLoadParams",
    "FlexibleLoadState",
    "Interval",
    "OfferStrategy",
    "PVParams",
    "PVPlant",
    "PVState",
    "PendingOffers",
    "Settlement",
    "build_aggregators",
    "build_devices",
    "build_offer_block",
    "conditions_from_profiles",
    "generate_sessions",
    "make_strategy",
    "merge_bid_curves",
    "peak_load_from_net",
    "set_offer_block",
    "split_award",
]
