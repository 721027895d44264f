"""Scenario configuration of an LDA's DER (pydantic v2, validated once at load time).

A :class:`DERConfig` lists explicit devices and penetration rules; the rules are
resolved against a pandapower feeder by :func:`gridlayers.der.builder.build_devices`.
All fields carry units in their names and descriptions.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridlayers.der.strategies import STRATEGIES


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ---------------------------------------------------------------- shared parameter groups


class PVOptions(_Model):
    """Economic and profile options of PV plants."""

    marginal_cost_usd_per_mwh: float = Field(0.0, description="Marginal cost of PV energy ($/MWh).")
    profile: str = Field(
        "PV3", description="Per-unit availability profile name (e.g. a SimBench sgen profile)."
    )


class BatteryOptions(_Model):
    """Technical and offer options of batteries (sizes come from the device or rule)."""

    eta_charge: float = Field(
        0.95, gt=0.0, le=1.0, description="Charge efficiency (stored/grid energy, pu)."
    )
    eta_discharge: float = Field(
        0.95, gt=0.0, le=1.0, description="Discharge efficiency (grid/stored energy, pu)."
    )
    soc_min_pu: float = Field(
        0.1, ge=0.0, le=1.0, description="Lowest state of charge (pu of energy capacity)."
    )
    soc_max_pu: float = Field(
        0.9, ge=0.0, le=1.0, description="Highest state of charge (pu of energy capacity)."
    )
    initial_soc_pu: float = Field(
        0.5, ge=0.0, le=1.0, description="State of charge at the start of the run (pu)."
    )
    reference_price_usd_per_mwh: float = Field(
        50.0, ge=0.0, description="Water value at mid-SOC ($/MWh)."
    )
    water_value_spread: float = Field(
        0.5,
        ge=0.0,
        le=2.0,
        description="Relative water value change from empty to full SOC (pu of reference).",
    )
    degradation_cost_usd_per_mwh: float = Field(
        2.0, ge=0.0, description="Cost per MWh of throughput ($/MWh)."
    )
    price_blocks: int = Field(
        2, ge=1, description="Offer blocks per direction (charge, discharge)."
    )

    @model_validator(mode="after")
    def _soc_order(self) -> BatteryOptions:
        if not self.soc_min_pu <= self.initial_soc_pu <= self.soc_max_pu:
            msg = "need soc_min_pu <= initial_soc_pu <= soc_max_pu"
            raise ValueError(msg)
        return self


class FlexibleLoadOptions(_Model):
    """Offer and profile options of flexible loads."""

    reference_price_usd_per_mwh: float = Field(
        50.0, description="Expected price of the shifted energy ($/MWh)."
    )
    shift_cost_usd_per_mwh: float = Field(
        5.0, ge=0.0, description="Discomfort cost of shifting ($/MWh)."
    )
    profile: str = Field(
        "bus",
        description="Baseline profile name; 'bus' means share_of_bus_load times the bus's load.",
    )


class EVOptions(_Model):
    """Session distributions and economics of EV fleets."""

    charger_kw: float = Field(11.0, ge=0.0, description="Charger power per vehicle (kW).")
    energy_need_mean_kwh: float = Field(
        20.0, ge=0.0, description="Mean energy need per session (kWh stored)."
    )
    energy_need_std_kwh: float = Field(
        8.0, ge=0.0, description="Std. dev. of the energy need (kWh)."
    )
    arrival_mean_h: float = Field(
        18.0, ge=0.0, lt=24.0, description="Mean arrival time of day (h)."
    )
    arrival_std_h: float = Field(1.5, ge=0.0, description="Std. dev. of the arrival time (h).")
    departure_mean_h: float = Field(
        7.5, ge=0.0, lt=24.0, description="Mean departure time of day (h)."
    )
    departure_std_h: float = Field(1.0, ge=0.0, description="Std. dev. of the departure time (h).")
    charge_efficiency: float = Field(
        0.92, gt=0.0, le=1.0, description="Stored energy per grid energy (pu)."
    )
    value_of_charging_usd_per_mwh: float = Field(
        120.0, description="Willingness to pay for charging beyond the deadline minimum ($/MWh)."
    )
    horizon_days: int = Field(1, ge=1, description="Days for which sessions are generated.")
    unmet_energy_penalty_usd_per_mwh: float = Field(
        500.0,
        ge=0.0,
        description=(
            "Cost of energy a session could have received but did not by departure "
            "($/MWh stored); default: making it up at a public DC fast charger."
        ),
    )


# ---------------------------------------------------------------- explicit devices


class _Placed(_Model):
    id: str | None = Field(None, description="Device id; default '<prefix><type>_dev<k>_bus<bus>'.")
    bus: int = Field(description="pandapower bus index of the feeder bus.")
    aggregator: str = Field(
        "aggregator", description="Name of the aggregator that operates the device(s)."
    )


class PVDeviceConfig(_Placed, PVOptions):
    """One PV plant at a bus."""

    type: Literal["pv"] = "pv"
    rated_mw: float = Field(ge=0.0, description="Rated AC power (MW).")


class BatteryDeviceConfig(_Placed, BatteryOptions):
    """One battery at a bus."""

    type: Literal["battery"] = "battery"
    power_mw: float = Field(ge=0.0, description="Charge/discharge power limit (MW).")
    energy_mwh: float = Field(gt=0.0, description="Energy capacity (MWh).")


class FlexibleLoadDeviceConfig(_Placed, FlexibleLoadOptions):
    """One flexible load at a bus."""

    type: Literal["flexible_load"] = "flexible_load"
    shift_up_max_mw: float = Field(ge=0.0, description="Largest increase above baseline (MW).")
    shift_down_max_mw: float = Field(ge=0.0, description="Largest decrease below baseline (MW).")
    shift_energy_max_mwh: float | None = Field(
        None, gt=0.0, description="Largest |shifted energy| within a day (MWh); none = unlimited."
    )
    share_of_bus_load: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of the bus load this device represents (pu)."
    )


class EVFleetDeviceConfig(_Placed, EVOptions):
    """One EV fleet at a bus."""

    type: Literal["ev_fleet"] = "ev_fleet"
    n_vehicles: int = Field(ge=0, description="Number of vehicles (one charger each).")


DeviceConfig = Annotated[
    PVDeviceConfig | BatteryDeviceConfig | FlexibleLoadDeviceConfig | EVFleetDeviceConfig,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------- penetration rules


class _Rule(_Model):
    share_of_load_buses: float = Field(
        ge=0.0, le=1.0, description="Share of load buses that get a device (pu)."
    )
    aggregator: str = Field(
        "aggregator", description="Name of the aggregator that operates the devices."
    )
    devices_per_bus: int = Field(
        1,
        ge=1,
        description=(
            "Devices at each chosen bus, each with 1/N of the bus's sizing (rooftop PV, home "
            "batteries, chargers behind one MV node); totals do not change."
        ),
    )


class PVRule(_Rule, PVOptions):
    """PV on a share of load buses, sized relative to each bus's peak load."""

    type: Literal["pv"] = "pv"
    kw_per_kw_peak_load: float = Field(
        ge=0.0, description="Rated PV power per peak load of the bus (kW/kW)."
    )


