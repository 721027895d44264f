"""From a plan to a co-simulation: each planner LDA becomes its feeder, scaled by peak load.

A planner LDA ``a`` is an aggregate (hundreds of MW) at a transmission zone. The
co-simulation LDA of the same name is one real feeder (tens of MW). The feeder stands
for the LDA at the scale ``s_a = feeder peak / LDA peak``, where the feeder peak is the
sum of its buses' annual peak loads (MW) and the LDA peak is the planner's largest LDA
demand in its last epoch (MW). Planned DER and the interface capacity are multiplied by
``s_a``; what the co-simulation measures in MW is divided by it.

Planned DER is placed as explicit devices on the ``buses_per_technology`` buses with the
largest annual peak load, sized in proportion to that peak. Device options (profiles,
costs, efficiencies) come from the LDA's own penetration rules or devices of the same
type if it has any; the planner's battery efficiency is used for both directions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from gridlayers.der.config import (
    BatteryDeviceConfig,
    BatteryOptions,
    DERConfig,
    FlexibleLoadDeviceConfig,
    FlexibleLoadOptions,
    PVDeviceConfig,
    PVOptions,
)
from gridlayers.grid.networks import network_from_source
from gridlayers.lda import annual_peak_by_bus
from gridlayers.planner.config import LDAConfig as PlannerLDA
from gridlayers.scenarios.schema import LDAConfig, Scenario, TransmissionConfig

#: DER types the planner decides; the LDA's other DER (e.g. EV fleets) stay as configured.
PLANNED_TYPES = frozenset({"pv", "battery", "flexible_load"})
#: Smallest device the mapping places (MW).
MIN_DEVICE_MW = 1e-4


@dataclass(frozen=True)
class PlannedDER:
    """One planner LDA's DER decisions (MW, MWh at LDA scale)."""

    pv_mw: float
    battery_mw: float
    battery_mwh: float

    @classmethod
    def from_summary(cls, lda: Mapping[str, float]) -> PlannedDER:
        """Read ``der_pv_mw``, ``der_battery_mw``, ``der_battery_mwh`` of a plan summary."""
        return cls(
            float(lda["der_pv_mw"]), float(lda["der_battery_mw"]), float(lda["der_battery_mwh"])
        )


def feeder_peaks_mw(lda: LDAConfig) -> dict[int, float]:
    """Return the annual peak load per bus of an LDA's feeder (MW)."""
    return annual_peak_by_bus(network_from_source(lda.feeder), lda)


def _options(der: DERConfig, kind: str, options: type) -> dict:
    """Options of the first rule or device of ``kind`` in ``der`` (defaults if none)."""
    for item in (*der.penetration, *der.devices):
        if item.type == kind:
            data = item.model_dump()
            return {k: data[k] for k in options.model_fields if k in data}
    return {}


def planned_devices(
    lda: LDAConfig,
    planned: PlannedDER,
    plan_lda: PlannerLDA,
    scale: float,
    peaks_mw: Mapping[int, float],
    n_buses: int,
) -> list:
    """Return explicit device configs for an LDA's planned DER on its feeder.

    Parameters
    ----------
    lda : LDAConfig
        Co-simulation LDA (its feeder and DER options).
    planned : PlannedDER
        The plan's DER of the LDA (MW, MWh, LDA scale).
    plan_lda : gridlayers.planner.config.LDAConfig
        The planner's LDA (battery efficiency, flexible-load share).
    scale : float
        ``s_a``, feeder MW per LDA MW (-).
    peaks_mw : mapping of int to float
        Annual peak load per feeder bus (MW).
    n_buses : int
        Buses that carry each technology.

    """
    chosen = sorted(peaks_mw, key=lambda b: (-peaks_mw[b], b))[:n_buses]
    weight = {b: peaks_mw[b] / sum(peaks_mw[b] for b in chosen) for b in chosen}
    pv_opts = _options(lda.der, "pv", PVOptions)
    bat_opts = _options(lda.der, "battery", BatteryOptions)
    eff = plan_lda.battery.efficiency
    bat_opts.update(eta_charge=eff, eta_discharge=eff)
    flex_opts = _options(lda.der, "flexible_load", FlexibleLoadOptions)
    shift_total = plan_lda.flexible_load.max_share * sum(peaks_mw.values())
    devices: list = []
    for b in chosen:
        w = weight[b]
        if planned.pv_mw * scale * w > MIN_DEVICE_MW:
            devices.append(
                PVDeviceConfig(
                    bus=b, rated_mw=planned.pv_mw * scale * w, aggregator="planned-pv", **pv_opts
                )
            )
        if planned.battery_mw * scale * w > MIN_DEVICE_MW:
            devices.append(
                BatteryDeviceConfig(
                    bus=b,
                    power_mw=planned.battery_mw * scale * w,
                    energy_mwh=max(planned.battery_mwh * scale * w, MIN_DEVICE_MW),
                    aggregator="planned-flex",
                    **bat_opts,
                )
            )
        shift = shift_total * w
        if shift > MIN_DEVICE_MW and peaks_mw[b] > 0:
            devices.append(
                FlexibleLoadDeviceConfig(
                    bus=b,
                    shift_up_max_mw=shift,
                    shift_down_max_mw=shift,
                    share_of_bus_load=min(1.0, shift / peaks_mw[b]),
                    aggregator="planned-flex",
                    **flex_opts,
                )
            )
    return devices


