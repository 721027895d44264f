"""Pyomo formulation of the linearised branch-flow feeder model (build once, update in place).

Notes
-----
Components added to a block by :func:`add_feeder_to_block` (``b`` a model bus,
``k`` the branch feeding ``b`` from its parent ``p``, both named by the child bus):

* ``VmSq[b]`` squared voltage (pu^2); ``BranchP[k]``/``BranchQ[k]`` series flow
  at the parent side (MW/Mvar); ``InterfaceP``/``InterfaceQ`` export to transmission.
* ``CurrentSq[k] = loss_coef_p_per_mw*BranchP + loss_coef_q_per_mvar*BranchQ
  + loss_coef_w*VmSq[p]/tap_p^2 + loss_const`` (pu), the affine squared current.
* ``VoltageDrop[k]``: ``VmSq[b]/tap_c^2 = VmSq[p]/tap_p^2 - 2(r P + x Q)/S_base + |z|^2 CurrentSq``.
* ``PBalance[b]``/``QBalance[b]``: injections + inflow - outflow - shunts (- Interface at
  the root) = 0. The dual of ``PBalance`` is the DLMP (:func:`dlmp_usd_per_mwh`).
* ``VmMin``/``VmMax`` on ``VmSq`` and ``ThermalLimit[k, m]``: a regular polygon with
  ``N_FACETS`` sides inscribed in the circle ``|S| <= s_max_mva``.

With ``slack=True`` (soft limits: the Total-TSO market extension, and the DSO's
soft-limit fallback in :mod:`gridlayers.dso.operator` and :mod:`gridlayers.dso.redispatch`)
the limits get
non-negative slack variables priced in ``SlackCost`` ($/h):

* ``VmSlackLow[b]``, ``VmSlackHigh[b]`` (pu): ``VmSq[b] >= vm_min^2 - 2 vm_min VmSlackLow[b]``
  and ``VmSq[b] <= vm_max^2 + 2 vm_max VmSlackHigh[b]``, i.e. the band widened by the
  slack in pu to first order (exactly ``s -+ s^2 / (2 vm) + ...``: 5e-5 pu off at
  ``s = 0.01`` pu, 3e-4 pu at 0.024 pu);
* ``ThermalSlack[k]`` (MVA): the polygon's radius ``s_max_mva`` grows by the slack;
* ``SlackCost = sum_b slack_penalty_vm_usd_per_pu_h[b] (VmSlackLow[b] + VmSlackHigh[b])
  + slack_penalty_thermal_usd_per_mvah * sum_k ThermalSlack[k]`` (mutable Params, see
  :func:`set_slack_penalty`).

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from gridlayers.dso.linear_system import LossCoefficients, OperatingPoint
from gridlayers.highs_params import store_floats

if TYPE_CHECKING:
    from gridlayers.dso.lindistflow import LinDistFlowFeeder, LinDistFlowResult

#: Number of sides of the polygon approximating a branch's apparent-power circle.
N_FACETS = 12
#: Loss-model coefficients with a smaller effect (pu) than this are written as zero.
TINY_COEF = 1e-9
#: Floor of the voltage sensitivity used to price voltage slack (pu per MW): buses stiffer
#: than this (the substation busbar) are priced as if they had it, which caps the voltage
#: penalty at ``penalty_usd_per_mwh / MIN_VM_SENSITIVITY_PU_PER_MW`` ($/h per pu).
MIN_VM_SENSITIVITY_PU_PER_MW = 1e-4
#: Voltage slack below this (pu) and thermal slack below this (MVA) count as unused.
SLACK_TOL_PU = 1e-7
SLACK_TOL_MVA = 1e-6


def _edge_limits_mva(feeder: LinDistFlowFeeder) -> dict[int, float]:
    """Return the apparent-power limit (MVA) of every rated branch, keyed by child bus."""
    limits: dict[int, float] = {}
    scale = feeder.max_loading_percent / 100.0
    for _, _, edge, share, rating in feeder.network.elements:
        if math.isfinite(rating) and share > 0:
            bus = feeder.buses[edge]
            limits[bus] = min(limits.get(bus, math.inf), rating * scale / share)
    return limits


def _injection_terms(feeder: LinDistFlowFeeder, terms: Mapping[int, Any]) -> dict[int, list[Any]]:
    """Group caller expressions (by any energised pandapower bus) by model bus."""
    grouped: dict[int, list[Any]] = {b: [] for b in feeder.buses}
    for bus, expr in terms.items():
        if int(bus) not in feeder.bus_node_bus:
            msg = f"bus {bus} is not an energised bus of this feeder"
            raise KeyError(msg)
        grouped[feeder.bus_node_bus[int(bus)]].append(expr)
    return grouped


def _add_components(feeder: LinDistFlowFeeder, block: Any) -> None:
    """Add sets, mutable Params and Vars."""
    rn = feeder.network
    block.BUSES = pyo.Set(
        initialize=feeder.buses, ordered=True, doc="model buses (pandapower index)"
    )
    block.BRANCHES = pyo.Set(
        initialize=feeder.buses[1:],
        ordered=True,
        doc="branch feeding each non-root bus (child bus)",
    )
    limits = _edge_limits_mva(feeder)
    block.RATED_BRANCHES = pyo.Set(initialize=sorted(limits), doc="branches with a thermal rating")
    block.FACETS = pyo.RangeSet(0, N_FACETS - 1, doc="sides of the thermal-limit polygon")
    mut = {"mutable": True, "within": pyo.Reals}
    block.p_fixed_mw = pyo.Param(
        block.BUSES, initialize=0.0, doc="uncontrolled net injection (MW)", **mut
    )
    block.q_fixed_mvar = pyo.Param(
        block.BUSES, initialize=0.0, doc="uncontrolled net injection (Mvar)", **mut
    )
    block.vm_root_pu = pyo.Param(initialize=rn.vm_root_pu, doc="root voltage set-point (pu)", **mut)
    block.vm_min_pu = pyo.Param(
        block.BUSES, initialize=feeder.vm_min_pu, doc="min voltage (pu)", **mut
    )
    block.vm_max_pu = pyo.Param(
        block.BUSES, initialize=feeder.vm_max_pu, doc="max voltage (pu)", **mut
    )
    block.s_max_mva = pyo.Param(
        block.RATED_BRANCHES, initialize=limits, doc="branch limit (MVA)", **mut
    )
    for name, doc in (
        ("loss_coef_p_per_mw", "d CurrentSq / d BranchP (pu per MW)"),
        ("loss_coef_q_per_mvar", "d CurrentSq / d BranchQ (pu per Mvar)"),
        ("loss_coef_w", "d CurrentSq / d sending-end squared voltage (pu per pu^2)"),
        ("loss_const", "constant term of CurrentSq (pu)"),
    ):
        setattr(block, name, pyo.Param(block.BRANCHES, initialize=0.0, doc=doc, **mut))
    block.VmSq = pyo.Var(
        block.BUSES, within=pyo.NonNegativeReals, initialize=1.0, doc="squared voltage (pu^2)"
    )
    block.BranchP = pyo.Var(block.BRANCHES, doc="series active flow, parent side (MW)")
    block.BranchQ = pyo.Var(block.BRANCHES, doc="series reactive flow, parent side (Mvar)")
    block.InterfaceP = pyo.Var(doc="net export to the transmission bus (MW, injection positive)")
    block.InterfaceQ = pyo.Var(doc="net export to the transmission bus (Mvar, injection positive)")


def _add_physics(feeder: LinDistFlowFeeder, block: Any) -> None:
    """Add the squared-current expression, voltage drops and nodal balances."""
    rn, base = feeder.network, feeder.network.base_mva
    node = feeder.node_index
    parent_bus = {b: feeder.buses[rn.parent[node[b]]] for b in feeder.buses[1:]}
    children: dict[int, list[int]] = {b: [] for b in feeder.buses}
    for b, p in parent_bus.items():
        children[p].append(b)

    def w_a(blk: Any, k: int) -> Any:
        return blk.VmSq[parent_bus[k]] / rn.tap_p[node[k]] ** 2

    def current_sq(blk: Any, k: int) -> Any:
        return (
            blk.loss_coef_p_per_mw[k] * blk.BranchP[k]
            + blk.loss_coef_q_per_mvar[k] * blk.BranchQ[k]
            + blk.loss_coef_w[k] * w_a(blk, k)
            + blk.loss_const[k]
        )

    block.CurrentSq = pyo.Expression(
        block.BRANCHES, rule=current_sq, doc="squared series current (pu)"
    )

    def drop(blk: Any, k: int) -> Any:
        i = node[k]
        zz = rn.r_pu[i] ** 2 + rn.x_pu[i] ** 2
        return (
            blk.VmSq[k] / rn.tap_c[i] ** 2
            == w_a(blk, k)
            - 2.0 * (rn.r_pu[i] * blk.BranchP[k] + rn.x_pu[i] * blk.BranchQ[k]) / base
            + zz * blk.CurrentSq[k]
        )

    block.VoltageDrop = pyo.Constraint(block.BRANCHES, rule=drop, doc="squared-voltage drop (pu^2)")
    block.RootVoltage = pyo.Constraint(
        expr=block.VmSq[feeder.root_bus] == block.vm_root_pu**2, doc="pu^2"
    )

    block.PBalance = pyo.Constraint(
        block.BUSES,
        rule=lambda blk, b: _balance(feeder, blk, b, children[b], active=True),
        doc="active power balance (MW); dual = DLMP",
    )
    block.QBalance = pyo.Constraint(
        block.BUSES,
        rule=lambda blk, b: _balance(feeder, blk, b, children[b], active=False),
        doc="reactive power balance (Mvar)",
    )


def _balance(
    feeder: LinDistFlowFeeder, blk: Any, b: int, children: list[int], *, active: bool
) -> Any:
    """Return the nodal balance row of bus ``b`` (MW if ``active`` else Mvar)."""
    rn, base = feeder.network, feeder.network.base_mva
    node = feeder.node_index
    i = node[b]
    if active:
        flow, fixed, ctrl = blk.BranchP, blk.p_fixed_mw, blk.ControllableP
        sh_a, sh_b, shunt, imp = rn.g_a_pu, rn.g_b_pu, rn.gs_pu[i], rn.r_pu[i]
    else:
        flow, fixed, ctrl = blk.BranchQ, blk.q_fixed_mvar, blk.ControllableQ
        sh_a, sh_b, shunt, imp = -rn.b_a_pu, -rn.b_b_pu, -rn.bs_pu[i], rn.x_pu[i]
    expr = fixed[b] + ctrl[b] - base * shunt * blk.VmSq[b]
    for c in children:
        expr -= flow[c] + base * sh_a[node[c]] * blk.VmSq[b] / rn.tap_p[node[c]] ** 2
    if i == 0:
        return expr - (blk.InterfaceP if active else blk.InterfaceQ) == 0
    inflow = flow[b] - base * imp * blk.CurrentSq[b]
    return expr + inflow - base * sh_b[i] * blk.VmSq[b] / rn.tap_c[i] ** 2 == 0


def voltage_sensitivity_pu_per_mw(feeder: LinDistFlowFeeder) -> dict[int, float]:
    """Return each model bus's driving-point voltage sensitivity ``dV_b/dP_b`` (pu per MW).

    Notes
    -----
    In LinDistFlow one MW injected at ``b`` raises ``w_b = V_b^2`` by ``2 R_b / S_base``
    with ``R_b`` the series resistance (pu) of the path from the root to ``b``, so
    ``dV_b/dP_b ~ R_b / S_base`` (taps, shunts and losses ignored; within 7 % of a
    numerical perturbation on the bundled SimBench feeders). The root gets 0.

    """
    rn = feeder.network
    r_path = np.zeros(rn.n_nodes)
    for c in range(1, rn.n_nodes):  # breadth-first order: a parent precedes its children
        r_path[c] = r_path[rn.parent[c]] + rn.r_pu[c]
    return {b: float(r_path[i] / rn.base_mva) for i, b in enumerate(feeder.buses)}


def _add_limits(feeder: LinDistFlowFeeder, block: Any, enforce: bool, slack: bool) -> None:
    """Add voltage and thermal limits (deactivated unless ``enforce``), soft if ``slack``."""
    inner = feeder.buses[1:]
    if slack:
        nonneg = {"within": pyo.NonNegativeReals, "initialize": 0.0}
        block.VmSlackLow = pyo.Var(inner, doc="voltage below vm_min_pu (pu)", **nonneg)
        block.VmSlackHigh = pyo.Var(inner, doc="voltage above vm_max_pu (pu)", **nonneg)
        block.ThermalSlack = pyo.Var(
            block.RATED_BRANCHES, doc="apparent power above s_max_mva (MVA)", **nonneg
        )
        mut = {"mutable": True, "within": pyo.NonNegativeReals, "initialize": 0.0}
        block.slack_penalty_vm_usd_per_pu_h = pyo.Param(
            inner, doc="price of voltage slack ($/h per pu)", **mut
        )
        block.slack_penalty_thermal_usd_per_mvah = pyo.Param(
            doc="price of thermal slack ($/MVAh)", **mut
        )
        block.VM_SLACK_BUSES = pyo.Set(initialize=inner, ordered=True, doc="non-root buses")
        block.SlackCost = pyo.Expression(
            expr=sum(
                block.slack_penalty_vm_usd_per_pu_h[b]
                * (block.VmSlackLow[b] + block.VmSlackHigh[b])
                for b in inner
            )
            + block.slack_penalty_thermal_usd_per_mvah
            * sum(block.ThermalSlack[k] for k in block.RATED_BRANCHES),
            doc="penalty of the limit slack ($/h)",
        )

        def vm_min(blk: Any, b: int) -> Any:
            low = blk.vm_min_pu[b]
            return blk.VmSq[b] >= low**2 - 2.0 * low * blk.VmSlackLow[b]

        def vm_max(blk: Any, b: int) -> Any:
            high = blk.vm_max_pu[b]
            return blk.VmSq[b] <= high**2 + 2.0 * high * blk.VmSlackHigh[b]

    else:

        def vm_min(blk: Any, b: int) -> Any:
            return blk.VmSq[b] >= blk.vm_min_pu[b] ** 2

        def vm_max(blk: Any, b: int) -> Any:
            return blk.VmSq[b] <= blk.vm_max_pu[b] ** 2

    block.VmMin = pyo.Constraint(inner, rule=vm_min, doc="pu^2")
    block.VmMax = pyo.Constraint(inner, rule=vm_max, doc="pu^2")
    cos_half = math.cos(math.pi / N_FACETS)

    def facet(blk: Any, k: int, m: int) -> Any:
        theta = (2 * m + 1) * math.pi / N_FACETS
        limit = blk.s_max_mva[k] + blk.ThermalSlack[k] if slack else blk.s_max_mva[k]
        return (
            math.cos(theta) * blk.BranchP[k] + math.sin(theta) * blk.BranchQ[k] <= cos_half * limit
        )

    block.ThermalLimit = pyo.Constraint(
        block.RATED_BRANCHES, block.FACETS, rule=facet, doc="MVA polygon"
    )
    if not enforce:
        for con in (block.VmMin, block.VmMax, block.ThermalLimit):
            con.deactivate()


def add_feeder_to_block(
    feeder: LinDistFlowFeeder,
    block: Any,
    *,
    controllable_p_mw: Mapping[int, Any],
    controllable_q_mvar: Mapping[int, Any],
    enforce_limits: bool,
    slack: bool = False,
) -> None:
    """Build the feeder model on ``block`` (once); inputs are mutable Params.

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The feeder.
    block : pyomo Block or ConcreteModel
        Receives the components listed in the module notes.
    controllable_p_mw, controllable_q_mvar : mapping of int to pyomo expression
        Extra injections (MW, Mvar, injection positive) per pandapower bus.
    enforce_limits : bool
        If False, voltage and thermal limits are built but deactivated.
    slack : bool
        Soft limits: add the slack variables and ``SlackCost`` ($/h) of the module notes
        (penalties 0 until :func:`set_slack_penalty`). The caller adds ``SlackCost`` to
        its objective.

    """
    _add_components(feeder, block)
    ctrl_p = _injection_terms(feeder, controllable_p_mw)
    ctrl_q = _injection_terms(feeder, controllable_q_mvar)
    block.ControllableP = pyo.Expression(
        block.BUSES, rule=lambda blk, b: sum(ctrl_p[b]), doc="controllable injection (MW)"
    )
    block.ControllableQ = pyo.Expression(
        block.BUSES, rule=lambda blk, b: sum(ctrl_q[b]), doc="controllable injection (Mvar)"
    )
    _add_physics(feeder, block)
    _add_limits(feeder, block, enforce_limits, slack)
    set_loss_coefficients(feeder, block, feeder.loss_coefficients(feeder.base_point))


def set_slack_penalty(feeder: LinDistFlowFeeder, block: Any, penalty_usd_per_mwh: float) -> None:
    """Price a soft-limit block's slack in MW-equivalent terms (mutable Params, in place).

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The feeder of ``block``.
    block : pyomo Block
        Built by :func:`add_feeder_to_block` with ``slack=True``.
    penalty_usd_per_mwh : float
        Price of one MW-equivalent of slack for one hour ($/MWh).

    Notes
    -----
    Thermal slack costs ``penalty_usd_per_mwh`` per MVA (one MVA over the limit is about
    one MW of flow the market failed to relieve). Voltage slack at bus ``b`` costs
    ``penalty_usd_per_mwh / max(s_b, MIN_VM_SENSITIVITY_PU_PER_MW)`` per pu, with ``s_b``
    the bus's voltage sensitivity (:func:`voltage_sensitivity_pu_per_mw`): as much as
    injecting or withdrawing the MW at ``b`` that would move its voltage by that much.

    """
    sens = voltage_sensitivity_pu_per_mw(feeder)
    store_floats(
        block.slack_penalty_vm_usd_per_pu_h,
        {
            b: float(penalty_usd_per_mwh) / max(sens[b], MIN_VM_SENSITIVITY_PU_PER_MW)
            for b in block.VM_SLACK_BUSES
        },
    )
    block.slack_penalty_thermal_usd_per_mvah.set_value(float(penalty_usd_per_mwh))


def no_slack() -> dict[str, float | int]:
    """Return the :func:`slack_report` of a model without slack (every entry 0)."""
    return {
        "voltage_pu": 0.0,
        "buses": 0,
        "thermal_mva": 0.0,
        "branches": 0,
        "mw_equivalent": 0.0,
        "cost_usd_per_h": 0.0,
    }


def slack_report(block: Any) -> dict[str, float | int]:
    """Return how much limit slack a solved soft-limit block uses.

    Parameters
    ----------
    block : pyomo Block
        A solved feeder block built with ``slack=True``, priced by :func:`set_slack_penalty`.

    Returns
    -------
    dict
        ``voltage_pu``: largest voltage slack of a bus (pu, outside ``[vm_min_pu,
        vm_max_pu]``, to first order); ``buses``: buses with voltage slack;
        ``thermal_mva``: total thermal slack (MVA); ``branches``: branches with thermal
        slack; ``mw_equivalent``: voltage slack converted to MW at each bus's sensitivity
        plus thermal slack (MW, the quantity priced at the penalty per MWh);
        ``cost_usd_per_h``: the penalty ``SlackCost`` ($/h). Slack below ``SLACK_TOL_PU`` /
        ``SLACK_TOL_MVA`` counts as 0.

    """
    buses = list(block.VM_SLACK_BUSES)
    vm = np.array(
        [max(pyo.value(block.VmSlackLow[b]), pyo.value(block.VmSlackHigh[b])) for b in buses]
    )
    vm = np.where(vm > SLACK_TOL_PU, vm, 0.0)
    th = np.array([pyo.value(block.ThermalSlack[k]) for k in block.RATED_BRANCHES])
    th = np.where(th > SLACK_TOL_MVA, th, 0.0)
    vm_price = np.array([pyo.value(block.slack_penalty_vm_usd_per_pu_h[b]) for b in buses])
    th_price = float(pyo.value(block.slack_penalty_thermal_usd_per_mvah))
    return {
        "voltage_pu": float(vm.max(initial=0.0)),
        "buses": int(np.count_nonzero(vm)),
        "thermal_mva": float(th.sum()),
        "branches": int(np.count_nonzero(th)),
        "mw_equivalent": float(vm @ vm_price / th_price + th.sum()),
        "cost_usd_per_h": float(vm @ vm_price + th_price * th.sum()),
    }


def slack_variables(block: Any) -> list[Any]:
    """Return every slack variable of a soft-limit feeder block (voltage low, high, thermal)."""
    return [
        *block.VmSlackLow.values(),
        *block.VmSlackHigh.values(),
        *block.ThermalSlack.values(),
    ]


def _per_model_bus(
    feeder: LinDistFlowFeeder, values: pd.Series | Mapping[int, float]
) -> dict[int, float]:
    """Sum values by model bus (missing buses are 0)."""
    out = dict.fromkeys(feeder.buses, 0.0)
    for bus, value in values.items():
        out[feeder.bus_node_bus[int(bus)]] += float(value)
    return out


def set_fixed_injections(
    feeder: LinDistFlowFeeder, block: Any, p_mw: pd.Series, q_mvar: pd.Series
) -> tuple[dict[int, float], dict[int, float]]:
    """Write uncontrolled net injections (MW, Mvar, injection positive, by bus) in place.

    Returns the values written: ``p_fixed_mw`` and ``q_fixed_mvar`` by model bus (MW,
    Mvar; ``feeder.buses`` order).
    """
    p, q = _per_model_bus(feeder, p_mw), _per_model_bus(feeder, q_mvar)
    store_floats(block.p_fixed_mw, p)
    store_floats(block.q_fixed_mvar, q)
    return p, q


def set_loss_coefficients(feeder: LinDistFlowFeeder, block: Any, coef: LossCoefficients) -> None:
    """Write an affine loss model into the block's mutable Params (in place).

    Coefficients whose effect on a balance row (``max(r, x) * |a|``, pu) is below
    ``TINY_COEF`` are written as 0, below the LP solver's own coefficient tolerance.
    """
    rn, base = feeder.network, feeder.network.base_mva
    scale = np.maximum(rn.r_pu, rn.x_pu)

    def clean(a: np.ndarray) -> np.ndarray:
        return np.where(scale * np.abs(a) < TINY_COEF, 0.0, a)

    ap, aq, aw = clean(coef.ap), clean(coef.aq), clean(coef.aw)
    names = feeder.buses
    edges = range(1, len(names))
    store_floats(block.loss_coef_p_per_mw, {names[e]: float(ap[e] / base) for e in edges})
    store_floats(block.loss_coef_q_per_mvar, {names[e]: float(aq[e] / base) for e in edges})
    store_floats(block.loss_coef_w, {names[e]: float(aw[e]) for e in edges})
    store_floats(block.loss_const, {names[e]: float(coef.a0[e]) for e in edges})


def extract_state(feeder: LinDistFlowFeeder, block: Any) -> LinDistFlowResult:
    """Read a solved block into a :class:`~gridlayers.dso.lindistflow.LinDistFlowResult`."""
    base = feeder.network.base_mva
    w = np.array([pyo.value(block.VmSq[b]) for b in feeder.buses])
    p = np.concatenate(([0.0], [pyo.value(block.BranchP[b]) / base for b in feeder.buses[1:]]))
    q = np.concatenate(([0.0], [pyo.value(block.BranchQ[b]) / base for b in feeder.buses[1:]]))
    p_inj = [pyo.value(block.p_fixed_mw[b] + block.ControllableP[b]) for b in feeder.buses]
    q_inj = [pyo.value(block.q_fixed_mvar[b] + block.ControllableQ[b]) for b in feeder.buses]
    return feeder._result(np.array(p_inj) / base, np.array(q_inj) / base, OperatingPoint(w, p, q))


def dlmp_usd_per_mwh(block: Any, duals: Mapping[Any, float] | None = None) -> pd.Series:
    """Return the DLMP ($/MWh) of every model bus from the duals of ``PBalance``.

    Parameters
    ----------
    block : pyomo Block
        A solved block built by :func:`add_feeder_to_block` whose objective is in $/h.
    duals : mapping, optional
        Constraint -> dual value; defaults to the model's ``dual`` Suffix.

    Returns
    -------
    pandas.Series
        DLMP per model bus, the marginal cost of one more MW withdrawn there.

    Notes
    -----
    ``PBalance[b]`` reads ``injection - outflow - ... = 0``; one more MW of load at ``b``
    moves its right-hand side to +1, so for a minimisation the DLMP is the dual itself
    (sign flipped for a maximisation). At the root it equals the interface price.

    """
    model = block.model()
    source = duals if duals is not None else model.dual
    objective = next(model.component_data_objects(pyo.Objective, active=True))
    sign = 1.0 if objective.sense == pyo.minimize else -1.0
    return pd.Series(
        {b: sign * source[block.PBalance[b]] for b in block.BUSES}, name="dlmp_usd_per_mwh"
    )