class BatteryRule(_Rule, BatteryOptions):
    """Batteries on a share of load buses, sized relative to each bus's peak load."""

    type: Literal["battery"] = "battery"
    kw_per_kw_peak_load: float = Field(
        ge=0.0, description="Battery power per peak load of the bus (kW/kW)."
    )
    hours: float = Field(gt=0.0, description="Energy capacity over power (h).")


class FlexibleLoadRule(_Rule, FlexibleLoadOptions):
    """Part of the load at a share of load buses becomes shiftable."""

    type: Literal["flexible_load"] = "flexible_load"
    share_of_bus_load: float = Field(
        ge=0.0, le=1.0, description="Share of the bus load that is flexible (pu)."
    )
    shift_kw_per_kw_peak_load: float = Field(
        ge=0.0, description="Shift limit, up and down, per peak load of the bus (kW/kW)."
    )
    shift_hours: float | None = Field(
        4.0,
        gt=0.0,
        description="Largest |shifted energy| in a day over the shift limit (h); none = unlimited.",
    )


class EVFleetRule(_Rule, EVOptions):
    """EV fleets on a share of load buses, sized by the bus's peak load."""

    type: Literal["ev_fleet"] = "ev_fleet"
    vehicles_per_mw_peak_load: float = Field(
        ge=0.0, description="Vehicles per MW of bus peak load (1/MW)."
    )
    min_vehicles: int = Field(1, ge=0, description="Smallest fleet at a chosen bus.")


PenetrationRule = Annotated[
    PVRule | BatteryRule | FlexibleLoadRule | EVFleetRule,
    Field(discriminator="type"),
]


class DERConfig(_Model):
    """DER of one LDA: explicit devices, penetration rules and the offer strategy."""

    devices: list[DeviceConfig] = Field(
        default_factory=list, description="Explicitly placed devices."
    )
    penetration: list[PenetrationRule] = Field(
        default_factory=list, description="Rules resolved against the feeder's load buses."
    )
    strategy: str = Field(
        "truthful", description="Offer strategy name (see gridlayers.der.strategies)."
    )
    strategy_params: dict[str, float] = Field(
        default_factory=dict,
        description="Parameters of the strategy (e.g. markup_usd_per_mwh, $/MWh).",
    )
    id_prefix: str = Field(
        "", description="Prefix of generated device ids (e.g. the LDA name + '/')."
    )

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        if v not in STRATEGIES:
            msg = f"unknown offer strategy {v!r}; known: {sorted(STRATEGIES)}"
            raise ValueError(msg)
        return v
