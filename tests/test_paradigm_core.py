"""DSO paradigm core: Total DSO, Minimal DSO, Total TSO on SimBench feeders + case9."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pyomo.environ as pyo
import pytest

from conftest import rural_overvoltage_case
from gridlayers.der.curves import merge_bid_curves, split_award
from gridlayers.domain import BidBlock, BidCurve
from gridlayers.dso import (
    DSO_STRATEGIES,
    DSOOperator,
    InfeasibleDSOError,
    LinDistFlowFeeder,
    make_dso,
    opf,
)
from gridlayers.dso.offer_blocks import bus_dlmp, device_setpoints
from gridlayers.grid.networks import simbench_feeder
from gridlayers.market import TransmissionMarket

RURAL = "1-MV-rural--0-sw"
INTERFACE_BUS = 4  # case9 load bus
VM_AC_TOL_PU = 0.005

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _pv(cap_mw: float, price: float = 5.0) -> BidCurve:
    return BidCurve(0.0, (BidBlock(cap_mw, price),))


def _battery(p_mw: float = 1.0) -> BidCurve:
    return BidCurve(-p_mw, (BidBlock(p_mw, 20.0), BidBlock(p_mw, 60.0)))


@pytest.fixture(scope="module")
def rural() -> dict:
    """Rural feeder at the peak-load step; 3 PV + 3 batteries at buses near the root."""
    net, prof = simbench_feeder(RURAL)
    step = int((prof[("load", "p_mw")].sum(axis=1) - prof[("sgen", "p_mw")].sum(axis=1)).idxmax())
    net.load["p_mw"] = prof[("load", "p_mw")].iloc[step].to_numpy()
    net.load["q_mvar"] = prof[("load", "q_mvar")].iloc[step].to_numpy()
    net.sgen["p_mw"] = prof[("sgen", "p_mw")].iloc[step].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feeder = LinDistFlowFeeder(net)
    p, q = feeder.injections_from_net(net)
    base_vm = feeder.solve_power_flow(p, q).vm_pu.max()
    rise = {  # max voltage after adding 2 MW at the bus: pick the stiffest buses
        b: feeder.solve_power_flow(p.add(pd.Series({b: 2.0}), fill_value=0.0), q).vm_pu.max()
        - base_vm
        for b in feeder.buses[1:]
    }
    strong = sorted(rise, key=rise.get)[:6]
    devices = {f"pv{i}": strong[i] for i in range(3)} | {f"bat{i}": strong[3 + i] for i in range(3)}
    offers = {d: _pv(0.5) if d.startswith("pv") else _battery(0.5) for d in devices}
    return {
        "net": net,
        "feeder": feeder,
        "p": p,
        "q": q,
        "devices": devices,
        "offers": offers,
        "strong": strong,
    }


@pytest.fixture(scope="module")
def overvoltage() -> dict:
    """Rural feeder as bundled (study case) with an 8 MW PV at its weakest bus."""
    return rural_overvoltage_case()


def _ac_vm_max(case: dict, setpoints: dict[str, float]) -> float:
    """pandapower AC power flow with devices as sgens at their set-points; max vm (pu)."""
    net = copy.deepcopy(case["net"])
    for dev, bus in case["devices"].items():
        pp.create_sgen(net, bus, p_mw=setpoints[dev], q_mvar=0.0, name=dev)
    pp.runpp(net)
    return float(net.res_bus.vm_pu.max())


def _linear_interface(case: dict, dso: DSOOperator, setpoints: dict[str, float]):
    p = case["p"].copy()
    for dev, bus in case["devices"].items():
        p.loc[bus] = p.get(bus, 0.0) + setpoints[dev]
    return case["feeder"].solve_power_flow(
        p, case["q"], operating_point=dso.operating_point, relinearise=0
    )


# ------------------------------------------------------------------ Total DSO
def test_virtual_resource_and_disaggregation_balance(rural: dict) -> None:
    dso = DSOOperator(rural["feeder"], rural["devices"], blocks_per_device=6, max_blocks=2)
    vr = dso.virtual_resource(rural["p"], rural["q"], rural["offers"])
    prices = [b.price_usd_per_mwh for b in vr.curve.blocks]
    assert len(vr.curve.blocks) <= 2
    assert prices == sorted(prices)
    assert vr.curve.p_min_mw == pytest.approx(vr.p_min_mw, abs=1e-9)
    assert vr.curve.p_max_mw == pytest.approx(vr.p_max_mw, abs=1e-9)
    # no binding limit: range is fixed load + DER range minus losses (a few % at most)
    fixed = rural["p"].sum()
    assert vr.p_min_mw == pytest.approx(fixed - 1.5, rel=0.03)
    assert vr.p_max_mw - vr.p_min_mw == pytest.approx(4.5, rel=0.01)
    award = vr.p_min_mw + 2.0
    dis = dso.disaggregate(award, 30.0)
    # losses re-linearised at the set-points: the export is the award up to the loss
    # correction the midpoint linearisation missed (1.2e-6 MW here; docs/dso.md)
    assert dis.relinearisations >= 1
    assert dis.interface_p_mw == pytest.approx(award, abs=1e-4)
    exact = DSOOperator(rural["feeder"], rural["devices"], max_blocks=2, max_relinearisations=0)
    exact.virtual_resource(rural["p"], rural["q"], rural["offers"])
    assert exact.disaggregate(award, 30.0).interface_p_mw == pytest.approx(award, abs=1e-6)
    # independent truth: direct sparse solve of the same linear model at the set-points
    state = _linear_interface(rural, dso, dis.setpoints_mw)
    assert state.interface_p_mw == pytest.approx(dis.interface_p_mw, abs=1e-6)
    assert fixed + sum(dis.setpoints_mw.values()) - state.losses_p_mw == pytest.approx(
        dis.interface_p_mw, abs=1e-6
    )
    # merit order: PV (5 $/MWh) full before any battery block at 60 $/MWh
    assert sum(dis.setpoints_mw[f"pv{i}"] for i in range(3)) == pytest.approx(1.5, abs=1e-6)
    cost = sum(rural["offers"][d].cost_usd_per_h(p) for d, p in dis.setpoints_mw.items())
    assert dis.cost_usd_per_h == pytest.approx(cost, abs=1e-6)
    with pytest.raises(InfeasibleDSOError):
        dso.disaggregate(vr.p_max_mw + 0.01, 30.0)


def test_offer_with_too_many_blocks_raises(rural: dict) -> None:
    dso = DSOOperator(rural["feeder"], rural["devices"], blocks_per_device=2)
    offers = dict(rural["offers"])
    offers["pv0"] = BidCurve(0.0, tuple(BidBlock(0.1, float(k)) for k in range(3)))
    with pytest.raises(ValueError, match="blocks_per_device"):
        dso.virtual_resource(rural["p"], rural["q"], offers)


def test_in_place_update_equals_fresh(rural: dict) -> None:
    dso = DSOOperator(rural["feeder"], rural["devices"])
    model = dso.model
    dso.virtual_resource(rural["p"], rural["q"], rural["offers"])
    dso.disaggregate(dso.virtual_resource(rural["p"], rural["q"], rural["offers"]).p_min_mw, 10.0)
    p2 = rural["p"] * 1.2
    offers2 = {d: _pv(0.7, 8.0) if d.startswith("pv") else _battery(1.5) for d in rural["devices"]}
    vr = dso.virtual_resource(p2, rural["q"], offers2)
    dis = dso.disaggregate(vr.p_min_mw + 3.3, 25.0)
    assert dso.model is model
    fresh = DSOOperator(rural["feeder"], rural["devices"])
    vr_f = fresh.virtual_resource(p2, rural["q"], offers2)
    dis_f = fresh.disaggregate(vr.p_min_mw + 3.3, 25.0)
    assert vr.curve.p_min_mw == pytest.approx(vr_f.curve.p_min_mw, abs=1e-7)
    assert vr.curve.p_max_mw == pytest.approx(vr_f.curve.p_max_mw, abs=1e-7)
    assert dis.cost_usd_per_h == pytest.approx(dis_f.cost_usd_per_h, abs=1e-6)
    for d in rural["devices"]:
        assert dis.setpoints_mw[d] == pytest.approx(dis_f.setpoints_mw[d], abs=1e-6)
    np.testing.assert_allclose(dis.dlmp_usd_per_mwh, dis_f.dlmp_usd_per_mwh, atol=1e-6)


def test_results_read_from_highs_arrays_are_pyomos(rural: dict) -> None:
    """The disaggregation is read from HiGHS's solution arrays (no pyomo expression
    evaluation); catches a wrong column/row mapping or summation order: every value equals
    what pyomo evaluates on the loaded model, bit for bit."""
    dso = DSOOperator(rural["feeder"], rural["devices"])
    vr = dso.virtual_resource(rural["p"], rural["q"], rural["offers"])
    dis = dso.disaggregate(vr.p_min_mw + 0.6 * (vr.p_max_mw - vr.p_min_mw), 25.0)
    m, lp = dso.model, dso._lp
    assert dis.setpoints_mw == {d: pyo.value(m.DeviceP[d]) for d in m.DEVICES}
    assert dis.setpoints_mw == device_setpoints(m)  # compiled through the named Expression
    assert dis.cost_usd_per_h == pyo.value(m.DerCost)
    assert dis.interface_p_mw == pyo.value(m.feeder.InterfaceP)
    duals = lp.duals(list(m.feeder.PBalance.values()))
    expected = bus_dlmp(dso.feeder, opf.dlmp_usd_per_mwh(m.feeder, duals))
    pd.testing.assert_series_equal(dis.dlmp_usd_per_mwh, expected, check_exact=True)
    fixed = sum(pyo.value(m.feeder.p_fixed_mw[b]) for b in m.feeder.BUSES)
    assert dis.losses_p_mw == fixed + sum(dis.setpoints_mw.values()) - dis.interface_p_mw


# -------------------------------------------------- Total TSO vs Total DSO (case9)
def _total_dso(dso: DSOOperator, case: dict, load_scale: float = 1.0) -> dict:
    net = pn.case9()
    net.load.p_mw *= load_scale
    market = TransmissionMarket(net, participants={"lda": INTERFACE_BUS})
    vr = dso.virtual_resource(case["p"], case["q"], case["offers"])
    res = market.clear(bids={"lda": vr.curve})
    award, lmp = res.awards_mw["lda"], float(res.lmp_usd_per_mwh[INTERFACE_BUS])
    dis = dso.disaggregate(award, lmp)
    total = res.cost_usd_per_h - vr.curve.cost_usd_per_h(award) + dis.cost_usd_per_h
    return {"market": market, "res": res, "dis": dis, "total": total, "lmp": lmp, "vr": vr}


def _total_tso(case: dict) -> dict:
    dso = DSOOperator(case["feeder"], case["devices"])
    ext = dso.market_extension(INTERFACE_BUS, name="rural")
    market = TransmissionMarket(pn.case9(), extensions=[ext])
    ext.set_interval(case["p"], case["q"], case["offers"])
    res = market.clear()
    return {"market": market, "res": res, "ext": ext, "dlmp": ext.dlmp_usd_per_mwh(market)}


def test_total_tso_equals_total_dso_without_binding_limits(rural: dict) -> None:
    tso = _total_tso(rural)
    dso_run = _total_dso(DSOOperator(rural["feeder"], rural["devices"]), rural)
    assert tso["res"].cost_usd_per_h == pytest.approx(dso_run["total"], rel=1e-3)
    set_tso, set_dso = tso["ext"].setpoints_mw(), dso_run["dis"].setpoints_mw
    assert max(abs(set_tso[d] - set_dso[d]) for d in set_tso) < 0.05
    # Total TSO: the feeder root DLMP is the interface LMP; energy balance of the block
    lmp = float(tso["res"].lmp_usd_per_mwh[INTERFACE_BUS])
    assert tso["dlmp"][rural["feeder"].root_bus] == pytest.approx(lmp, abs=1e-6)
    assert dso_run["dis"].dlmp_usd_per_mwh[rural["feeder"].root_bus] == pytest.approx(
        dso_run["lmp"], rel=0.01
    )
    fixed = rural["p"].sum()
    losses = tso["ext"].operating_point  # base point of the linearisation
    state = rural["feeder"].solve_power_flow(
        rural["p"].add(
            pd.Series(set_tso).groupby(pd.Series(rural["devices"])).sum(), fill_value=0.0
        ),
        rural["q"],
        operating_point=losses,
        relinearise=0,
    )
    assert state.interface_p_mw == pytest.approx(tso["ext"].interface_p_mw(), abs=1e-6)
    assert fixed + sum(set_tso.values()) - state.losses_p_mw == pytest.approx(
        tso["ext"].interface_p_mw(), abs=1e-6
    )
    # Total TSO's problem is larger than the TSO problem under Total DSO
    assert tso["market"].n_variables > dso_run["market"].n_variables + 300
    assert tso["market"].n_constraints > dso_run["market"].n_constraints + 1000


def test_total_tso_in_place_update_reaches_solver(rural: dict) -> None:
    tso = _total_tso(rural)
    offers2 = {d: _pv(0.5, 1.0) if d.startswith("pv") else _battery(2.0) for d in rural["devices"]}
    p2 = rural["p"] * 0.8
    tso["ext"].set_interval(p2, rural["q"], offers2)
    res2 = tso["market"].clear()
    fresh = _total_tso({**rural, "p": p2, "offers": offers2})
    assert res2.cost_usd_per_h == pytest.approx(fresh["res"].cost_usd_per_h, rel=1e-9)
    a, b = tso["ext"].setpoints_mw(), fresh["ext"].setpoints_mw()
    assert max(abs(a[d] - b[d]) for d in a) < 1e-6
    assert res2.cost_usd_per_h != pytest.approx(tso["res"].cost_usd_per_h, rel=1e-4)


# ------------------------------------------------------------ layered pricing
def test_layered_pricing_property(rural: dict) -> None:
    devices = rural["devices"]
    offers = {d: _pv(3.0) if d.startswith("pv") else _battery(1.0) for d in devices}
    case = {**rural, "devices": devices, "offers": offers}
    dso = DSOOperator(rural["feeder"], devices)
    root = rural["feeder"].root_bus
    # zero interchange: DLMPs set by the LDA's own resources, not by the interface LMP
    vr = dso.virtual_resource(rural["p"], rural["q"], offers)
    assert vr.p_min_mw < 0.0 < vr.p_max_mw
    low, high = dso.disaggregate(0.0, 40.0), dso.disaggregate(0.0, 80.0)
    assert low.interface_p_mw == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(low.dlmp_usd_per_mwh, high.dlmp_usd_per_mwh, atol=1e-9)
    # at zero interchange a battery's 20 $/MWh block is marginal (plus marginal losses)
    assert low.dlmp_usd_per_mwh[root] == pytest.approx(20.0, rel=0.01)
    # an award at a kink of the curve (PV full, batteries not started): the interchange is
    # the marginal resource, so the root DLMP is the interface price within the gap
    kink = vr.curve.p_min_mw + sum(
        b.quantity_mw for b in vr.curve.blocks if b.price_usd_per_mwh < 10.0
    )
    assert vr.p_min_mw < kink < vr.p_max_mw
    for lam in (12.0, 15.0):
        dis = dso.disaggregate(kink, lam)
        # the loss correction of the re-linearisation (3 kW) stays at the interchange: it is
        # not bought from the 20 $/MWh battery block, so the DER stay at the kink
        assert dis.interface_p_mw == pytest.approx(kink, abs=0.01)
        assert dis.dlmp_usd_per_mwh[root] == pytest.approx(lam, abs=1e-6)
    # non-zero interchange cleared by the TSO: the root DLMP tracks the interface LMP
    runs = [_total_dso(dso, case, scale) for scale in (0.6, 1.3)]
    for run in runs:
        assert abs(run["dis"].interface_p_mw) > 0.1
        assert run["dis"].dlmp_usd_per_mwh[root] == pytest.approx(run["lmp"], rel=0.01)
    assert abs(runs[1]["lmp"] - runs[0]["lmp"]) > 5.0


# ------------------------------------------------ PV overvoltage: all paradigms
def test_overvoltage_paradigms(overvoltage: dict) -> None:
    case, feeder = overvoltage, overvoltage["feeder"]
    offers, lam = case["offers"], 50.0
    # Minimal DSO: aggregator offers at the interface, merit-order split, no network
    portfolio = merge_bid_curves(list(offers.values()))
    award = portfolio.p_max_mw  # price 50 $/MWh clears every block below it
    award = portfolio.p_min_mw + sum(
        b.quantity_mw for b in portfolio.blocks if b.price_usd_per_mwh < lam
    )
    agg = dict(zip(offers, split_award(list(offers.values()), award), strict=True))
    dso = DSOOperator(feeder, case["devices"])
    red = dso.redispatch(agg, case["p"], case["q"], offers, lam)
    assert red.violations_predicted > 0
    assert red.violations_after == 0
    assert red.redispatch_cost_usd_per_h > 0.0
    assert red.setpoints_mw["pv_big"] < 7.0
    assert red.changed_mw > 1.0
    # aggregator dispatch is merit order at lam: cost = DER cost change - lam * energy change
    expected = sum(
        offers[d].cost_usd_per_h(red.setpoints_mw[d])
        - offers[d].cost_usd_per_h(agg[d])
        - lam * (red.setpoints_mw[d] - agg[d])
        for d in offers
    )
    assert red.redispatch_cost_usd_per_h == pytest.approx(expected, rel=1e-6)
    assert _ac_vm_max(case, agg) > feeder.vm_max_pu + VM_AC_TOL_PU
    assert _ac_vm_max(case, red.setpoints_mw) <= feeder.vm_max_pu + VM_AC_TOL_PU
    # feasible set-points are left alone at zero cost
    again = dso.redispatch(red.setpoints_mw, case["p"], case["q"], offers, lam)
    assert (again.violations_predicted, again.redispatch_cost_usd_per_h, again.changed_mw) == (
        0,
        0.0,
        0.0,
    )
    # Total DSO (optimal) vs pro_rata for the same award
    vr = dso.virtual_resource(case["p"], case["q"], offers)
    # a limit binds at max export: the curve goes through exact least-cost points
    assert vr.method == "sampled"
    # ... in the model it was built with (losses linearised at the interval's midpoint):
    # compare with a DSO that does not re-linearise at its solution
    mid = DSOOperator(feeder, case["devices"], max_relinearisations=0)
    assert mid.virtual_resource(case["p"], case["q"], offers).curve == vr.curve
    base_cost = mid.disaggregate(vr.p_min_mw, lam).cost_usd_per_h
    for frac in (0.5, 1.0):
        p_mw = vr.p_min_mw + frac * (vr.p_max_mw - vr.p_min_mw)
        true_cost = mid.disaggregate(p_mw, lam).cost_usd_per_h - base_cost
        assert vr.curve.cost_usd_per_h(p_mw) == pytest.approx(true_cost, rel=1e-4)
    # re-linearised at the dispatched point, the binding voltage limit holds on the AC power
    # flow to 1e-5 pu; the midpoint model over-estimated the PV's voltage rise (less PV)
    top, top_mid = dso.disaggregate(vr.p_max_mw, lam), mid.disaggregate(vr.p_max_mw, lam)
    assert top.relinearisations >= 1
    assert abs(_ac_vm_max(case, top.setpoints_mw) - feeder.vm_max_pu) < 1e-5
    assert top.setpoints_mw["pv_big"] > top_mid.setpoints_mw["pv_big"] + 0.1
    assert vr.p_max_mw - 0.05 < top.interface_p_mw < vr.p_max_mw + 1e-6
    target = vr.p_max_mw - 0.1
    opt = dso.disaggregate(target, lam)
    state = _linear_interface(case, dso, opt.setpoints_mw)
    assert state.vm_pu.max() <= feeder.vm_max_pu + 1e-6
    assert _ac_vm_max(case, opt.setpoints_mw) <= feeder.vm_max_pu + VM_AC_TOL_PU
    assert opt.dlmp_usd_per_mwh[case["devices"]["pv_big"]] == pytest.approx(1.0, abs=1e-6)
    pro = make_dso("pro_rata", feeder, case["devices"])
    pro.virtual_resource(case["p"], case["q"], offers)
    split = pro.disaggregate(target, lam)
    assert split.interface_p_mw == pytest.approx(target, abs=1e-6)
    assert _linear_interface(case, pro, split.setpoints_mw).vm_pu.max() > feeder.vm_max_pu + 1e-3
    assert _ac_vm_max(case, split.setpoints_mw) > feeder.vm_max_pu
    # Total TSO respects the limits too
    tso = _total_tso(case)
    tso_set = tso["ext"].setpoints_mw()
    assert tso_set["pv_big"] < 7.0
    assert _ac_vm_max(case, tso_set) <= feeder.vm_max_pu + VM_AC_TOL_PU


def test_strategy_registry() -> None:
    assert set(DSO_STRATEGIES) >= {"optimal", "pro_rata"}
    with pytest.raises(ValueError, match="unknown DSO strategy"):
        make_dso("nope", None, {})
