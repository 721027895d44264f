"""The DSO's soft-limit fallback (voltage/thermal slack when hard limits are infeasible).

Rural SimBench feeder with the default planning band [0.9525, 1.0475] pu (0.0025 pu
margin), a curtailable PV (1 $/MWh) at the weakest bus, a battery at the next weakest bus
and one at a stiff bus (20/60 $/MWh). ``infeasible``: 5 MW of *uncontrolled* PV at the
weakest bus, so no dispatch of the DER keeps the band (hard limits: infeasible).
``feasible``: no uncontrolled PV, an 8 MW device PV (the voltage limit binds, feasible).
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from conftest import rural_linear_feeder
from gridlayers.der.curves import merge_bid_curves, split_award
from gridlayers.domain import BidBlock, BidCurve
from gridlayers.dso import DSOOperator, InfeasibleDSOError, persistent_lp
from gridlayers.dso.opf import voltage_sensitivity_pu_per_mw
from gridlayers.dso.persistent_lp import PersistentLP
from gridlayers.dso.redispatch import block_fills

UNCONTROLLED_PV_MW = 5.0
LMP = 50.0
HIGHS_INF = 2_147_483_647  # HiGHS's default simplex_iteration_limit
SLACK_KEYS = {"voltage_pu", "buses", "thermal_mva", "branches", "mw_equivalent", "cost_usd_per_h"}

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def case() -> dict:
    net, feeder, p, q = rural_linear_feeder()
    vm = feeder.solve_power_flow(p, q).vm_pu.sort_values()
    weak, weak2 = int(vm.index[0]), int(vm.index[1])
    sens = voltage_sensitivity_pu_per_mw(feeder)
    stiff = min((b for b in feeder.buses[1:]), key=lambda b: sens[b] if sens[b] > 1e-3 else 1.0)
    devices = {"pv": weak, "bat_weak": weak2, "bat_stiff": stiff}
    battery = BidCurve(-1.0, (BidBlock(1.0, 20.0), BidBlock(1.0, 60.0)))
    return {
        "net": net,
        "feeder": feeder,
        "devices": devices,
        "q": q,
        "weak": weak,
        "infeasible": (
            p.add(pd.Series({weak: UNCONTROLLED_PV_MW}), fill_value=0.0),
            {"pv": BidCurve(0.0, (BidBlock(3.0, 1.0),)), "bat_weak": battery, "bat_stiff": battery},
        ),
        "feasible": (
            p,
            {"pv": BidCurve(0.0, (BidBlock(8.0, 1.0),)), "bat_weak": battery, "bat_stiff": battery},
        ),
    }


def _ac_vm_max(case: dict, setpoints: dict[str, float], uncontrolled_mw: float) -> float:
    net = copy.deepcopy(case["net"])
    if uncontrolled_mw:
        pp.create_sgen(net, case["weak"], p_mw=uncontrolled_mw, q_mvar=0.0, name="uncontrolled")
    for dev, bus in case["devices"].items():
        pp.create_sgen(net, bus, p_mw=setpoints[dev], q_mvar=0.0, name=dev)
    pp.runpp(net)
    return float(net.res_bus.vm_pu.max())


def _blind_split(case: dict, award_mw: float) -> dict[str, float]:
    """The agent's network-blind split: award minus firm exchange in merit order."""
    p, offers = case["infeasible"]
    firm = float(case["feeder"].solve_power_flow(p, case["q"]).interface_p_mw)
    curves = list(offers.values())
    lo, hi = sum(c.p_min_mw for c in curves), sum(c.p_max_mw for c in curves)
    total = min(max(award_mw - firm, lo), hi)
    return dict(zip(offers, split_award(curves, total), strict=True))


