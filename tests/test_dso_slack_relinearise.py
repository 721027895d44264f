"""Total-TSO feeder-limit slack; re-linearisation at the solution; the DSO's voltage margin."""

from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pydantic
import pyomo.environ as pyo
import pytest

from conftest import rural_overvoltage_case
from gridlayers.agents.dso_setup import linear_feeder
from gridlayers.der.curves import merge_bid_curves, split_award
from gridlayers.domain import BidBlock, BidCurve
from gridlayers.dso import DSOOperator, LinDistFlowFeeder
from gridlayers.dso.extension import FeederMarketExtension
from gridlayers.dso.opf import voltage_sensitivity_pu_per_mw
from gridlayers.grid.networks import simbench_feeder
from gridlayers.market import ClearingError, TransmissionMarket
from gridlayers.scenarios.schema import LimitsConfig

RURAL = "1-MV-rural--0-sw"
INTERFACE_BUS = 4  # case9 load bus
PENALTY = 5000.0

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def rural() -> dict:
    """Rural study case without its generators; the weakest bus and a stiff bus."""
    net, _ = simbench_feeder(RURAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feeder = LinDistFlowFeeder(net)
    p, q = feeder.injections_from_net(net)
    load_p, load_q = p.clip(upper=0.0), q  # no non-DER generation
    vm = feeder.solve_power_flow(load_p, load_q).vm_pu
    weak = int(vm.idxmin())
    sens = voltage_sensitivity_pu_per_mw(feeder)
    stiff = min((b for b in feeder.buses[1:]), key=lambda b: sens[b] if sens[b] > 1e-3 else 1.0)
    return {"net": net, "feeder": feeder, "p": load_p, "q": load_q, "weak": weak, "stiff": stiff}


def _clear(case: dict, scale: float, offers: dict, devices: dict, penalty: float | None):
    ext = FeederMarketExtension(
        case["feeder"], devices, INTERFACE_BUS, name="rural", slack_penalty_usd_per_mwh=penalty
    )
    # piecewise-linear generator costs: an LP (HiGHS's QP solver is fragile with feeders
    # embedded, see docs/dso.md, Limitations)
    market = TransmissionMarket(pn.case9(), extensions=[ext], cost_segments=10)
    ext.set_interval(case["p"] * scale, case["q"] * scale, offers)
    return market, ext


def test_voltage_sensitivity_matches_perturbation(rural: dict) -> None:
    feeder, weak = rural["feeder"], rural["weak"]
    sens = voltage_sensitivity_pu_per_mw(feeder)
    base = feeder.solve_power_flow(rural["p"], rural["q"]).vm_pu[weak]
    bumped = rural["p"].add(pd.Series({weak: 0.1}), fill_value=0.0)
    numeric = (feeder.solve_power_flow(bumped, rural["q"]).vm_pu[weak] - base) / 0.1
    assert sens[weak] == pytest.approx(numeric, rel=0.1)
    assert sens[feeder.root_bus] == 0.0


def test_slack_clears_a_feeder_its_load_alone_violates(rural: dict) -> None:
    """Loads x2: the weakest bus is at 0.916 pu whatever the DER do (hard limits: infeasible)."""
    devices = {"pv_far": rural["weak"], "bat_near": rural["stiff"]}
    offers = {
        "pv_far": BidCurve(0.0, (BidBlock(0.5, 5.0),)),
        "bat_near": BidCurve(-1.0, (BidBlock(1.0, 20.0), BidBlock(1.0, 60.0))),
    }
    market, _ = _clear(rural, 2.0, offers, devices, None)
    with pytest.raises(ClearingError):
        market.clear()
    market, ext = _clear(rural, 2.0, offers, devices, PENALTY)
    res = market.clear()
    used = ext.slack_used()
    assert used["voltage_pu"] > 0.01
    assert used["buses"] >= 1
    assert used["thermal_mva"] == 0.0
    assert used["branches"] == 0
    # every DER that lifts the weak bus is used before paying for slack
    assert ext.setpoints_mw()["pv_far"] == pytest.approx(0.5, abs=1e-6)
    # the slack is just what the linear voltage needs: VmSq = vm_min^2 - 2 vm_min s, i.e.
    # min vm = vm_min - s to first order (here s = 0.024 pu, second-order term 3e-4 pu)
    fb = ext.block.feeder
    vm_min = min(np.sqrt(pyo.value(fb.VmSq[b])) for b in fb.VM_SLACK_BUSES)
    assert vm_min == pytest.approx(np.sqrt(0.95**2 - 1.9 * used["voltage_pu"]), abs=1e-9)
    assert vm_min == pytest.approx(0.95 - used["voltage_pu"], abs=5e-4)
    # the objective holds exactly the penalty: 5000 $/MWh per MW-equivalent, where a bus's
    # voltage slack s (pu) is s / dV_b/dP_b MW
    sens = voltage_sensitivity_pu_per_mw(rural["feeder"])
    expected = sum(
        PENALTY / sens[b] * (pyo.value(fb.VmSlackLow[b]) + pyo.value(fb.VmSlackHigh[b]))
        for b in fb.VM_SLACK_BUSES
    )
    assert pyo.value(fb.SlackCost) == pytest.approx(expected, rel=1e-9)
    assert used["cost_usd_per_h"] == pytest.approx(expected, rel=1e-6)
    assert used["mw_equivalent"] == pytest.approx(expected / PENALTY, rel=1e-6)
    objective_term = pyo.value(market.model.extension_cost) - ext.cost_usd_per_h()
    assert objective_term == pytest.approx(expected, rel=1e-6)
    assert res.cost_usd_per_h > expected
    # a dearer slack: same slack (nothing else can help), twice the penalty (in place)
    ext.set_slack_penalty(2 * PENALTY)
    market.clear()
    assert ext.slack_used()["voltage_pu"] == pytest.approx(used["voltage_pu"], rel=1e-6)
    assert ext.slack_used()["cost_usd_per_h"] == pytest.approx(2 * expected, rel=1e-6)


def test_thermal_slack_in_mva(rural: dict) -> None:
    """Loads x3: the first line is loaded to 130 %; its polygon radius grows by the slack."""
    devices = {"pv_far": rural["weak"]}
    offers = {"pv_far": BidCurve(0.0, (BidBlock(0.5, 5.0),))}
    market, ext = _clear(rural, 3.0, offers, devices, PENALTY)
    market.clear()
    used = ext.slack_used()
    assert used["thermal_mva"] > 0.5
    assert used["branches"] >= 1
    fb = ext.block.feeder
    over = [
        np.hypot(pyo.value(fb.BranchP[k]), pyo.value(fb.BranchQ[k])) - pyo.value(fb.s_max_mva[k])
        for k in fb.RATED_BRANCHES
    ]
    # the slack is the flow above the rating, up to the 12-gon's 3.4 % between its corners
    assert used["thermal_mva"] >= sum(max(o, 0.0) for o in over) - 1e-6
    assert used["thermal_mva"] <= 1.04 * sum(max(o, 0.0) for o in over) + 0.04 * sum(
        pyo.value(fb.s_max_mva[k]) for k, o in zip(fb.RATED_BRANCHES, over, strict=True) if o > 0
    )
    assert used["mw_equivalent"] > used["thermal_mva"]  # plus the voltage slack


def test_slack_unused_when_der_can_fix_the_violation(rural: dict) -> None:
    """Loads x1.55 (weakest bus 0.943 pu): a battery at that bus fixes it at 60 $/MWh."""
    devices = {"bat_far": rural["weak"], "bat_near": rural["stiff"]}
    battery = BidCurve(-1.0, (BidBlock(1.0, 20.0), BidBlock(1.0, 60.0)))
    offers = dict.fromkeys(devices, battery)
    results = {}
    for penalty in (None, PENALTY):
        market, ext = _clear(rural, 1.55, offers, devices, penalty)
        res = market.clear()
        results[penalty] = (res.cost_usd_per_h, ext.setpoints_mw(), ext.slack_used())
    (hard, set_hard, _), (soft, set_soft, used) = results[None], results[PENALTY]
    assert set_hard["bat_far"] > 0.0  # the battery discharges at the weak bus
    assert soft == pytest.approx(hard, rel=1e-9)
    assert max(abs(set_soft[d] - set_hard[d]) for d in devices) < 1e-6
    assert used == {
        "voltage_pu": 0.0,
        "buses": 0,
        "thermal_mva": 0.0,
        "branches": 0,
        "mw_equivalent": 0.0,
        "cost_usd_per_h": 0.0,
    }


def test_uncongested_feeder_costs_the_same_with_slack(rural: dict) -> None:
    devices = {"pv_far": rural["weak"], "bat_near": rural["stiff"]}
    offers = {
        "pv_far": BidCurve(0.0, (BidBlock(0.5, 5.0),)),
        "bat_near": BidCurve(-1.0, (BidBlock(1.0, 20.0), BidBlock(1.0, 60.0))),
    }
    costs = []
    for penalty in (None, PENALTY):
        market, ext = _clear(rural, 1.0, offers, devices, penalty)
        costs.append(market.clear().cost_usd_per_h)
        assert ext.slack_used()["voltage_pu"] == 0.0
        assert ext.slack_used()["cost_usd_per_h"] == 0.0
    assert costs[1] == pytest.approx(costs[0], rel=1e-12)


def test_slack_penalty_must_be_positive(rural: dict) -> None:
    with pytest.raises(ValueError, match="slack_penalty"):
        FeederMarketExtension(rural["feeder"], {}, INTERFACE_BUS, slack_penalty_usd_per_mwh=0.0)


# ------------------------------------------------------------ re-linearisation
@pytest.fixture(scope="module")
def overvoltage() -> dict:
    """Rural study case with an 8 MW PV at its weakest bus (voltage limit binds)."""
    return rural_overvoltage_case()


def _ac_vm_max(case: dict, setpoints: dict[str, float]) -> float:
    net = copy.deepcopy(case["net"])
    for dev, bus in case["devices"].items():
        pp.create_sgen(net, bus, p_mw=setpoints[dev], q_mvar=0.0, name=dev)
    pp.runpp(net)
    return float(net.res_bus.vm_pu.max())


def test_total_tso_relinearise_at_solution(overvoltage: dict) -> None:
    case = overvoltage
    ext = FeederMarketExtension(case["feeder"], case["devices"], INTERFACE_BUS, name="ov")
    market = TransmissionMarket(pn.case9(), extensions=[ext])
    ext.set_interval(case["p"], case["q"], case["offers"])
    market.clear()
    first = ext.setpoints_mw()
    change = ext.relinearise_at_solution()
    assert 1e-6 < change < 5e-3  # the midpoint linearisation's error at the cleared point
    market.clear()
    assert ext.relinearise_at_solution() < 1e-5  # now exact at its own solution
    market.clear()
    second = ext.setpoints_mw()
    vmax = case["feeder"].vm_max_pu
    assert abs(_ac_vm_max(case, second) - vmax) < 1e-5  # the binding limit holds on AC
    assert abs(_ac_vm_max(case, first) - vmax) > abs(_ac_vm_max(case, second) - vmax)
    assert ext.slack_used()["voltage_pu"] == 0.0
    # the next interval starts again from the midpoint point (in-place == fresh)
    ext.set_interval(case["p"], case["q"], case["offers"])
    market.clear()
    assert max(abs(ext.setpoints_mw()[d] - first[d]) for d in first) < 1e-6


def test_redispatch_checks_the_proposed_point(overvoltage: dict) -> None:
    case, lam = overvoltage, 50.0
    offers = case["offers"]
    portfolio = merge_bid_curves(list(offers.values()))
    award = portfolio.p_min_mw + sum(
        b.quantity_mw for b in portfolio.blocks if b.price_usd_per_mwh < lam
    )
    proposed = dict(zip(offers, split_award(list(offers.values()), award), strict=True))
    vmax = case["feeder"].vm_max_pu
    results = {}
    for n in (0, 3):
        dso = DSOOperator(case["feeder"], case["devices"], max_relinearisations=n)
        results[n] = dso.redispatch(proposed, case["p"], case["q"], offers, lam)
    new, old = results[3], results[0]
    assert new.violations_predicted > 0
    assert new.violations_after == 0
    assert new.relinearisations >= 1
    assert old.relinearisations == 0
    # corrected set-points sit at the limit on the AC power flow (to 1e-5 pu)
    assert abs(_ac_vm_max(case, new.setpoints_mw) - vmax) < 1e-5
    assert abs(_ac_vm_max(case, old.setpoints_mw) - vmax) > 1e-5
    # feasible set-points are left alone
    again = DSOOperator(case["feeder"], case["devices"]).redispatch(
        new.setpoints_mw, case["p"], case["q"], offers, lam
    )
    assert again.violations_predicted == 0
    assert again.changed_mw == 0.0


def test_disaggregate_relinearises_and_restarts_each_call(overvoltage: dict) -> None:
    case = overvoltage
    dso = DSOOperator(case["feeder"], case["devices"])
    vr = dso.virtual_resource(case["p"], case["q"], case["offers"])
    top = vr.p_max_mw - 0.1
    first = dso.disaggregate(top, 50.0)
    dso.disaggregate(vr.p_min_mw, 50.0)  # re-linearises elsewhere
    again = dso.disaggregate(top, 50.0)
    assert first.relinearisations >= 1
    assert again.setpoints_mw == pytest.approx(first.setpoints_mw, abs=1e-9)
    assert abs(_ac_vm_max(case, first.setpoints_mw) - case["feeder"].vm_max_pu) < 1e-5
    # the operating point of the last solve reproduces its interface flow
    p = case["p"].copy()
    for dev, bus in case["devices"].items():
        p.loc[bus] = p.get(bus, 0.0) + first.setpoints_mw[dev]
    state = case["feeder"].solve_power_flow(
        p, case["q"], operating_point=dso.operating_point, relinearise=0
    )
    assert state.interface_p_mw == pytest.approx(again.interface_p_mw, abs=1e-6)


# ------------------------------------------------------------------- margin
def test_voltage_margin_narrows_the_planning_band(overvoltage: dict) -> None:
    limits = LimitsConfig(vm_min_pu=0.95, vm_max_pu=1.05, voltage_margin_pu=0.004)
    feeder = linear_feeder(
        SimpleNamespace(config=SimpleNamespace(limits=limits), net=overvoltage["net"])
    )
    assert (feeder.vm_min_pu, feeder.vm_max_pu) == pytest.approx((0.954, 1.046))
    assert LimitsConfig().voltage_margin_pu == pytest.approx(0.0025)
    with pytest.raises(pydantic.ValidationError, match="voltage_margin_pu"):
        LimitsConfig(vm_min_pu=0.99, vm_max_pu=1.01, voltage_margin_pu=0.01)
    case = overvoltage
    dso = DSOOperator(feeder, case["devices"])
    vr = dso.virtual_resource(case["p"], case["q"], case["offers"])
    dis = dso.disaggregate(vr.p_max_mw, 50.0)
    assert _ac_vm_max(case, dis.setpoints_mw) == pytest.approx(1.046, abs=1e-5)
