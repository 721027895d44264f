"""LDA/DER extension: local distribution areas aggregated at their interface bus.

Plugs in by registration only (no core change). Each LDA ``a`` sits at zone
``z(a)`` and serves ``load_share_a`` of that zone's demand through its interface
(substation) and its own DER (PV, battery, flexible load), GAP-style with a
separate DER financing rate. Index letters: ``a`` LDA, ``v`` build epoch.

LDA balance (MW, LDA side), with loss factor ``lam``::

    (1-lam) Import - ExportLocal + PV - PVCurtail + dis - ch + Shed = L_a + Shift

Transmission side: the zone withdraws ``Import - (1-lam) ExportLocal`` and no
longer withdraws ``L_a`` itself; interface limit
``Import, (1-lam) ExportLocal <= cap + sum_{v<=y} InterfaceUpgrade``.
Operational parameters (:class:`~gridlayers.planner.config.LDAOperationalParams`)
are mutable Params: ``lda_flex_availability[a,h]`` caps battery power and load
shift at ``share_h x capacity``, ``lda_loss_factor[a]``, ``lda_cost_adder[a]``
($/MWh on interface energy) and ``lda_price_adder[a,d,h]`` ($/MWh, signed, on the net
interface withdrawal ``Import - (1-lam) ExportLocal``: the zonal price premium operation
saw and the plan's own zonal prices miss). Change them with :func:`update_operational`
and re-solve, or rebuild from a new config.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import LDAOperationalParams, PlannerConfig, capital_recovery_factor
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.timescale import weighted_hours_sum

#: Modules this extension reads components of (Switch-style declaration).
dependencies = (
    "gridlayers.planner.timescale",
    "gridlayers.planner.load_zones",
    "gridlayers.planner.renewables",
    "gridlayers.planner.financials",
)


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define LDA sets, parameters, DER and interface decisions, balance and costs."""
    ldas = {a.name: a for a in config.lda.ldas}
    bad = [a.zone for a in ldas.values() if a.zone not in m.ONSHORE_ZONES]
    if bad:
        msg = f"LDA zones {bad} are not onshore zones of the model"
        raise ValueError(msg)
    m.lda_configs = ldas
    m.LDAS = pyo.Set(initialize=list(ldas), ordered=True, doc="LDAs a")
    m.LDA_TIMEPOINTS = pyo.Set(
        initialize=[(y, a, d, h) for (y, d, h) in m.TIMEPOINTS for a in ldas],
        dimen=4,
        doc="(y, a, d, h)",
    )
    m.lda_demand_mw = pyo.Param(
        m.LDA_TIMEPOINTS,
        initialize={
            (y, a, d, h): ldas[a].load_share * m.zone_demand_mw[y, ldas[a].zone, d, h]
            for (y, a, d, h) in m.LDA_TIMEPOINTS
        },
        doc="L_a: LDA demand (share of zone demand), MW",
    )
    m.lda_flex_availability = pyo.Param(
        m.LDAS,
        m.HOURS,
        mutable=True,
        within=pyo.UnitInterval,
        initialize={
            (a, h): ldas[a].operational.flex_availability_by_hour[h - 1]
            for a in ldas
            for h in m.HOURS
        },
        doc="usable share of DER flexibility at the interface by hour of day, p.u.",
    )
    m.lda_loss_factor = pyo.Param(
        m.LDAS,
        mutable=True,
        initialize={a: ldas[a].operational.loss_factor for a in ldas},
        doc="lam: distribution loss factor, p.u.",
    )
    m.lda_cost_adder = pyo.Param(
        m.LDAS,
        mutable=True,
        initialize={a: ldas[a].operational.operating_cost_adder_usd_per_mwh for a in ldas},
        doc="DSO operating cost adder on interface energy, $/MWh",
    )
    m.lda_price_adder = pyo.Param(
        m.LDAS,
        m.DAYS,
        m.HOURS,
        mutable=True,
        initialize={
            (a, d, h): _price_adder(ldas[a].operational, d, h)
            for a in ldas
            for d in m.DAYS
            for h in m.HOURS
        },
        doc="zonal price adder on the LDA's net interface withdrawal, $/MWh (signed)",
    )
    _define_builds(m, ldas)
    _define_operation(m, ldas)
    _define_registrations(m, ldas, config)