def test_soft_limits_when_uncontrolled_pv_alone_violates_the_band(case: dict) -> None:
    """Catches: no fallback (raises), slack not reported, slack penalty missing from the
    soft dispatch objective (the extra MW would come from the cheap PV at the violated
    bus, AC voltage no better than the blind split), no least-violation caps on the
    virtual resource (its range would be the devices' whole range), slack cost leaking
    into the DER or redispatch cost."""
    p, offers = case["infeasible"]
    hard = DSOOperator(case["feeder"], case["devices"], slack_penalty_usd_per_mwh=None)
    with pytest.raises(InfeasibleDSOError):
        hard.virtual_resource(p, case["q"], offers)
    dso = DSOOperator(case["feeder"], case["devices"])
    vr = dso.virtual_resource(p, case["q"], offers)
    assert set(vr.slack) == SLACK_KEYS
    assert vr.slack["voltage_pu"] > 1e-3  # 0.008 pu above the planning band
    assert vr.slack["buses"] >= 1
    assert vr.slack["cost_usd_per_h"] > 0
    assert "Infeasible" in vr.hard_limit_failure
    assert dso.last_slack == vr.slack
    # least violation: every device at its voltage-lowering end (PV off, batteries charging)
    assert vr.p_min_mw <= vr.p_max_mw < vr.p_min_mw + 1e-3
    assert vr.der_p_min_mw == pytest.approx(-2.0, abs=1e-6)
    assert dso.interface_range(p, case["q"], offers) == pytest.approx((vr.p_min_mw, vr.p_max_mw))
    assert dso.last_slack == pytest.approx(vr.slack)

    for award in (vr.p_min_mw, vr.p_min_mw + 1.0):  # in the range; an award it cannot meet
        dso.virtual_resource(p, case["q"], offers)
        dis = dso.disaggregate(award, LMP)
        assert dis.slack["voltage_pu"] > 1e-3
        assert dis.hard_limit_failure is not None
        # slack is a decision penalty, not a DER cost
        as_offered = sum(offers[d].cost_usd_per_h(v) for d, v in dis.setpoints_mw.items())
        assert dis.cost_usd_per_h == pytest.approx(as_offered, abs=1e-9)
        soft_ac = _ac_vm_max(case, dis.setpoints_mw, UNCONTROLLED_PV_MW)
        blind_ac = _ac_vm_max(case, _blind_split(case, award), UNCONTROLLED_PV_MW)
        assert soft_ac <= blind_ac - 1e-3, (award, soft_ac, blind_ac)
    # the extra MW comes from the battery at the stiff bus, not from the cheap PV
    assert dis.setpoints_mw["pv"] == pytest.approx(0.0, abs=1e-6)
    assert dis.setpoints_mw["bat_stiff"] > 0.0
    hard.set_interval(p, case["q"], offers)
    with pytest.raises(InfeasibleDSOError):
        hard.disaggregate(vr.p_min_mw, LMP)

    # Minimal DSO: the aggregators' merit-order split at the LMP (PV on) is corrected to
    # the least violation at least move cost; the moves' cost excludes the slack
    curves = list(offers.values())
    portfolio = merge_bid_curves(curves)
    total = portfolio.p_min_mw + sum(
        b.quantity_mw for b in portfolio.blocks if b.price_usd_per_mwh < LMP
    )
    proposed = dict(zip(offers, split_award(curves, total), strict=True))
    red = dso.redispatch(proposed, p, case["q"], offers, LMP)
    assert red.slack["voltage_pu"] > 1e-3
    assert red.hard_limit_failure is not None
    assert 0 < red.violations_after < red.violations_predicted
    n_slots = dso.blocks_per_device
    compensation = sum(
        abs(LMP - block.price_usd_per_mwh) * abs(new - old)
        for d, curve in offers.items()
        for block, new, old in zip(
            curve.blocks,
            block_fills(curve, red.setpoints_mw[d], n_slots),
            block_fills(curve, proposed[d], n_slots),
            strict=False,
        )
    )
    assert red.redispatch_cost_usd_per_h == pytest.approx(compensation, abs=1e-6)
    assert _ac_vm_max(case, red.setpoints_mw, UNCONTROLLED_PV_MW) < (
        _ac_vm_max(case, proposed, UNCONTROLLED_PV_MW) - 1e-2
    )
    with pytest.raises(InfeasibleDSOError):
        hard.redispatch(proposed, p, case["q"], offers, LMP)


def _many_devices(case: dict) -> dict:
    """Six PV at 0 $/MWh (many equally cheap splits) and six batteries at seeded buses."""
    buses = sorted(case["feeder"].bus_node_bus)[1:]
    rng = np.random.default_rng(1)
    devices = {f"d{i}": int(rng.choice(buses)) for i in range(12)}
    battery = BidCurve(-0.5, (BidBlock(0.5, 20.0), BidBlock(0.5, 60.0)))
    pv = BidCurve(0.0, (BidBlock(1.0, 0.0),))
    offers = {d: pv if i % 2 == 0 else battery for i, d in enumerate(devices)}
    p = case["feasible"][0]
    p_infeasible = p.add(pd.Series({case["weak"]: UNCONTROLLED_PV_MW}), fill_value=0.0)
    return {**case, "devices": devices, "feasible": (p, offers),
            "infeasible": (p_infeasible, offers)}  # fmt: skip


def _run(dso: DSOOperator, case: dict) -> list:
    """Feasible interval, infeasible one (virtual resource only), another feasible one."""
    out = []
    for name, scale in (("feasible", 1.0), ("infeasible", 1.0), ("feasible", 0.9)):
        p, offers = case[name]
        p = p * scale
        try:
            vr = dso.virtual_resource(p, case["q"], offers)
        except InfeasibleDSOError:
            out.append("infeasible")
            continue
        if name == "infeasible":
            out.append("infeasible")  # the soft DSO's fallback result is tested above
            continue
        out.append((vr.p_min_mw, vr.p_max_mw, vr.curve, vr.method, vr.slack))
        for frac in (0.0, 0.2, 0.5, 0.8, 1.0):
            dis = dso.disaggregate(vr.p_min_mw + frac * (vr.p_max_mw - vr.p_min_mw), 26.0)
            out.append((dis.setpoints_mw, dis.dlmp_usd_per_mwh.tolist(), dis.interface_p_mw))
            out.append((dis.cost_usd_per_h, dis.slack, dis.relinearisations))
        proposed = {d: c.p_max_mw for d, c in offers.items()}
        red = dso.redispatch(proposed, p, case["q"], offers, LMP)
        out.append((red.setpoints_mw, red.redispatch_cost_usd_per_h, red.slack))
        out.append(dso.interface_range(p, case["q"], offers))
    return out


