"""Battery storage with degradation (reference (8), C8).

Builds ``BuildBattery[z, v]`` (power, MW) with energy ``E = duration P`` (MWh).
Energy capacity degrades by ``rho = 1 - k_cal - k_cycle`` per year:
``AE[z,y] = sum_{v<=y} rho^(E_years (y-v)) E[z,v]``; power ``AP = sum_{v<=y} P``.
The depth-of-discharge floor uses the epoch's own additions (C8b).
``battery_soc_mode="reference"`` reproduces the missing hour-1 SoC equation
(C8a); ``"cyclic"`` adds ``SoC[1] = s0 AE + eta_c ch[1] - dis[1]/eta_d``.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig, capital_recovery_factor
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.timescale import end_year_index

KW_PER_MW = 1000.0


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define battery builds, capacities, operation, reserve and costs.

    Notes
    -----
    ``Emin <= SoC <= AE``, ``ch, dis <= AP``, ``rb + dis - ch <= AP``,
    ``delta (rb - ch) <= eta_d (SoC - Emin)``; for h >= 2
    ``SoC[h] = SoC[h-1] + eta_c ch[h] - dis[h] / eta_d``;
    ``SoC[1] = SoC[24] = s0 AE`` (reference mode).

    """
    zones = list(m.ZONES if config.battery_offshore else m.ONSHORE_ZONES)
    rho = 1.0 - config.k_cal - config.k_cycle
    dur = config.battery_duration_h
    m.BATTERY_ZONES = pyo.Set(initialize=zones, ordered=True, doc="zones allowed batteries")
    m.Investment_Variables.append("BuildBattery")
    m.BuildBattery = pyo.Var(
        m.BATTERY_ZONES,
        m.EPOCHS,
        within=pyo.NonNegativeReals,
        doc="P: battery power added in epoch v, MW",
    )
    m.BatteryEnergyBuilt = pyo.Expression(
        m.BATTERY_ZONES,
        m.EPOCHS,
        rule=lambda m, z, v: dur * m.BuildBattery[z, v],
        doc="E = duration x P: battery energy added in epoch v, MWh",
    )
    m.BatteryEnergyCapacity = pyo.Expression(
        m.BATTERY_ZONES,
        m.EPOCHS,
        rule=lambda m, z, y: sum(
            rho ** (config.epoch_years * (y - v)) * m.BatteryEnergyBuilt[z, v]
            for v in m.EPOCHS
            if v <= y
        ),
        doc="AE: degraded energy capacity, MWh",
    )
    m.BatteryPowerCapacity = pyo.Expression(
        m.BATTERY_ZONES,
        m.EPOCHS,
        rule=lambda m, z, y: sum(m.BuildBattery[z, v] for v in m.EPOCHS if v <= y),
        doc="AP: power capacity (no degradation), MW",
    )
    m.BATTERY_TIMEPOINTS = pyo.Set(
        initialize=[(y, z, d, h) for (y, d, h) in m.TIMEPOINTS for z in zones],
        dimen=4,
        doc="(y, z, d, h) at battery zones",
    )
    for name, doc in (
        ("Charge", "ch: charging, MW"),
        ("Discharge", "dis: discharging, MW"),
        ("StateOfCharge", "SoC: stored energy, MWh"),
        ("ReserveBattery", "rb: battery reserve, MW"),
    ):
        setattr(m, name, pyo.Var(m.BATTERY_TIMEPOINTS, within=pyo.NonNegativeReals, doc=doc))
    _define_operation(m, config)
    _define_registrations(m, inputs, config)