def _price_adder(params: LDAOperationalParams, d: int, h: int) -> float:
    """Return the price adder of day ``d``, hour ``h`` (1-based), $/MWh; 0 if not given."""
    hours = params.price_adder_usd_per_mwh.get(d)
    return 0.0 if hours is None else float(hours[h - 1])


def _define_builds(m: pyo.ConcreteModel, ldas: dict) -> None:
    """DER and interface investment decisions and cumulative capacities."""
    m.BuildDERPV = pyo.Var(
        m.LDAS, m.EPOCHS, within=pyo.NonNegativeReals, doc="DER PV added in epoch v, MW"
    )
    m.BuildDERBattery = pyo.Var(
        m.LDAS, m.EPOCHS, within=pyo.NonNegativeReals, doc="DER battery power added in epoch v, MW"
    )
    m.InterfaceUpgrade = pyo.Var(
        m.LDAS, m.EPOCHS, within=pyo.NonNegativeReals, doc="interface capacity added in epoch v, MW"
    )

    m.Investment_Variables.extend(["BuildDERPV", "BuildDERBattery", "InterfaceUpgrade"])

    def cumulative(var: pyo.Var) -> object:
        return lambda m, a, y: sum(var[a, v] for v in m.EPOCHS if v <= y)

    m.DERPVCapacity = pyo.Expression(
        m.LDAS, m.EPOCHS, rule=cumulative(m.BuildDERPV), doc="DER PV capacity, MW"
    )
    m.DERBatteryCapacity = pyo.Expression(
        m.LDAS, m.EPOCHS, rule=cumulative(m.BuildDERBattery), doc="DER battery power capacity, MW"
    )
    m.InterfaceCapacity = pyo.Expression(
        m.LDAS,
        m.EPOCHS,
        rule=lambda m, a, y: (
            ldas[a].interface.capacity_mw
            + sum(m.InterfaceUpgrade[a, v] for v in m.EPOCHS if v <= y)
        ),
        doc="interface capacity incl. upgrades, MW",
    )
    last = m.EPOCHS.last()
    m.DERPVMax = pyo.Constraint(
        m.LDAS,
        rule=lambda m, a: m.DERPVCapacity[a, last] <= ldas[a].pv.max_mw,
        doc="DER PV potential, MW",
    )
    m.DERBatteryMax = pyo.Constraint(
        m.LDAS,
        rule=lambda m, a: m.DERBatteryCapacity[a, last] <= ldas[a].battery.max_mw,
        doc="DER battery limit, MW",
    )
    m.InterfaceUpgradeMax = pyo.Constraint(
        m.LDAS,
        rule=lambda m, a: (
            sum(m.InterfaceUpgrade[a, v] for v in m.EPOCHS) <= ldas[a].interface.upgrade_max_mw
        ),
        doc="interface upgrade limit, MW",
    )