@pytest.mark.parametrize("devices", ["three", "many"])
def test_feasible_intervals_are_bit_for_bit_the_hard_limit_results(
    case: dict, devices: str
) -> None:
    """Catches: the slack not switched off after a fallback (the next interval's range
    would include slack); slack columns (bounded at 0) in the normal model, through the
    model size (such a model picks other optima of degenerate LPs: 0.55 MW set-point
    differences on the congested rural feeder, 0.035 MW with these 12 devices in another
    call sequence; the equality here does not reliably show them)."""
    case = _many_devices(case) if devices == "many" else case
    feeder, devs = case["feeder"], case["devices"]
    hard_dso = DSOOperator(feeder, devs, slack_penalty_usd_per_mwh=None)
    soft_dso = DSOOperator(feeder, devs)
    hard, soft = _run(hard_dso, case), _run(soft_dso, case)
    assert hard.count("infeasible") == 1
    assert soft == hard  # exact equality (well within the 1e-9 asked for)
    # the normal model is the hard-limit model (the slack lives in a second model)
    assert (soft_dso.n_variables, soft_dso.n_constraints) == (
        hard_dso.n_variables,
        hard_dso.n_constraints,
    )
    assert not hasattr(soft_dso.model.feeder, "VmSlackHigh")


def test_a_failed_warm_start_is_solved_again_from_scratch(
    case: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches: no cold restart after HiGHS's warm start fails numerically (the congested
    scenario's rural disaggregation at 12:00 failed with model status kNotset, 'unknown');
    a proven infeasible LP is not retried."""
    p, offers = case["feasible"]
    dso = DSOOperator(case["feeder"], case["devices"], slack_penalty_usd_per_mwh=None)
    vr = dso.virtual_resource(p, case["q"], offers)
    lp: PersistentLP = dso._lp
    expected = dso.disaggregate(vr.p_max_mw, LMP)
    highs = lp.solver._solver_model
    original, calls = persistent_lp.run, []

    def failing_once(solver):  # the first attempt stops after 0 iterations
        calls.append(1)
        highs.setOptionValue("simplex_iteration_limit", 0 if len(calls) == 1 else HIGHS_INF)
        return original(solver)

    monkeypatch.setattr(persistent_lp, "run", failing_once)
    dso.virtual_resource(p * 1.01, case["q"], offers)  # a fresh interval: a real LP
    again = dso.virtual_resource(p, case["q"], offers)
    result = dso.disaggregate(vr.p_max_mw, LMP)
    monkeypatch.undo()
    assert lp.cold_restarts == 1
    assert again.p_max_mw == pytest.approx(vr.p_max_mw, abs=1e-9)
    assert result.setpoints_mw == pytest.approx(expected.setpoints_mw, abs=1e-6)
    # a proven infeasible LP is not solved twice
    p_bad, offers_bad = case["infeasible"]
    with pytest.raises(InfeasibleDSOError, match="Infeasible"):
        dso.virtual_resource(p_bad, case["q"], offers_bad)
    assert lp.cold_restarts == 1


def test_a_failed_end_sample_of_the_curve_is_moved_inward(
    case: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HiGHS may stop without a solution with the export pinned at its maximum.

    Measured on the congested rural feeder at 12:45 (status "Unknown", 1.4e-3 MW primal
    infeasibility), which sent Total DSO into its network-blind last resort (1.071 pu on
    AC). The end sample is now moved inward and solved again. Catches removing the retry
    (the virtual resource then raises and the agent falls back).
    """
    p, offers = case["feasible"]
    dso = DSOOperator(case["feeder"], case["devices"], slack_penalty_usd_per_mwh=None)
    reference = dso.virtual_resource(p, case["q"], offers)
    assert reference.method == "sampled"  # the voltage limit binds: the curve is sampled
    original, failed = DSOOperator._solve, []

    def fail_at_the_top(self, objective):
        low, high = self.model.feeder.InterfaceP.bounds
        pinned_at_top = low is not None and low == high and low >= reference.p_max_mw - 1e-9
        if objective is self.model.DispatchCost and pinned_at_top:
            failed.append(low)
            raise InfeasibleDSOError("DSO optimisation failed: unknown")
        return original(self, objective)

    monkeypatch.setattr(DSOOperator, "_solve", fail_at_the_top)
    vr = dso.virtual_resource(p, case["q"], offers)
    assert failed == [pytest.approx(reference.p_max_mw, abs=1e-9)]
    assert vr.p_max_mw < reference.p_max_mw
    assert vr.p_max_mw == pytest.approx(reference.p_max_mw, abs=1e-6 * reference.p_max_mw)
    assert vr.curve.p_max_mw == vr.p_max_mw
