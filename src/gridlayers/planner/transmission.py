"""DC power flow with binary corridor upgrades and offshore cable choices.

Reference (9)-(12), C16. Lines ``ln``: existing corridors (upgradable by one
identical parallel circuit) and candidate offshore cables of type ``c``
(HVAC obeys the angle relation; HVDC are transport links). Flows are positive
from ``from_zone`` to ``to_zone``. The in-service indicators ``Z[ln,y]`` and
``W[ln,c,y]`` are expressions ``sum_{v<=y}`` of the binary start decisions, which
together with ``sum_y <= 1`` is the reference's binary definition.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig, capital_recovery_factor
from gridlayers.planner.core import register_cost
from gridlayers.planner.inputs import PlannerInputs


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define angles, flows, upgrade and cable decisions, and the line costs."""
    lines = inputs.lines
    ex = lines[lines["kind"] == "existing"]
    off = lines[lines["kind"] == "offshore"] if config.offshore_transmission else lines.iloc[:0]
    m.EXISTING_LINES = pyo.Set(initialize=list(ex.index), ordered=True, doc="corridors ln")
    m.OFFSHORE_LINES = pyo.Set(initialize=list(off.index), ordered=True, doc="cable routes ln")
    m.CABLE_TYPES = pyo.Set(
        initialize=list(range(1, len(inputs.cable_types) + 1)),
        ordered=True,
        doc="offshore cable types c",
    )
    used = lines.loc[list(ex.index) + list(off.index)]
    m.line_from = pyo.Param(
        m.EXISTING_LINES | m.OFFSHORE_LINES,
        within=pyo.Any,
        initialize=used["from_zone"].to_dict(),
        doc="from zone",
    )
    m.line_to = pyo.Param(
        m.EXISTING_LINES | m.OFFSHORE_LINES,
        within=pyo.Any,
        initialize=used["to_zone"].to_dict(),
        doc="to zone",
    )
    m.line_x_pu = pyo.Param(
        m.EXISTING_LINES | m.OFFSHORE_LINES,
        initialize=used["x_pu"].to_dict(),
        doc="x: reactance, p.u.",
    )
    m.line_s_max_mw = pyo.Param(
        m.EXISTING_LINES,
        initialize=ex["s_max_mw"].to_dict(),
        doc="corridor (and upgrade circuit) rating, MW",
    )
    m.cable_capacity_mw = pyo.Param(
        m.CABLE_TYPES,
        initialize={c: t.capacity_mw for c, t in enumerate(inputs.cable_types, start=1)},
        doc="cable type rating, MW",
    )
    m.Angle = pyo.Var(
        m.ZONE_TIMEPOINTS, bounds=(-math.pi, math.pi), doc="theta: voltage angle, rad"
    )
    for y, z, d, h in m.ZONE_TIMEPOINTS:
        if z == inputs.slack_zone:
            m.Angle[y, z, d, h].fix(0.0)
    _define_corridors(m, config)
    _define_cables(m, config)
    _define_export_cuts(m, inputs, config)
    _define_balance_terms(m)
    _define_costs(m, inputs, config, ex, off)


def disjunctive_big_m(config: PlannerConfig, x_pu: float, other_flow_mw: float) -> float:
    """Return the big-M of ``|x flow - dtheta| <= M (1 - on)``, rad.

    Parameters
    ----------
    config : PlannerConfig
        ``big_m_mode`` selects the reference value ``(pi/2)/x`` or the tight value.
    x_pu : float
        Line reactance, p.u.
    other_flow_mw : float
        Largest flow the variable may carry while the AC circuit is off (an HVDC
        cable on the same route), MW.

    Notes
    -----
    With the circuit off, ``|dtheta| <= 2 pi`` (angle bounds) and
    ``|x flow| <= x other_flow``, so ``M = 2 pi + x other_flow`` is valid; the
    reference value is larger for every line here (x <= 0.0173), so both give the
    same integer-feasible set and optimum, with a tighter LP relaxation. In
    ``tight`` mode only the AC cables use it; corridor upgrades are written as
    ``|g - f| <= s_max (1 - Z)`` (see ``_define_corridors``).

    """
    if config.big_m_mode == "reference":
        return (math.pi / 2.0) / x_pu
    return 2.0 * math.pi + x_pu * other_flow_mw