def _define_operation(m: pyo.ConcreteModel, ldas: dict) -> None:
    """Interface flows, DER dispatch, flexible load and the LDA balance."""
    nonneg = pyo.NonNegativeReals
    for name, doc in (
        ("LDAImport", "interface import, transmission side, MW"),
        ("LDAExportLocal", "export leaving the LDA network, LDA side, MW"),
        ("DERPVCurtail", "DER PV curtailment, MW"),
        ("DERCharge", "DER battery charge, MW"),
        ("DERDischarge", "DER battery discharge, MW"),
        ("DERSoC", "DER battery energy, MWh"),
        ("LDAShed", "unserved LDA load, MW"),
        ("LDAShiftAbs", "|load shift|, MW"),
    ):
        setattr(m, name, pyo.Var(m.LDA_TIMEPOINTS, within=nonneg, doc=doc))
    m.LDAShift = pyo.Var(m.LDA_TIMEPOINTS, doc="flexible load shift (+ = more load), MW")
    lam = m.lda_loss_factor

    def pv_avail(y: int, a: str, d: int, h: int) -> object:
        return m.DERPVCapacity[a, y] * m.re_cf["pv", ldas[a].zone, d, h]

    rules = {
        "InterfaceImportLimit": (
            lambda m, y, a, d, h: m.LDAImport[y, a, d, h] <= m.InterfaceCapacity[a, y],
            "import <= capacity, MW",
        ),
        "InterfaceExportLimit": (
            lambda m, y, a, d, h: (
                (1 - lam[a]) * m.LDAExportLocal[y, a, d, h] <= m.InterfaceCapacity[a, y]
            ),
            "export <= capacity, MW",
        ),
        "DERPVCurtailLimit": (
            lambda m, y, a, d, h: m.DERPVCurtail[y, a, d, h] <= pv_avail(y, a, d, h),
            "curtail <= available PV, MW",
        ),
        "DERChargeLimit": (
            lambda m, y, a, d, h: (
                m.DERCharge[y, a, d, h]
                <= m.lda_flex_availability[a, h] * m.DERBatteryCapacity[a, y]
            ),
            "charge <= usable share x power, MW",
        ),
        "DERDischargeLimit": (
            lambda m, y, a, d, h: (
                m.DERDischarge[y, a, d, h]
                <= m.lda_flex_availability[a, h] * m.DERBatteryCapacity[a, y]
            ),
            "discharge <= usable share x power, MW",
        ),
        "DERSoCMax": (
            lambda m, y, a, d, h: (
                m.DERSoC[y, a, d, h] <= ldas[a].battery.duration_h * m.DERBatteryCapacity[a, y]
            ),
            "SoC <= duration x power, MWh",
        ),
        "LDAShiftUp": (
            lambda m, y, a, d, h: (
                m.LDAShift[y, a, d, h]
                <= m.lda_flex_availability[a, h]
                * ldas[a].flexible_load.max_share
                * m.lda_demand_mw[y, a, d, h]
            ),
            "shift <= usable share x max share x L_a, MW",
        ),
        "LDAShiftDown": (
            lambda m, y, a, d, h: (
                -m.LDAShift[y, a, d, h]
                <= m.lda_flex_availability[a, h]
                * ldas[a].flexible_load.max_share
                * m.lda_demand_mw[y, a, d, h]
            ),
            "-shift <= same, MW",
        ),
        "LDAShiftAbsUp": (lambda m, *t: m.LDAShiftAbs[t] >= m.LDAShift[t], "|shift|, MW"),
        "LDAShiftAbsDown": (lambda m, *t: m.LDAShiftAbs[t] >= -m.LDAShift[t], "|shift|, MW"),
        "LDAShedLimit": (lambda m, *t: m.LDAShed[t] <= m.lda_demand_mw[t], "shed <= L_a, MW"),
        "LDABalance": (
            lambda m, y, a, d, h: (
                (1 - lam[a]) * m.LDAImport[y, a, d, h]
                - m.LDAExportLocal[y, a, d, h]
                + pv_avail(y, a, d, h)
                - m.DERPVCurtail[y, a, d, h]
                + m.DERDischarge[y, a, d, h]
                - m.DERCharge[y, a, d, h]
                + m.LDAShed[y, a, d, h]
                == m.lda_demand_mw[y, a, d, h] + m.LDAShift[y, a, d, h]
            ),
            "LDA energy balance, MW",
        ),
    }
    for name, (rule, doc) in rules.items():
        setattr(m, name, pyo.Constraint(m.LDA_TIMEPOINTS, rule=rule, doc=doc))

    _define_cycles(m, ldas)


def _define_cycles(m: pyo.ConcreteModel, ldas: dict) -> None:
    """Cyclic daily DER battery balance and daily energy-neutral load shift."""
    first = m.first_hour

    def soc_rule(m: pyo.ConcreteModel, y: int, a: str, d: int, h: int) -> object:
        eff = ldas[a].battery.efficiency
        prev = m.DERSoC[y, a, d, m.last_hour if h == first else h - 1]
        return (
            m.DERSoC[y, a, d, h]
            == prev + eff * m.DERCharge[y, a, d, h] - m.DERDischarge[y, a, d, h] / eff
        )

    m.DERSoCBalance = pyo.Constraint(
        m.LDA_TIMEPOINTS, rule=soc_rule, doc="cyclic daily DER battery energy balance, MWh"
    )
    m.LDA_DAYS = pyo.Set(
        initialize=sorted({(y, a, d) for (y, a, d, _h) in m.LDA_TIMEPOINTS}),
        dimen=3,
        doc="(y, a, d)",
    )
    m.LDAShiftNeutral = pyo.Constraint(
        m.LDA_DAYS,
        rule=lambda m, y, a, d: sum(m.LDAShift[y, a, d, h] for h in m.HOURS) == 0,
        doc="load shift is energy neutral per day, MWh",
    )


