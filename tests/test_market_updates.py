"""TransmissionMarket: in-place updates, participants' bids, extra loads, extensions."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pyomo.environ as pyo
import pytest

from gridlayers.domain import BidBlock, BidCurve
from gridlayers.market import ClearingResult, TransmissionMarket, clear_pandapower


def _triangle(limit_02_mw: float = 50.0, load_mw: float = 100.0):
    """Same 3-bus net as in test_market_vs_pandapower (hand LMPs 10 / 30 / 50 $/MWh)."""
    net = pp.create_empty_network(sn_mva=100.0)
    buses = [pp.create_bus(net, vn_kv=110.0) for _ in range(3)]
    for f, t in [(0, 1), (1, 2), (0, 2)]:
        i_ka = limit_02_mw / (110.0 * math.sqrt(3)) if (f, t) == (0, 2) else 10.0
        pp.create_line_from_parameters(net, buses[f], buses[t], length_km=1.0, r_ohm_per_km=0.0,
                                       x_ohm_per_km=0.4, c_nf_per_km=0.0, max_i_ka=i_ka,
                                       max_loading_percent=100.0)
    pp.create_ext_grid(net, buses[0], min_p_mw=0.0, max_p_mw=200.0)
    pp.create_gen(net, buses[1], p_mw=0.0, min_p_mw=0.0, max_p_mw=200.0, controllable=True)
    pp.create_load(net, buses[2], p_mw=load_mw)
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=10.0)
    pp.create_poly_cost(net, 0, "gen", cp1_eur_per_mw=30.0)
    return net


def _congested_case30():
    net = pn.case30()
    net.line.loc[28, "max_loading_percent"] = 44.7
    return net


def _balance_mw(res: ClearingResult, load_mw: float, extra_mw: float = 0.0) -> float:
    gen = sum(float(s.sum()) for s in res.gen_p_mw.values())
    return gen + sum(res.awards_mw.values()) - load_mw - extra_mw


def test_update_in_place_equals_fresh_build():
    net = _congested_case30()
    market = TransmissionMarket(net)
    model, n_con, n_var = market.model, market.n_constraints, market.n_variables
    rng = np.random.default_rng(7)
    load_b = net.load.p_mw * rng.uniform(0.8, 1.2, len(net.load))
    first = market.clear()  # load A = as in net
    second = market.clear(load_p_mw=load_b)
    fresh = TransmissionMarket(net).clear(load_p_mw=load_b)
    assert market.model is model
    assert market.n_constraints == n_con
    assert market.n_variables == n_var
    np.testing.assert_allclose(second.lmp, fresh.lmp, rtol=1e-7)
    assert second.cost == pytest.approx(fresh.cost, rel=1e-9)
    np.testing.assert_allclose(second.line_p_mw, fresh.line_p_mw, atol=1e-6)
    assert abs(second.cost - first.cost) > 1.0  # the update really changed the problem
    # and going back to A reproduces A
    again = market.clear(load_p_mw=net.load.p_mw * net.load.scaling)
    np.testing.assert_allclose(again.lmp, first.lmp, rtol=1e-7)


def test_load_update_matches_rundcopp():
    net = _congested_case30()
    market = TransmissionMarket(net)
    market.clear()
    net.load["p_mw"] *= 1.1
    ours = market.clear(load_p_mw=net.load.p_mw)
    pp.rundcopp(net)
    np.testing.assert_allclose(ours.lmp, net.res_bus.lam_p, rtol=1e-4)
    assert ours.cost == pytest.approx(net.res_cost, rel=1e-4)


def test_extra_load_equals_net_load():
    net = _triangle(limit_02_mw=80.0)
    with_extra = TransmissionMarket(net).clear(extra_load_mw={2: 15.0, 1: 5.0})
    net2 = _triangle(limit_02_mw=80.0)
    pp.create_load(net2, 2, p_mw=15.0)
    pp.create_load(net2, 1, p_mw=5.0)
    reference = clear_pandapower(net2)
    np.testing.assert_allclose(with_extra.lmp, reference.lmp, atol=1e-6)
    assert with_extra.cost == pytest.approx(reference.cost, abs=1e-6)
    assert abs(_balance_mw(with_extra, 100.0, 20.0)) < 1e-6


def test_cheap_bid_dispatched_and_marginal_bid_sets_lmp():
    market = TransmissionMarket(_triangle(), participants={"pv": 2, "chp": 2}, max_blocks=3)
    # a 20 MW block at 5 $/MWh at the 50 $/MWh bus is fully cleared
    res = market.clear(bids={"pv": BidCurve(0.0, (BidBlock(20.0, 5.0),))})
    assert res.awards_mw == pytest.approx({"pv": 20.0, "chp": 0.0}, abs=1e-6)
    assert abs(_balance_mw(res, 100.0)) < 1e-6
    # A 40 $/MWh offer at bus 2 beats the 50 $/MWh ext_grid/gen mix there. Hand solution:
    # g1 = 0, g0 = 75 (line 0-2 at 50 MW), bid = 25 MW, marginal -> LMP_2 = 40;
    # LMP_1 = (LMP_0 + LMP_2) / 2 = 25 (bus 1 has half of bus 0's PTDF on line 0-2).
    res = market.clear(bids={"chp": BidCurve(0.0, (BidBlock(10.0, 35.0), BidBlock(90.0, 40.0)))})
    assert res.awards_mw["chp"] == pytest.approx(25.0, abs=1e-6)
    assert res.awards_mw["pv"] == pytest.approx(0.0, abs=1e-9)  # absent -> fixed at 0
    np.testing.assert_allclose(res.lmp.to_numpy(), [10.0, 25.0, 40.0], atol=1e-6)
    assert res.cost == pytest.approx(10 * 75 + 35 * 10 + 40 * 15, abs=1e-5)
    assert res.generation_cost_usd_per_h == pytest.approx(750.0, abs=1e-5)
    assert abs(_balance_mw(res, 100.0)) < 1e-6


@pytest.mark.parametrize(("value", "served"), [(45.0, False), (60.0, True)])
def test_demand_bid_shed_when_lmp_exceeds_its_value(value, served):
    market = TransmissionMarket(_triangle(), participants={"flex": 2})
    bid = BidCurve(p_min_mw=-20.0, blocks=(BidBlock(20.0, value),))
    res = market.clear(bids={"flex": bid})
    assert res.awards_mw["flex"] == pytest.approx(-20.0 if served else 0.0, abs=1e-6)
    assert res.lmp[2] == pytest.approx(50.0, abs=1e-6)  # LMP still set by the gen mix
    assert abs(_balance_mw(res, 100.0)) < 1e-6


def test_bid_validation():
    market = TransmissionMarket(_triangle(), participants={"a": 1}, max_blocks=2)
    too_many = BidCurve(0.0, tuple(BidBlock(1.0, 10.0 + k) for k in range(3)))
    with pytest.raises(ValueError, match="max_blocks=2"):
        market.clear(bids={"a": too_many})
    with pytest.raises(ValueError, match="unknown participants"):
        market.clear(bids={"b": BidCurve.fixed(1.0)})
    with pytest.raises(ValueError, match="not an in-service bus"):
        TransmissionMarket(_triangle(), participants={"a": 99})


class _CheapUnitAtBus2:
    """A MarketExtension: a 30 MW unit at 20 $/MWh at transmission bus 2."""

    def add_to_model(self, model):
        model.ext_unit = pyo.Block()
        model.ext_unit.P = pyo.Var(bounds=(0.0, 30.0), doc="injection (MW)")
        return {2: model.ext_unit.P}, 20.0 * model.ext_unit.P


def test_extension_injection_enters_balance_and_cost():
    res = TransmissionMarket(_triangle(), extensions=(_CheapUnitAtBus2(),)).clear()
    # The 20 $/MWh unit beats the 50 $/MWh mix at bus 2: g0 rises until line 0-2 binds
    # (2/3 g0 = 50 -> g0 = 75), the unit covers the remaining 25 MW and is marginal at bus 2.
    assert res.gen_p_mw["ext_grid"][0] == pytest.approx(75.0, abs=1e-6)
    assert res.gen_p_mw["gen"][0] == pytest.approx(0.0, abs=1e-6)
    assert res.cost == pytest.approx(10 * 75 + 20 * 25, abs=1e-5)
    np.testing.assert_allclose(res.lmp.to_numpy(), [10.0, 15.0, 20.0], atol=1e-6)


def test_piecewise_costs_converge_to_the_exact_qp() -> None:
    """Secant cost segments (pure LP) approach pandapower's quadratic-cost DC OPF."""
    import pandapower as pp
    import pandapower.networks as pn

    from gridlayers.market import clear_pandapower

    net = pn.case9()
    net.line["max_loading_percent"] = 40.0  # congested: LMPs differ across buses
    ref = copy.deepcopy(net)
    pp.rundcopp(ref)
    coarse = clear_pandapower(net, cost_segments=4)
    fine = clear_pandapower(net, cost_segments=400)
    lam = ref.res_bus.lam_p
    err_coarse = float(((coarse.lmp - lam).abs() / lam).max())
    err_fine = float(((fine.lmp - lam).abs() / lam).max())
    # a segment's slope differs from the marginal cost by at most c2 * width: O(1/segments)
    assert err_fine < 5e-3
    assert err_fine < err_coarse / 10
    assert fine.cost == pytest.approx(ref.res_cost, rel=1e-5)
    assert coarse.cost >= ref.res_cost - 1e-6  # secants over-estimate a convex cost