def _angle_diff(m: pyo.ConcreteModel, ln: int, y: int, d: int, h: int) -> object:
    return m.Angle[y, m.line_from[ln], d, h] - m.Angle[y, m.line_to[ln], d, h]


def _define_corridors(m: pyo.ConcreteModel, config: PlannerConfig) -> None:
    """Existing corridor flow ``f`` and the binary upgrade circuit ``g``.

    Notes
    -----
    Reference (10) is ``|x g - dtheta| <= M (1 - Z)``. Since ``dtheta = x f`` holds
    exactly (9), ``big_m_mode="tight"`` writes it as ``|g - f| <= s_max (1 - Z)``:
    with Z = 1 both force ``g = f``; with Z = 0, ``g = 0`` and ``|f| <= s_max``
    make both non-binding. Same integer-feasible set, no angle terms, no
    ``x``-sized coefficients, and the smallest valid M.

    """
    m.LINE_TIMEPOINTS = pyo.Set(
        initialize=m.EXISTING_LINES * m.TIMEPOINTS, dimen=4, doc="(ln, y, d, h) corridors"
    )
    m.FlowExisting = pyo.Var(
        m.LINE_TIMEPOINTS,
        bounds=lambda m, ln, *t: (-m.line_s_max_mw[ln], m.line_s_max_mw[ln]),
        doc="f: flow on existing circuit, MW",
    )
    m.FlowUpgrade = pyo.Var(m.LINE_TIMEPOINTS, doc="g: flow on upgrade circuit, MW")
    m.StartUpgrade = pyo.Var(
        m.EXISTING_LINES,
        m.EPOCHS,
        within=pyo.Binary,
        doc="I: corridor upgrade started in epoch y, binary",
    )
    m.Investment_Variables.append("StartUpgrade")
    m.UpgradeOnce = pyo.Constraint(
        m.EXISTING_LINES,
        rule=lambda m, ln: sum(m.StartUpgrade[ln, y] for y in m.EPOCHS) <= 1,
        doc="(10) at most one upgrade per corridor, count",
    )
    m.UpgradeInService = pyo.Expression(
        m.EXISTING_LINES,
        m.EPOCHS,
        rule=lambda m, ln, y: sum(m.StartUpgrade[ln, v] for v in m.EPOCHS if v <= y),
        doc="Z: upgrade in service in epoch y (no delay), 0/1",
    )
    m.KVLExisting = pyo.Constraint(
        m.LINE_TIMEPOINTS,
        rule=lambda m, ln, *t: m.line_x_pu[ln] * m.FlowExisting[ln, *t] == _angle_diff(m, ln, *t),
        doc="(9) x f = theta_fr - theta_to, p.u. rad",
    )

    if config.big_m_mode == "reference":

        def big_m(m: pyo.ConcreteModel, ln: int) -> float:
            return disjunctive_big_m(config, m.line_x_pu[ln], 0.0)

        def kvl_upgrade(sign: float) -> object:
            def rule(m: pyo.ConcreteModel, ln: int, y: int, d: int, h: int) -> object:
                expr = m.line_x_pu[ln] * m.FlowUpgrade[ln, y, d, h] - _angle_diff(m, ln, y, d, h)
                return sign * expr <= big_m(m, ln) * (1 - m.UpgradeInService[ln, y])

            return rule

        docs = ("(10) x g - dtheta <= M (1 - Z), rad", "(10) dtheta - x g <= M (1 - Z), rad")
    else:
        # dtheta = x f holds exactly (KVLExisting), so (10) is x |g - f| <= M (1 - Z);
        # with Z = 0, g = 0 and |f| <= s_max, hence M = x s_max is valid and tightest.
        # Divided by x: |g - f| <= s_max (1 - Z), no angle terms.
        def kvl_upgrade(sign: float) -> object:
            def rule(m: pyo.ConcreteModel, ln: int, y: int, d: int, h: int) -> object:
                expr = m.FlowUpgrade[ln, y, d, h] - m.FlowExisting[ln, y, d, h]
                return sign * expr <= m.line_s_max_mw[ln] * (1 - m.UpgradeInService[ln, y])

            return rule

        docs = ("(10) g - f <= s_max (1 - Z), MW", "(10) f - g <= s_max (1 - Z), MW")

    m.KVLUpgradeUp = pyo.Constraint(m.LINE_TIMEPOINTS, rule=kvl_upgrade(1.0), doc=docs[0])
    m.KVLUpgradeDown = pyo.Constraint(m.LINE_TIMEPOINTS, rule=kvl_upgrade(-1.0), doc=docs[1])
    m.UpgradeFlowUp = pyo.Constraint(
        m.LINE_TIMEPOINTS,
        rule=lambda m, ln, y, d, h: (
            m.FlowUpgrade[ln, y, d, h] <= m.line_s_max_mw[ln] * m.UpgradeInService[ln, y]
        ),
        doc="g <= s_max Z, MW",
    )
    m.UpgradeFlowDown = pyo.Constraint(
        m.LINE_TIMEPOINTS,
        rule=lambda m, ln, y, d, h: (
            -m.FlowUpgrade[ln, y, d, h] <= m.line_s_max_mw[ln] * m.UpgradeInService[ln, y]
        ),
        doc="-g <= s_max Z, MW",
    )