def _define_registrations(m: pyo.ConcreteModel, ldas: dict, config: PlannerConfig) -> None:
    """Zone balance, RPS credit and costs of the LDAs."""
    at_zone = {z: [a for a in ldas if ldas[a].zone == z] for z in m.ZONES}
    lam = m.lda_loss_factor

    def export_tx(y: int, a: str, d: int, h: int) -> object:
        return (1 - lam[a]) * m.LDAExportLocal[y, a, d, h]

    m.ZoneLDADemandTransfer = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: sum(m.lda_demand_mw[y, a, d, h] for a in at_zone[z]),
        doc="LDA demand taken out of the zone balance (served via interface/DER), MW",
    )
    m.Zone_Power_Injections.append("ZoneLDADemandTransfer")
    m.ZoneLDAInterface = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: sum(
            m.LDAImport[y, a, d, h] - export_tx(y, a, d, h) for a in at_zone[z]
        ),
        doc="net interface withdrawal of the zone's LDAs, MW",
    )
    m.Zone_Power_Withdrawals.append("ZoneLDAInterface")
    m.ZoneDERPVRPS = pyo.Expression(
        m.EPOCHS,
        m.ZONES,
        rule=lambda m, y, z: sum(
            m.DERPVCapacity[a, y] * m.re_cf["pv", z, d, h] - m.DERPVCurtail[y, a, d, h]
            for a in at_zone[z]
            for d in m.DAYS
            for h in m.HOURS
        ),
        doc="DER PV energy over modelled hours (RPS credit), MWh",
    )
    m.Zone_RPS_Credits.append("ZoneDERPVRPS")
    _define_costs(m, ldas, config, export_tx)


def _define_costs(
    m: pyo.ConcreteModel, ldas: dict, config: PlannerConfig, export_tx: object
) -> None:
    def der_capex(a: str, v: int) -> object:
        cfg = ldas[a]
        crf = capital_recovery_factor(cfg.financing_rate, cfg.der_life_years)
        bat = (
            cfg.battery.power_capex_usd_per_mw
            + cfg.battery.duration_h * cfg.battery.energy_capex_usd_per_mwh
        )
        return crf * (cfg.pv.capex_usd_per_mw * m.BuildDERPV[a, v] + bat * m.BuildDERBattery[a, v])

    def iface_capex(a: str, v: int) -> object:
        crf = capital_recovery_factor(config.discount_rate, ldas[a].interface.life_years)
        return crf * ldas[a].interface.upgrade_capex_usd_per_mw * m.InterfaceUpgrade[a, v]

    m.LDAInvestment = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: sum(
            m.annuity_age_factor[y, v] * (der_capex(a, v) + iface_capex(a, v))
            for a in m.LDAS
            for v in m.EPOCHS
            if v <= y
        ),
        doc="DER (DER financing rate) and interface annuities, age-discounted, $/yr",
    )
    register_cost(m, "LDAInvestment", "investment")

    def hourly(y: int, d: int, h: int) -> object:
        return sum(
            m.lda_cost_adder[a] * (m.LDAImport[y, a, d, h] + export_tx(y, a, d, h))
            + ldas[a].flexible_load.cost_usd_per_mwh * m.LDAShiftAbs[y, a, d, h]
            + config.voll_usd_per_mwh * m.LDAShed[y, a, d, h]
            for a in m.LDAS
        )

    m.LDAOperatingCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y]
            * (
                weighted_hours_sum(m, hourly, y)
                + sum(
                    ldas[a].pv.fom_usd_per_mw_yr * m.DERPVCapacity[a, y]
                    + ldas[a].battery.fom_usd_per_mw_yr * m.DERBatteryCapacity[a, y]
                    for a in m.LDAS
                )
            )
        ),
        doc="DSO adder, shift cost, LDA shedding and DER FOM (cumulative), discounted, $/yr",
    )
    register_cost(m, "LDAOperatingCost", "operation")
    m.LDAPriceAdderCost = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: (
            m.discount_factor[y]
            * weighted_hours_sum(
                m,
                lambda y, d, h: sum(
                    m.lda_price_adder[a, d, h] * (m.LDAImport[y, a, d, h] - export_tx(y, a, d, h))
                    for a in m.LDAS
                ),
                y,
            )
        ),
        doc="zonal price adder x net interface withdrawal, discounted, $/yr (a price signal)",
    )
    register_cost(m, "LDAPriceAdderCost", "operation")