def day_intervals(scenario: Scenario) -> int:
    """Return the market intervals of one co-simulated planner day (a whole day)."""
    return 24 * 60 // scenario.horizon.interval_min


def cosim_scenario(
    scenario: Scenario,
    plan_ldas: Mapping[str, PlannedDER],
    scales: Mapping[str, float],
    peaks_mw: Mapping[str, Mapping[int, float]],
    paradigm: str,
    day: dt.date,
    name: str,
    transmission: TransmissionConfig | None = None,
) -> Scenario:
    """Return the co-simulation scenario of one planner day under one paradigm.

    Parameters
    ----------
    scenario : Scenario
        Loop scenario (``planner.lda`` and ``loop`` set).
    plan_ldas : mapping of str to PlannedDER
        Planned DER per planner LDA (LDA scale).
    scales : mapping of str to float
        ``s_a`` per planner LDA (-).
    peaks_mw : mapping of str to mapping of int to float
        Annual peak load per feeder bus per LDA (MW).
    paradigm : str
        The one paradigm to run.
    day : datetime.date
        Date whose profiles represent the planner day.
    name : str
        Name of the co-simulation scenario (file-safe).
    transmission : TransmissionConfig, optional
        Transmission section of the day (:func:`gridlayers.loop.transmission.day_transmission`);
        default the scenario's.

    Returns
    -------
    Scenario
        One day at the scenario's ``interval_min``, the planned DER in place of the LDAs'
        PV, battery and flexible-load rules, the flexibility probe on, bus voltages off.

    """
    if scenario.planner is None or scenario.planner.lda is None or scenario.loop is None:
        msg = f"{scenario.name}: needs 'planner.lda' and 'loop' sections"
        raise ValueError(msg)
    planner = {a.name: a for a in scenario.planner.lda.ldas}
    ldas = []
    for lda in scenario.ldas:
        if lda.name not in planner:
            ldas.append(lda)
            continue
        kept = DERConfig(
            devices=[d for d in lda.der.devices if d.type not in PLANNED_TYPES],
            penetration=[r for r in lda.der.penetration if r.type not in PLANNED_TYPES],
            strategy=lda.der.strategy,
            strategy_params=lda.der.strategy_params,
            id_prefix=lda.der.id_prefix,
        )
        devices = planned_devices(
            lda,
            plan_ldas[lda.name],
            planner[lda.name],
            scales[lda.name],
            peaks_mw[lda.name],
            scenario.loop.buses_per_technology,
        )
        der = kept.model_copy(update={"devices": [*kept.devices, *devices]})
        ldas.append(lda.model_copy(update={"der": der}))
    horizon = scenario.horizon.model_copy(
        update={"start": dt.datetime.combine(day, dt.time()), "intervals": day_intervals(scenario)}
    )
    output = scenario.output.model_copy(update={"flexibility_probe": True, "bus_voltages": False})
    data = scenario.model_dump(mode="python", by_alias=True)
    if transmission is not None:
        data["transmission"] = transmission.model_dump(mode="python", by_alias=True)
    data.update(
        name=name,
        ldas=[x.model_dump(mode="python", by_alias=True) for x in ldas],
        horizon=horizon.model_dump(mode="python", by_alias=True),
        paradigms=[paradigm],
        output=output.model_dump(mode="python", by_alias=True),
    )
    return Scenario.model_validate(data)
