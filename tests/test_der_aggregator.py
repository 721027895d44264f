"""Aggregator: merged offers, merit-order disaggregation, settlement, pyomo blocks."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlayers.der import (
    Aggregator,
    Battery,
    BatteryParams,
    BatteryState,
    DeviceConditions,
    EVFleet,
    EVFleetParams,
    FlexibleLoad,
    FlexibleLoadParams,
    Interval,
    PVParams,
    PVPlant,
    generate_sessions,
    make_strategy,
    merge_bid_curves,
    split_award,
)
from gridlayers.domain import BidBlock, BidCurve

TOL = 1e-9


def portfolio(seed=0, soc=0.5):
    ev = EVFleetParams(n_vehicles=10, arrival_mean_h=0.5, departure_mean_h=8.0)
    return [
        PVPlant("pv1", 1, PVParams(rated_mw=1.0)),
        PVPlant("pv2", 2, PVParams(rated_mw=0.5, marginal_cost_usd_per_mwh=-5.0)),
        Battery("bat1", 1, BatteryParams(0.4, 0.8), BatteryState((0.1 + 0.8 * soc) * 0.8)),
        Battery("bat2", 3, BatteryParams(0.2, 0.8, price_blocks=3), BatteryState(0.3)),
        FlexibleLoad("flex1", 2, FlexibleLoadParams(0.2, 0.1)),
        EVFleet("ev1", 3, ev, generate_sessions(ev, seed)),
    ]


def conditions(pv_pu=0.6, load=0.5):
    return {
        "pv1": DeviceConditions(pv_available_pu=pv_pu),
        "pv2": DeviceConditions(pv_available_pu=pv_pu),
        "flex1": DeviceConditions(load_baseline_mw=load),
    }


IV = Interval(8, 15.0)  # 02:00, EVs plugged in


def test_portfolio_offer_is_merged_device_offers():
    agg = Aggregator("a", portfolio())
    fc = conditions()
    offers = agg.device_offers(IV, fc)
    curve = agg.portfolio_offer(IV, fc)
    ranges = [
        d.feasible_range(IV, fc[d.device_id] if d.device_id in fc else DeviceConditions())
        for d in agg.devices
    ]
    assert curve.p_min_mw == pytest.approx(sum(r[0] for r in ranges), abs=TOL)
    assert curve.p_max_mw == pytest.approx(sum(r[1] for r in ranges), abs=TOL)
    assert agg.feasible_range(IV, fc) == pytest.approx((curve.p_min_mw, curve.p_max_mw))
    # cost of the merged curve = cost of the least-cost split of the same injection
    for p in np.linspace(curve.p_min_mw, curve.p_max_mw, 17):
        split = split_award(list(offers.values()), p)
        split_cost = sum(c.cost_usd_per_h(x) for c, x in zip(offers.values(), split, strict=True))
        assert curve.cost_usd_per_h(p) == pytest.approx(split_cost, abs=1e-7)
    by_bus = agg.offers_by_bus(IV, fc)
    assert sorted(by_bus) == [1, 2, 3]
    assert sum(c.p_max_mw for c in by_bus.values()) == pytest.approx(curve.p_max_mw)


def test_missing_pv_conditions_raise():
    with pytest.raises(KeyError, match="pv1"):
        Aggregator("a", portfolio()).portfolio_offer(IV, {})


def test_split_award_merit_order_and_ties():
    a = BidCurve(0.0, (BidBlock(1.0, 10.0), BidBlock(1.0, 30.0)))
    b = BidCurve(-1.0, (BidBlock(2.0, 10.0), BidBlock(1.0, 20.0)))
    # p_min sum -1; 3 MW at 10 $/MWh shared pro rata, then 20, then 30
    assert split_award([a, b], 0.5) == pytest.approx([0.5, 0.0])
    assert split_award([a, b], 2.5) == pytest.approx([1.0, 1.5])
    assert split_award([a, b], 3.0) == pytest.approx([1.0, 2.0])
    merged = merge_bid_curves([a, b])
    assert [(x.quantity_mw, x.price_usd_per_mwh) for x in merged.blocks] == [
        (3.0, 10.0),
        (1.0, 20.0),
        (1.0, 30.0),
    ]


@settings(max_examples=40, deadline=None)
@given(
    frac=st.floats(0.0, 1.0),
    pv_pu=st.floats(0.0, 1.0),
    soc=st.floats(0.0, 1.0),
    seed=st.integers(0, 100),
    by_bus=st.booleans(),
)
def test_disaggregation_hits_award(frac, pv_pu, soc, seed, by_bus):
    agg = Aggregator("a", portfolio(seed, soc))
    fc = conditions(pv_pu)
    if by_bus:
        offers = agg.offers_by_bus(IV, fc)
        award = {b: c.p_min_mw + frac * (c.p_max_mw - c.p_min_mw) for b, c in offers.items()}
        total = sum(award.values())
    else:
        curve = agg.portfolio_offer(IV, fc)
        award = total = curve.p_min_mw + frac * (curve.p_max_mw - curve.p_min_mw)
    device_offers = agg.pending[IV.index].offers
    setpoints = agg.setpoints(award, device_offers)
    assert sum(setpoints.values()) == pytest.approx(total, abs=TOL)
    for dev_id, p in setpoints.items():
        c = device_offers[dev_id]
        assert c.p_min_mw - TOL <= p <= c.p_max_mw + TOL
    results = agg.dispatch(award, IV, fc)  # actual == forecast: realised == award
    assert sum(r.p_mw for r in results.values()) == pytest.approx(total, abs=TOL)
    if by_bus:
        for b, a in award.items():
            assert sum(r.p_mw for r in results.values() if r.bus == b) == pytest.approx(a, abs=TOL)
    assert IV.index not in agg.pending


def test_pv_shortfall_shows_in_realised_dispatch():
    agg = Aggregator("a", portfolio())
    curve = agg.portfolio_offer(IV, conditions(pv_pu=0.6))
    res = agg.dispatch(curve.p_max_mw, IV, conditions(pv_pu=0.3))
    assert res["pv1"].p_set_mw == pytest.approx(0.6)
    assert res["pv1"].p_mw == pytest.approx(0.3)
    assert res["pv1"].curtailed_mwh == 0.0


def test_award_outside_range_rejected():
    agg = Aggregator("a", portfolio())
    curve = agg.portfolio_offer(IV, conditions())
    with pytest.raises(ValueError, match="outside offered range"):
        agg.dispatch(curve.p_max_mw + 1.0, IV, conditions())


def test_settlement():
    agg = Aggregator("a", portfolio())
    curve = agg.portfolio_offer(IV, conditions())
    res = agg.dispatch(curve.p_min_mw, IV, conditions())
    st_ = agg.settle(res, {1: 40.0, 2: 50.0, 3: 60.0}, IV)
    for dev_id, s in st_.items():
        assert s.revenue_usd == pytest.approx(s.price_usd_per_mwh * res[dev_id].energy_mwh)
        assert s.offer_cost_usd == pytest.approx(0.0)  # at p_min no block is cleared
    flat = agg.settle(res, 45.0, IV)
    assert sum(s.revenue_usd for s in flat.values()) == pytest.approx(
        45.0 * sum(r.energy_mwh for r in res.values())
    )


def test_strategies():
    b = Battery("b", 1, BatteryParams(1.0, 2.0))
    truthful = b.offer(IV, DeviceConditions())
    b.strategy = make_strategy("markup", markup_usd_per_mwh=7.0)
    marked = b.offer(IV, DeviceConditions())
    assert [x.price_usd_per_mwh - 7.0 for x in marked.blocks] == pytest.approx(
        [x.price_usd_per_mwh for x in truthful.blocks]
    )
    b.strategy = make_strategy("self_schedule")
    assert b.offer(IV, DeviceConditions()) == BidCurve.fixed(0.0)
    with pytest.raises(ValueError, match="unknown offer strategy"):
        make_strategy("nope")


def test_pyomo_blocks_clear_like_the_merged_curve():
    devices = portfolio()
    agg = Aggregator("a", devices)
    fc = conditions()
    merged = agg.portfolio_offer(IV, fc)
    m = pyo.ConcreteModel()
    m.DER = pyo.Block([d.device_id for d in devices])
    for d in devices:
        d.add_to_model(m.DER[d.device_id], IV, fc.get(d.device_id, DeviceConditions()))
    m.target = pyo.Param(mutable=True, initialize=0.5 * (merged.p_min_mw + merged.p_max_mw))
    m.balance = pyo.Constraint(expr=sum(m.DER[d.device_id].P_mw for d in devices) == m.target)
    m.obj = pyo.Objective(expr=sum(m.DER[d.device_id].cost_usd_per_h for d in devices))
    solver = pyo.SolverFactory("appsi_highs")
    solver.solve(m)
    assert pyo.value(m.obj) == pytest.approx(merged.cost_usd_per_h(pyo.value(m.target)), abs=1e-6)
    for d in devices:
        lo, hi = d.feasible_range(IV, fc.get(d.device_id, DeviceConditions()))
        assert lo - 1e-7 <= pyo.value(m.DER[d.device_id].P_mw) <= hi + 1e-7
    # dispatch changes state; update the same model in place and re-solve
    agg.dispatch(merged.p_min_mw, IV, fc)
    nxt = IV.next()
    merged2 = agg.portfolio_offer(nxt, fc)
    for d in devices:
        d.update_model(m.DER[d.device_id], nxt, fc.get(d.device_id, DeviceConditions()))
    m.target.set_value(merged2.p_max_mw)
    solver.solve(m)
    assert pyo.value(m.obj) == pytest.approx(merged2.cost_usd_per_h(merged2.p_max_mw), abs=1e-6)


def test_portfolio_with_many_distinct_prices_fits_the_tso_block_slots() -> None:
    """Minimal DSO bids an aggregator's merged portfolio: at most 10 blocks reach the TSO.

    Catches a portfolio sent uncompressed (the market rejects more than max_blocks) and a
    compression that changes the range or the cost at the remaining block boundaries.
    """
    from gridlayers.der.curves import merge_bid_curves
    from gridlayers.domain import BidBlock, BidCurve

    curves = [BidCurve(-1.0, (BidBlock(0.5, 10.0 + d), BidBlock(0.5, 30.0 + d))) for d in range(12)]
    merged = merge_bid_curves(curves)
    assert len(merged.blocks) == 24
    portfolio = merged.compressed(10)
    assert len(portfolio.blocks) == 10
    assert portfolio.p_min_mw == merged.p_min_mw
    assert portfolio.p_max_mw == pytest.approx(merged.p_max_mw, abs=1e-12)
    edge = portfolio.p_min_mw
    for block in portfolio.blocks:
        edge += block.quantity_mw
        assert portfolio.cost_usd_per_h(edge) == pytest.approx(merged.cost_usd_per_h(edge))