def _define_cables(m: pyo.ConcreteModel, config: PlannerConfig) -> None:
    """Offshore cable flow ``q`` and the binary cable choices ``J``."""
    m.CABLE_TIMEPOINTS = pyo.Set(
        initialize=m.OFFSHORE_LINES * m.TIMEPOINTS, dimen=4, doc="(ln, y, d, h) offshore routes"
    )
    m.FlowCable = pyo.Var(m.CABLE_TIMEPOINTS, doc="q: flow on offshore cable, MW")
    m.StartCable = pyo.Var(
        m.OFFSHORE_LINES,
        m.CABLE_TYPES,
        m.EPOCHS,
        within=pyo.Binary,
        doc="J: cable of type c built on route ln in epoch y, binary",
    )
    m.Investment_Variables.append("StartCable")
    m.CableOnce = pyo.Constraint(
        m.OFFSHORE_LINES,
        rule=lambda m, ln: (
            sum(m.StartCable[ln, c, y] for c in m.CABLE_TYPES for y in m.EPOCHS) <= 1
        ),
        doc="(11) at most one cable per route, count",
    )
    m.CableInService = pyo.Expression(
        m.OFFSHORE_LINES,
        m.CABLE_TYPES,
        m.EPOCHS,
        rule=lambda m, ln, c, y: sum(m.StartCable[ln, c, v] for v in m.EPOCHS if v <= y),
        doc="W: cable in service in epoch y, 0/1",
    )
    ac = [c for c in m.CABLE_TYPES if c == 1]

    def cable_cap(m: pyo.ConcreteModel, ln: int, y: int) -> object:
        return sum(m.cable_capacity_mw[c] * m.CableInService[ln, c, y] for c in m.CABLE_TYPES)

    m.CableFlowUp = pyo.Constraint(
        m.CABLE_TIMEPOINTS,
        rule=lambda m, ln, y, d, h: m.FlowCable[ln, y, d, h] <= cable_cap(m, ln, y),
        doc="(11) q <= sum_c cap_c W, MW",
    )
    m.CableFlowDown = pyo.Constraint(
        m.CABLE_TIMEPOINTS,
        rule=lambda m, ln, y, d, h: -m.FlowCable[ln, y, d, h] <= cable_cap(m, ln, y),
        doc="(11) -q <= sum_c cap_c W, MW",
    )

    def kvl(sign: float) -> object:
        def rule(m: pyo.ConcreteModel, ln: int, y: int, d: int, h: int) -> object:
            if not ac:
                return pyo.Constraint.Skip
            expr = m.line_x_pu[ln] * m.FlowCable[ln, y, d, h] - _angle_diff(m, ln, y, d, h)
            other = max((m.cable_capacity_mw[c] for c in m.CABLE_TYPES if c != ac[0]), default=0.0)
            big_m = disjunctive_big_m(config, m.line_x_pu[ln], other)
            return sign * expr <= big_m * (1 - m.CableInService[ln, ac[0], y])

        return rule

    m.KVLCableUp = pyo.Constraint(
        m.CABLE_TIMEPOINTS, rule=kvl(1.0), doc="(11) AC cable: x q - dtheta <= M (1 - W_ac), rad"
    )
    m.KVLCableDown = pyo.Constraint(
        m.CABLE_TIMEPOINTS, rule=kvl(-1.0), doc="(11) AC cable: dtheta - x q <= M (1 - W_ac), rad"
    )
    first = m.EPOCHS.first()
    m.OffshoreConnection = pyo.Constraint(
        m.OFFSHORE_ZONES,
        rule=lambda m, z: (
            sum(
                m.StartCable[ln, c, first]
                for ln in m.OFFSHORE_LINES
                if z in (m.line_from[ln], m.line_to[ln])
                for c in m.CABLE_TYPES
            )
            >= 1
            if len(m.OFFSHORE_LINES)
            else pyo.Constraint.Skip
        ),
        doc="(12) every offshore node gets a cable started in epoch 1, count",
    )


