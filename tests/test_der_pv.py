"""PV: dispatch never exceeds actual availability; curtailment is accounted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlayers.der import DeviceConditions, Interval, PVParams, PVPlant

TOL = 1e-9


def test_offer_and_range():
    pv = PVPlant("pv", 5, PVParams(rated_mw=2.0, marginal_cost_usd_per_mwh=-3.0))
    iv = Interval(0)
    fc = DeviceConditions(pv_available_pu=0.4)
    assert pv.feasible_range(iv, fc) == (0.0, 0.8)
    curve = pv.offer(iv, fc)
    assert curve.p_min_mw == 0.0
    assert curve.p_max_mw == pytest.approx(0.8)
    assert curve.blocks[0].price_usd_per_mwh == -3.0
    assert pv.offer(iv, DeviceConditions(pv_available_pu=0.0)).blocks == ()


def test_setpoint_above_actual_is_clipped():
    pv = PVPlant("pv", 5, PVParams(rated_mw=2.0))
    iv = Interval(0, 60.0)
    r = pv.dispatch(0.8, iv, DeviceConditions(pv_available_pu=0.25))
    assert r.p_mw == 0.5
    assert r.curtailed_mwh == 0.0
    r = pv.dispatch(0.3, iv.next(), DeviceConditions(pv_available_pu=0.25))
    assert r.p_mw == 0.3
    assert r.curtailed_mwh == pytest.approx(0.2)
    assert pv.state.produced_mwh == pytest.approx(0.8)
    assert pv.state.curtailed_mwh == pytest.approx(0.2)


@settings(max_examples=80, deadline=None)
@given(
    rated=st.floats(0.0, 10.0),
    steps=st.lists(st.tuples(st.floats(-1.0, 12.0), st.floats(0.0, 1.2)), min_size=1, max_size=40),
)
def test_never_exceeds_availability_and_energy_balances(rated, steps):
    pv = PVPlant("pv", 0, PVParams(rated_mw=rated, marginal_cost_usd_per_mwh=7.0))
    iv = Interval(0, 15.0)
    cost = 0.0
    for p_set, a in steps:
        act = DeviceConditions(pv_available_pu=a)
        avail = min(a, 1.0) * rated
        r = pv.dispatch(p_set, iv, act)
        assert 0.0 <= r.p_mw <= avail + TOL
        assert r.p_mw <= max(p_set, 0.0) + TOL
        assert r.curtailed_mwh == pytest.approx((avail - r.p_mw) * iv.hours, abs=TOL)
        cost += r.cost_usd
        iv = iv.next()
    s = pv.state
    assert s.produced_mwh + s.curtailed_mwh == pytest.approx(s.available_mwh, abs=TOL)
    assert cost == pytest.approx(7.0 * s.produced_mwh, abs=TOL)


def test_cost_is_marginal_cost_of_produced_energy_only():
    # 15 min, 1 MW available, 0.4 MW produced at 10 $/MWh: 10 * 0.4 * 0.25 = 1 $;
    # the 0.15 MWh curtailed are energy lost, not cost
    pv = PVPlant("pv", 5, PVParams(rated_mw=2.0, marginal_cost_usd_per_mwh=10.0))
    assert pv.stored_energy_mwh == 0.0
    assert pv.initial_stored_energy_mwh == 0.0
    r = pv.dispatch(0.4, Interval(0, 15.0), DeviceConditions(pv_available_pu=0.5))
    assert r.cost_usd == pytest.approx(1.0, abs=1e-12)
    assert r.curtailed_mwh == pytest.approx(0.15, abs=1e-12)
    assert pv.stored_energy_mwh == 0.0
    # zero marginal cost (default): producing or curtailing costs nothing
    free = PVPlant("pv", 5, PVParams(rated_mw=2.0))
    r = free.dispatch(0.4, Interval(0, 15.0), DeviceConditions(pv_available_pu=0.5))
    assert r.cost_usd == 0.0
    assert r.curtailed_mwh > 0.0