def _define_operation(m: pyo.ConcreteModel, config: PlannerConfig) -> None:
    eta_c, eta_d = config.eff_charging, config.eff_discharging
    s0, smin, delta = (
        config.battery_initial_soc_share,
        config.battery_min_soc_share,
        config.reserve_response_h,
    )
    first, last = m.first_hour, m.last_hour

    def e_min(z: str, y: int) -> object:
        return smin * m.BatteryEnergyBuilt[z, y]

    def soc_rule(m: pyo.ConcreteModel, y: int, z: str, d: int, h: int) -> object:
        flow = eta_c * m.Charge[y, z, d, h] - m.Discharge[y, z, d, h] / eta_d
        if h != first:
            return m.StateOfCharge[y, z, d, h] == m.StateOfCharge[y, z, d, h - 1] + flow
        start = s0 * m.BatteryEnergyCapacity[z, y]
        if config.battery_soc_mode == "cyclic":
            return m.StateOfCharge[y, z, d, h] == start + flow
        return m.StateOfCharge[y, z, d, h] == start

    m.BatterySoCBalance = pyo.Constraint(
        m.BATTERY_TIMEPOINTS, rule=soc_rule, doc="SoC dynamics and day-start SoC, MWh"
    )
    m.BatteryDayEnd = pyo.Constraint(
        [(y, z, d) for (y, z, d, h) in m.BATTERY_TIMEPOINTS if h == last],
        rule=lambda m, y, z, d: (
            m.StateOfCharge[y, z, d, last] == s0 * m.BatteryEnergyCapacity[z, y]
        ),
        doc="SoC[24] = s0 AE, MWh",
    )
    m.BatterySoCMax = pyo.Constraint(
        m.BATTERY_TIMEPOINTS,
        rule=lambda m, y, z, d, h: m.StateOfCharge[y, z, d, h] <= m.BatteryEnergyCapacity[z, y],
        doc="SoC <= AE, MWh",
    )
    m.BatterySoCMin = pyo.Constraint(
        m.BATTERY_TIMEPOINTS,
        rule=lambda m, y, z, d, h: m.StateOfCharge[y, z, d, h] >= e_min(z, y),
        doc="SoC >= Emin (epoch additions only, C8b), MWh",
    )
    m.BatteryChargeMax = pyo.Constraint(
        m.BATTERY_TIMEPOINTS,
        rule=lambda m, y, z, d, h: m.Charge[y, z, d, h] <= m.BatteryPowerCapacity[z, y],
        doc="ch <= AP, MW",
    )
    m.BatteryDischargeMax = pyo.Constraint(
        m.BATTERY_TIMEPOINTS,
        rule=lambda m, y, z, d, h: m.Discharge[y, z, d, h] <= m.BatteryPowerCapacity[z, y],
        doc="dis <= AP, MW",
    )
    m.BatteryReservePower = pyo.Constraint(
        m.BATTERY_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            m.ReserveBattery[y, z, d, h] + m.Discharge[y, z, d, h] - m.Charge[y, z, d, h]
            <= m.BatteryPowerCapacity[z, y]
        ),
        doc="rb + dis - ch <= AP, MW",
    )
    m.BatteryReserveEnergy = pyo.Constraint(
        m.BATTERY_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            delta * (m.ReserveBattery[y, z, d, h] - m.Charge[y, z, d, h])
            <= eta_d * (m.StateOfCharge[y, z, d, h] - e_min(z, y))
        ),
        doc="delta (rb - ch) <= eta_d (SoC - Emin), MWh",
    )


def _define_registrations(
    m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig
) -> None:
    """Balance and reserve registrations and the battery costs."""
    m.ZoneBatteryNet = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            m.Discharge[y, z, d, h] - m.Charge[y, z, d, h] if z in m.BATTERY_ZONES else 0.0
        ),
        doc="battery net injection dis - ch, MW",
    )
    m.Zone_Power_Injections.append("ZoneBatteryNet")
    m.BatteryReserve = pyo.Expression(
        m.TIMEPOINTS,
        rule=lambda m, y, d, h: sum(m.ReserveBattery[y, z, d, h] for z in m.BATTERY_ZONES),
        doc="battery spinning reserve, MW",
    )
    m.Reserve_Provisions.append("BatteryReserve")
    costs = inputs.costs
    crf = capital_recovery_factor(config.discount_rate, config.storage_life_years)

    def ce(v: int) -> float:
        return KW_PER_MW * costs.at[end_year_index(config, v), "CE"]

    def cp(v: int) -> float:
        return KW_PER_MW * costs.at[end_year_index(config, v), "CP"]

    m.BatteryInvestment = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: sum(
            m.annuity_age_factor[y, v]
            * crf
            * (ce(v) * m.BatteryEnergyBuilt[z, v] + cp(v) * m.BuildBattery[z, v])
            for z in m.BATTERY_ZONES
            for v in m.EPOCHS
            if v <= y
        ),
        doc="INVB: age-discounted annuities of CE (ye(v)) and CP (ye(v)), $/yr",
    )
    register_cost(m, "BatteryInvestment", "investment")
    m.BatteryFixedCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y]
            * KW_PER_MW
            * costs.at[end_year_index(config, y), "fom_battery"]
            * sum(m.BuildBattery[z, y] for z in m.BATTERY_ZONES)
        ),
        doc="battery FOM on epoch-y additions, discounted, $/yr",
    )
    register_cost(m, "BatteryFixedCost", "operation")


def summarize(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> dict:
    """Return battery power (MW, total and by zone) and energy (MWh) added over the horizon."""
    by_zone = {z: sum(pyo.value(m.BuildBattery[z, v]) for v in m.EPOCHS) for z in m.BATTERY_ZONES}
    power = sum(by_zone.values())
    return {
        "capacity_mw": {"battery": power},
        "capacity_by_zone_mw": {"battery": by_zone},
        "battery_energy_mwh": config.battery_duration_h * power,
    }