def update_operational(m: pyo.ConcreteModel, params: dict[str, LDAOperationalParams]) -> None:
    """Write new operational parameters into a built model (re-solve afterwards).

    Parameters
    ----------
    m : pyomo.environ.ConcreteModel
        Model built with the LDA extension.
    params : dict of str to LDAOperationalParams
        New parameters by LDA name.

    """
    for a, p in params.items():
        m.lda_loss_factor[a] = p.loss_factor
        m.lda_cost_adder[a] = p.operating_cost_adder_usd_per_mwh
        for h in m.HOURS:
            m.lda_flex_availability[a, h] = p.flex_availability_by_hour[h - 1]
            for d in m.DAYS:
                m.lda_price_adder[a, d, h] = _price_adder(p, d, h)


def _val(expr: object) -> float:
    """Return the value of ``expr`` with solver noise below 1e-9 shown as 0."""
    v = float(pyo.value(expr))
    return 0.0 if abs(v) < 1e-9 else v


def summarize(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> dict:
    """Return per-LDA DER and interface decisions (MW) and interface energy (MWh/yr)."""
    last = m.EPOCHS.last()
    out = {}
    for a in m.LDAS:
        imports = {
            str(y): pyo.value(
                weighted_hours_sum(m, lambda y, d, h, a=a: m.LDAImport[y, a, d, h], y)
            )
            for y in m.EPOCHS
        }
        peak = max(pyo.value(m.LDAImport[t]) for t in m.LDA_TIMEPOINTS if t[1] == a)
        out[a] = {
            "zone": m.lda_configs[a].zone,
            "der_pv_mw": _val(m.DERPVCapacity[a, last]),
            "der_battery_mw": _val(m.DERBatteryCapacity[a, last]),
            "der_battery_mwh": m.lda_configs[a].battery.duration_h
            * _val(m.DERBatteryCapacity[a, last]),
            "interface_capacity_mw": pyo.value(m.InterfaceCapacity[a, last]),
            "interface_upgrade_mw": _val(sum(m.InterfaceUpgrade[a, v] for v in m.EPOCHS)),
            "interface_peak_import_mw": peak,
            "interface_import_mwh_per_yr": imports,
            "hourly": _hourly(m, a, last),
            "unserved_mwh_per_yr": {
                str(y): pyo.value(
                    weighted_hours_sum(m, lambda y, d, h, a=a: m.LDAShed[y, a, d, h], y)
                )
                for y in m.EPOCHS
            },
        }
    return {"ldas": out}


def _hourly(m: pyo.ConcreteModel, a: str, y: int) -> dict[str, dict[str, list[float]]]:
    """Hourly interface import and DER support of LDA ``a`` in epoch ``y`` by day (MW).

    ``der_support_mw`` = PV output + battery discharge - charge - load shift up (MW):
    how much the plan relies on the LDA's DER to keep import below the LDA's demand.
    """
    out = {}
    for d in m.DAYS:
        rows = [(y, a, d, h) for h in m.HOURS]
        out[str(d)] = {
            "import_mw": [_val(m.LDAImport[t]) for t in rows],
            "export_mw": [_val(m.LDAExportLocal[t]) for t in rows],
            "der_support_mw": [
                _val(
                    m.DERPVCapacity[a, y] * m.re_cf["pv", m.lda_configs[a].zone, d, t[3]]
                    - m.DERPVCurtail[t]
                    + m.DERDischarge[t]
                    - m.DERCharge[t]
                    - m.LDAShift[t]
                )
                for t in rows
            ],
        }
    return out


def peak_demand_mw(m: pyo.ConcreteModel) -> dict[str, float]:
    """Return each LDA's largest demand in the model's last epoch (MW)."""
    last = m.EPOCHS.last()
    return {
        a: max(
            pyo.value(m.lda_demand_mw[t]) for t in m.LDA_TIMEPOINTS if t[0] == last and t[1] == a
        )
        for a in m.LDAS
    }