def _pyomo_view(market: TransmissionMarket) -> dict:
    """The last clear's numbers as pyomo holds them (Var values, duals through pyomo)."""
    m = market.model
    duals = market._solver._get_duals(list(m.Balance.values()))  # noqa: SLF001
    return {
        "unit": [m.Gen[g].value for g in m.GEN],
        "flow": [m.Flow[br].value for br in m.BRANCH],
        "lmp": [duals[m.Balance[n]] for n in m.BUS],
        "awards": {
            p: m.part_p_min_mw[p].value + sum(m.BidBlock[p, k].value for k in m.BLOCK)
            for p in m.PART
        },
    }


def test_direct_solves_read_exactly_what_pyomo_holds():
    """Later clears bypass pyomo's solve; results equal the Vars and duals bit for bit."""
    net = _congested_case30()
    market = TransmissionMarket(net, participants={"a": 4, "b": 20}, max_blocks=3)
    rng = np.random.default_rng(11)
    for k in range(4):  # the first clear goes through pyomo, the others run HiGHS directly
        bids = {"a": BidCurve(-5.0, (BidBlock(10.0, 20.0 + k), BidBlock(5.0, 60.0)))}
        if k % 2:
            bids["b"] = BidCurve(0.0, (BidBlock(float(rng.uniform(1, 9)), 2.0),))
        res = market.clear(
            load_p_mw=net.load.p_mw * rng.uniform(0.8, 1.2, len(net.load)), bids=bids
        )
        view = _pyomo_view(market)
        assert res.unit_p_mw.tolist() == view["unit"]
        assert res.branch_flow_mw.tolist() == view["flow"]
        assert res.node_lmp_usd_per_mwh.tolist() == view["lmp"]
        assert res.awards_mw == view["awards"]
        assert res.status == "convergenceCriteriaSatisfied"
        assert res.cost == pytest.approx(pyo.value(market.model.TotalCost), rel=1e-9)


