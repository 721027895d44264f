"""Resolve a :class:`~gridlayers.der.config.DERConfig` into device objects on a feeder."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from gridlayers.der.aggregator import Aggregator
from gridlayers.der.base import Device
from gridlayers.der.battery import Battery, BatteryParams, BatteryState
from gridlayers.der.conditions import DeviceConditions
from gridlayers.der.config import (
    BatteryDeviceConfig,
    BatteryOptions,
    BatteryRule,
    DERConfig,
    DeviceConfig,
    EVFleetDeviceConfig,
    EVFleetRule,
    EVOptions,
    FlexibleLoadDeviceConfig,
    FlexibleLoadRule,
    PenetrationRule,
    PVDeviceConfig,
    PVRule,
)
from gridlayers.der.ev_fleet import EVFleet, EVFleetParams, generate_sessions
from gridlayers.der.flexible_load import FlexibleLoad, FlexibleLoadParams
from gridlayers.der.pv import PVParams, PVPlant
from gridlayers.der.strategies import OfferStrategy, make_strategy

if TYPE_CHECKING:
    import pandapower as pp

#: Profile name meaning "share_of_bus_load times the load at the device's bus".
BUS_PROFILE = "bus"


def load_buses(net: pp.pandapowerNet, peak_load_mw_by_bus: Mapping[int, float]) -> list[int]:
    """Return the sorted buses that carry a load with positive peak (MW)."""
    buses = {int(b) for b in net.load.bus[net.load.in_service]}
    return sorted(b for b in buses if peak_load_mw_by_bus.get(b, 0.0) > 0.0)


def peak_load_from_net(net: pp.pandapowerNet) -> dict[int, float]:
    """Return the sum of in-service ``net.load.p_mw`` per bus (MW), a stand-in for peak load."""
    loads = net.load[net.load.in_service]
    return {int(b): float(v) for b, v in loads.groupby("bus").p_mw.sum().items()}


def build_devices(
    config: DERConfig,
    net: pp.pandapowerNet,
    peak_load_mw_by_bus: Mapping[int, float] | None = None,
    seed: int = 0,
) -> list[Device]:
    """Create the devices of one LDA, deterministically from ``seed``.

    Parameters
    ----------
    config : DERConfig
        Explicit devices and penetration rules.
    net : pandapowerNet
        The LDA's feeder; explicit buses must exist, rules use its load buses.
    peak_load_mw_by_bus : mapping of int to float or None
        Peak load per bus (MW, consumption positive); ``None`` uses
        :func:`peak_load_from_net`.
    seed : int
        Seed; rule ``i`` draws its buses from ``default_rng([seed, i])``.

    Returns
    -------
    list of Device
        Explicit devices first, then rule devices in rule order, buses ascending.

    Notes
    -----
    A rule with share ``s`` over ``N`` load buses places a device on
    ``floor(s N + 1/2)`` buses drawn without replacement; its size is
    ``kw_per_kw_peak_load * peak_load_mw`` of that bus.

    """
    return [d for _, d in _build(config, net, peak_load_mw_by_bus, seed)]


def build_aggregators(
    config: DERConfig,
    net: pp.pandapowerNet,
    peak_load_mw_by_bus: Mapping[int, float] | None = None,
    seed: int = 0,
) -> dict[str, Aggregator]:
    """Build the devices like :func:`build_devices` and group them by ``aggregator`` name.

    Returns
    -------
    dict of str to Aggregator
        One aggregator per name used in the config, devices in build order.

    """
    groups: dict[str, list[Device]] = {}
    for name, dev in _build(config, net, peak_load_mw_by_bus, seed):
        groups.setdefault(name, []).append(dev)
    return {name: Aggregator(name, devs) for name, devs in groups.items()}


def _build(
    config: DERConfig,
    net: pp.pandapowerNet,
    peak_load_mw_by_bus: Mapping[int, float] | None,
    seed: int,
) -> list[tuple[str, Device]]:
    """Return ``(aggregator name, device)`` pairs; see :func:`build_devices`."""
    peaks = (
        dict(peak_load_mw_by_bus) if peak_load_mw_by_bus is not None else peak_load_from_net(net)
    )
    strategy = make_strategy(config.strategy, **config.strategy_params)
    out: list[tuple[str, Device]] = []
    for k, spec in enumerate(config.devices):
        if spec.bus not in net.bus.index:
            msg = f"DER device {k} ({spec.type}) at bus {spec.bus}, which is not in the feeder"
            raise ValueError(msg)
        dev_id = spec.id or f"{config.id_prefix}{spec.type}_dev{k}_bus{spec.bus}"
        dev = _explicit_device(spec, dev_id, strategy, seed_for(seed, 1000 + k))
        out.append((spec.aggregator, dev))
    candidates = load_buses(net, peaks)
    for i, rule in enumerate(config.penetration):
        rng = np.random.default_rng([seed, i])
        n = math.floor(rule.share_of_load_buses * len(candidates) + 0.5)
        chosen = sorted(int(b) for b in rng.choice(candidates, size=n, replace=False)) if n else []
        units = rule.devices_per_bus
        for bus in chosen:
            for u in range(units):  # each unit sized on 1/units of the bus's peak
                dev_id = f"{config.id_prefix}{rule.type}_{i}_bus{bus}" + (f"_{u}" if u else "")
                seed_u = int(rng.integers(2**31))
                dev = _rule_device(rule, bus, peaks[bus] / units, dev_id, strategy, seed_u, units)
                out.append((rule.aggregator, dev))
    ids = [d.device_id for _, d in out]
    if len(set(ids)) != len(ids):
        msg = f"duplicate DER device ids: {sorted({x for x in ids if ids.count(x) > 1})}"
        raise ValueError(msg)
    return out


def seed_for(seed: int, stream: int) -> int:
    """Return a derived integer seed for an independent random stream."""
    return int(np.random.default_rng([seed, stream]).integers(2**31))


def _battery(
    dev_id: str,
    bus: int,
    o: BatteryOptions,
    power_mw: float,
    energy_mwh: float,
    strategy: OfferStrategy,
) -> Battery:
    params = BatteryParams(
        power_mw=power_mw,
        energy_mwh=energy_mwh,
        eta_charge=o.eta_charge,
        eta_discharge=o.eta_discharge,
        soc_min_pu=o.soc_min_pu,
        soc_max_pu=o.soc_max_pu,
        reference_price_usd_per_mwh=o.reference_price_usd_per_mwh,
        water_value_spread=o.water_value_spread,
        degradation_cost_usd_per_mwh=o.degradation_cost_usd_per_mwh,
        price_blocks=o.price_blocks,
    )
    return Battery(dev_id, bus, params, BatteryState(o.initial_soc_pu * energy_mwh), strategy)


def _ev_fleet(
    dev_id: str, bus: int, o: EVOptions, n_vehicles: int, strategy: OfferStrategy, seed: int
) -> EVFleet:
    fields = EVOptions.model_fields
    params = EVFleetParams(n_vehicles=n_vehicles, **{f: getattr(o, f) for f in fields})
    return EVFleet(dev_id, bus, params, generate_sessions(params, seed), strategy=strategy)


def _explicit_device(spec: DeviceConfig, dev_id: str, strategy: OfferStrategy, seed: int) -> Device:
    if isinstance(spec, PVDeviceConfig):
        params = PVParams(spec.rated_mw, spec.marginal_cost_usd_per_mwh, spec.profile)
        return PVPlant(dev_id, spec.bus, params, strategy=strategy)
    if isinstance(spec, BatteryDeviceConfig):
        return _battery(dev_id, spec.bus, spec, spec.power_mw, spec.energy_mwh, strategy)
    if isinstance(spec, FlexibleLoadDeviceConfig):
        params = FlexibleLoadParams(
            shift_up_max_mw=spec.shift_up_max_mw,
            shift_down_max_mw=spec.shift_down_max_mw,
            shift_energy_max_mwh=spec.shift_energy_max_mwh or math.inf,
            reference_price_usd_per_mwh=spec.reference_price_usd_per_mwh,
            shift_cost_usd_per_mwh=spec.shift_cost_usd_per_mwh,
            profile=spec.profile,
            share_of_bus_load=spec.share_of_bus_load,
        )
        return FlexibleLoad(dev_id, spec.bus, params, strategy=strategy)
    if isinstance(spec, EVFleetDeviceConfig):
        return _ev_fleet(dev_id, spec.bus, spec, spec.n_vehicles, strategy, seed)
    msg = f"unknown device config {type(spec).__name__}"
    raise TypeError(msg)


def _rule_device(
    rule: PenetrationRule,
    bus: int,
    peak_mw: float,
    dev_id: str,
    strategy: OfferStrategy,
    seed: int,
    units: int = 1,
) -> Device:
    """Return one device of ``rule`` sized on ``peak_mw`` (MW; the bus's peak / ``units``)."""
    if isinstance(rule, PVRule):
        params = PVParams(
            rule.kw_per_kw_peak_load * peak_mw, rule.marginal_cost_usd_per_mwh, rule.profile
        )
        return PVPlant(dev_id, bus, params, strategy=strategy)
    if isinstance(rule, BatteryRule):
        power = rule.kw_per_kw_peak_load * peak_mw
        return _battery(dev_id, bus, rule, power, max(power * rule.hours, 1e-9), strategy)
    if isinstance(rule, FlexibleLoadRule):
        shift = rule.shift_kw_per_kw_peak_load * peak_mw
        energy = (
            shift * rule.shift_hours if rule.shift_hours is not None and shift > 0 else math.inf
        )
        params = FlexibleLoadParams(
            shift_up_max_mw=shift,
            shift_down_max_mw=shift,
            shift_energy_max_mwh=energy,
            reference_price_usd_per_mwh=rule.reference_price_usd_per_mwh,
            shift_cost_usd_per_mwh=rule.shift_cost_usd_per_mwh,
            profile=rule.profile,
            share_of_bus_load=rule.share_of_bus_load / units,
        )
        return FlexibleLoad(dev_id, bus, params, strategy=strategy)
    if isinstance(rule, EVFleetRule):
        n = max(rule.min_vehicles, round(rule.vehicles_per_mw_peak_load * peak_mw))
        return _ev_fleet(dev_id, bus, rule, n, strategy, seed)
    msg = f"unknown penetration rule {type(rule).__name__}"
    raise TypeError(msg)


def conditions_from_profiles(
    devices: list[Device],
    pv_available_pu_by_profile: Mapping[str, float],
    load_mw_by_bus: Mapping[int, float],
    load_mw_by_profile: Mapping[str, float] | None = None,
) -> dict[str, DeviceConditions]:
    """Build per-device conditions for one interval from profile values.

    Parameters
    ----------
    devices : list of Device
        Devices to build conditions for.
    pv_available_pu_by_profile : mapping of str to float
        Per-unit PV availability per profile name.
    load_mw_by_bus : mapping of int to float
        Total load per bus (MW, consumption positive), before removing the
        flexible share; used by flexible loads with profile ``"bus"``.
    load_mw_by_profile : mapping of str to float or None
        Baseline (MW) per named profile for flexible loads with another profile.

    Returns
    -------
    dict of str to DeviceConditions
        Conditions per device id (batteries and EV fleets get empty conditions).

    """
    out: dict[str, DeviceConditions] = {}
    for d in devices:
        if isinstance(d, PVPlant):
            out[d.device_id] = DeviceConditions(
                pv_available_pu=pv_available_pu_by_profile[d.params.profile]
            )
        elif isinstance(d, FlexibleLoad):
            if d.params.profile == BUS_PROFILE:
                base = d.params.share_of_bus_load * load_mw_by_bus[d.bus]
            else:
                base = (load_mw_by_profile or {})[d.params.profile]
            out[d.device_id] = DeviceConditions(load_baseline_mw=base)
        else:
            out[d.device_id] = DeviceConditions()
    return out