def offshore_export_requirement_mw(
    inputs: PlannerInputs, config: PlannerConfig, zones: Iterable[str]
) -> float:
    """Return the least cable capacity that must leave the offshore node set ``zones``, MW.

    An offshore node has no load, storage, thermal or new capacity, so by (3) and
    (5) its cables must carry at least ``(1 - alpha_plus) RE0`` every hour; the
    set's cables together at least ``(1 - alpha_plus) max_{d,h} sum_{n in S} RE0``.
    The sum runs in sorted zone order so that the value, to the last bit, does
    not depend on Python's string hashing (the order of a ``set``): a bit
    difference in these rows changed the simplex path and made runs of the
    ISO-NE planner non-reproducible.
    """
    share = 1.0 - config.curtailment_max_share
    ordered = sorted(zones)
    return share * max(
        sum(inputs.existing_re_mw.get((z, d, h), 0.0) for z in ordered)
        for d in inputs.days
        for h in inputs.hours
    )


def _define_export_cuts(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Add valid inequalities on the cable choices: export capacity of offshore node sets.

    For every set S of offshore nodes without thermal units, the cables started in
    epoch 1 that cross S's boundary must be able to carry ``E_S``
    (:func:`offshore_export_requirement_mw`); cables last for the horizon and the
    offshore output is the same every epoch, so epoch 1 decides. With each cable's
    rating capped at ``E_S`` (valid because the choices are binary)::

        sum_{ln in delta(S), c} min(cap_c, E_S) J[ln, c, 1] >= E_S

    Up to 12 offshore nodes are enumerated (4,095 sets); beyond that no rows are
    added. Every integer plan of the model satisfies these rows; they only remove
    fractional cable choices from the LP relaxation (and infeasible cable
    topologies from a Benders master, see ``planner/benders.py``).
    """
    offshore = [z for z in m.OFFSHORE_ZONES if z not in set(inputs.units["zone"])]
    first = m.EPOCHS.first() if len(m.EPOCHS) else None
    rows = {}
    if len(m.OFFSHORE_LINES) and first is not None and len(offshore) <= 12:
        for size in range(1, len(offshore) + 1):
            for subset in itertools.combinations(offshore, size):
                inside = set(subset)
                crossing = [
                    ln
                    for ln in m.OFFSHORE_LINES
                    if (m.line_from[ln] in inside) != (m.line_to[ln] in inside)
                ]
                need = offshore_export_requirement_mw(inputs, config, inside)
                if crossing and need > 0.0:
                    rows[subset] = (crossing, need)
    m.OFFSHORE_SETS = pyo.Set(initialize=list(rows), dimen=None, doc="offshore node sets S")
    m.OffshoreExportCapacity = pyo.Constraint(
        m.OFFSHORE_SETS,
        rule=lambda m, *subset: (
            sum(
                min(pyo.value(m.cable_capacity_mw[c]), rows[subset][1]) * m.StartCable[ln, c, first]
                for ln in rows[subset][0]
                for c in m.CABLE_TYPES
            )
            >= rows[subset][1]
        ),
        doc="valid: cables leaving S carry (1 - alpha_plus) max sum RE0, MW",
    )


def _define_balance_terms(m: pyo.ConcreteModel) -> None:
    """Zonal net export (withdrawal) and offshore landing credit for the RPS."""
    out_ex = {z: [ln for ln in m.EXISTING_LINES if m.line_from[ln] == z] for z in m.ZONES}
    in_ex = {z: [ln for ln in m.EXISTING_LINES if m.line_to[ln] == z] for z in m.ZONES}
    out_off = {z: [ln for ln in m.OFFSHORE_LINES if m.line_from[ln] == z] for z in m.ZONES}
    in_off = {z: [ln for ln in m.OFFSHORE_LINES if m.line_to[ln] == z] for z in m.ZONES}

    def corridor(ln: int, y: int, d: int, h: int) -> object:
        return m.FlowExisting[ln, y, d, h] + m.FlowUpgrade[ln, y, d, h]

    m.ZoneNetExport = pyo.Expression(
        m.ZONE_TIMEPOINTS,
        rule=lambda m, y, z, d, h: (
            sum(corridor(ln, y, d, h) for ln in out_ex[z])
            - sum(corridor(ln, y, d, h) for ln in in_ex[z])
            + sum(m.FlowCable[ln, y, d, h] for ln in out_off[z])
            - sum(m.FlowCable[ln, y, d, h] for ln in in_off[z])
        ),
        doc="Fout: net outflow over corridors and cables, MW",
    )
    m.Zone_Power_Withdrawals.append("ZoneNetExport")
    m.ZoneOffshoreRPS = pyo.Expression(
        m.EPOCHS,
        m.ZONES,
        rule=lambda m, y, z: sum(
            m.FlowCable[ln, y, d, h] for ln in in_off[z] for d in m.DAYS for h in m.HOURS
        ),
        doc="signed offshore cable inflow landing in zone (RPS credit), MWh",
    )
    m.Zone_RPS_Credits.append("ZoneOffshoreRPS")


def corridor_upgrade_cost_usd(config: PlannerConfig, s_max_mw: float, length_miles: float) -> float:
    """Return Cup_l = cost per MW-mile x scale x s_max x length, $."""
    return (
        config.onshore_line_cost_usd_per_mw_mile
        * config.onshore_line_cost_scale
        * s_max_mw
        * length_miles
    )


def _define_costs(
    m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig, ex: object, off: object
) -> None:
    crf = capital_recovery_factor(config.discount_rate, config.line_life_years)
    m.upgrade_cost_usd = pyo.Param(
        m.EXISTING_LINES,
        initialize={
            ln: corridor_upgrade_cost_usd(config, ex.at[ln, "s_max_mw"], ex.at[ln, "length_miles"])
            for ln in ex.index
        },
        doc="Cup: corridor upgrade cost, $",
    )
    m.cable_cost_usd = pyo.Param(
        m.OFFSHORE_LINES,
        m.CABLE_TYPES,
        initialize={
            (ln, c): t.cost_usd(off.at[ln, "length_miles"], inputs.cable_cost_scale_usd)
            for ln in off.index
            for c, t in enumerate(inputs.cable_types, start=1)
        },
        doc="Ccab: cable cost by type, $",
    )
    m.LineInvestment = pyo.Expression(
        m.EPOCHS,
        rule=lambda m, y: sum(
            m.annuity_age_factor[y, v]
            * crf
            * (
                sum(m.upgrade_cost_usd[ln] * m.StartUpgrade[ln, v] for ln in m.EXISTING_LINES)
                + sum(
                    m.cable_cost_usd[ln, c] * m.StartCable[ln, c, v]
                    for ln in m.OFFSHORE_LINES
                    for c in m.CABLE_TYPES
                )
            )
            for v in m.EPOCHS
            if v <= y
        ),
        doc="INVL: age-discounted line annuities, $/yr",
    )
    register_cost(m, "LineInvestment", "investment")


def summarize(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> dict:
    """Return the chosen corridor upgrades and offshore cables."""
    upgrades = [
        {
            "line": int(ln),
            "from": m.line_from[ln],
            "to": m.line_to[ln],
            "epoch": int(y),
            "capacity_mw": float(m.line_s_max_mw[ln]),
            "cost_usd": float(m.upgrade_cost_usd[ln]),
        }
        for ln in m.EXISTING_LINES
        for y in m.EPOCHS
        if pyo.value(m.StartUpgrade[ln, y]) > 0.5
    ]
    cables = [
        {
            "line": int(ln),
            "from": m.line_from[ln],
            "to": m.line_to[ln],
            "epoch": int(y),
            "type": inputs.cable_types[c - 1].name,
            "capacity_mw": float(m.cable_capacity_mw[c]),
            "cost_usd": float(m.cable_cost_usd[ln, c]),
        }
        for ln in m.OFFSHORE_LINES
        for c in m.CABLE_TYPES
        for y in m.EPOCHS
        if pyo.value(m.StartCable[ln, c, y]) > 0.5
    ]
    return {"upgrades": upgrades, "cables": cables}