def test_solver_error_retried_and_regularisation_restored(monkeypatch):
    """A HiGHS solve error is retried through pyomo; HiGHS then gets 1e-10 back."""
    import highspy

    import gridlayers.market.clearing as clearing

    net = _congested_case30()
    market = TransmissionMarket(net)
    first = market.clear()
    real_run, calls = clearing.run, []

    def failing_once(solver):
        calls.append(1)
        if len(calls) == 1:
            return highspy.HighsModelStatus.kSolveError
        return real_run(solver)

    monkeypatch.setattr(clearing, "run", failing_once)
    retried = market.clear()
    highs = market._solver._solver_model  # noqa: SLF001
    assert highs.getOptionValue("qp_regularization_value")[1] == clearing.QP_REGULARIZATION
    np.testing.assert_allclose(retried.lmp, first.lmp, rtol=1e-4)  # 1e-7 regularisation
    again = market.clear()
    assert len(calls) == 2
    np.testing.assert_allclose(again.lmp, first.lmp, rtol=1e-7)


def test_store_floats_on_params_of_pyomos_implicit_domain():
    """The market's Params (pyomo's implicit 'Any' domain) take store_floats' fast path."""
    from gridlayers.highs_params import store_floats

    m = TransmissionMarket(_triangle()).model
    store_floats(m.extra_load_mw, {0: 1.5, 2: -3.0})
    assert [m.extra_load_mw[n].value for n in m.BUS] == [1.5, 0.0, -3.0]
    with pytest.raises(KeyError):
        store_floats(m.extra_load_mw, {99: 1.0})
