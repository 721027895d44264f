"""Battery: exact energy accounting, SOC bounds, monotone offers within limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlayers.der import NO_CONDITIONS, Battery, BatteryParams, BatteryState, Interval

TOL = 1e-9


def make_battery(power=1.0, energy=2.0, eta_c=0.9, eta_d=0.8, soc0=0.5, lo=0.1, hi=0.9, deg=2.0):
    params = BatteryParams(
        power_mw=power,
        energy_mwh=energy,
        eta_charge=eta_c,
        eta_discharge=eta_d,
        soc_min_pu=lo,
        soc_max_pu=hi,
        degradation_cost_usd_per_mwh=deg,
    )
    return Battery("b1", 3, params, BatteryState(energy_mwh=soc0 * energy))


def test_soc_update_by_hand():
    b = make_battery()
    iv = Interval(0, 15.0)
    r = b.dispatch(-1.0, iv, NO_CONDITIONS)
    assert r.p_mw == -1.0
    assert b.state.energy_mwh == pytest.approx(1.0 + 0.9 * 0.25, abs=1e-12)
    r = b.dispatch(0.8, iv.next(), NO_CONDITIONS)
    assert b.state.energy_mwh == pytest.approx(1.225 - 0.8 * 0.25 / 0.8, abs=1e-12)
    assert b.state.charged_mwh == pytest.approx(0.25)
    assert b.state.discharged_mwh == pytest.approx(0.2)


def test_range_respects_soc_limits():
    full = make_battery(soc0=0.9)
    empty = make_battery(soc0=0.1)
    iv = Interval(0, 60.0)
    assert full.feasible_range(iv, NO_CONDITIONS) == (0.0, 1.0)
    assert empty.feasible_range(iv, NO_CONDITIONS) == (-1.0, 0.0)
    # near the top, the energy limit binds: 0.05 * 2 MWh / (0.9 * 1 h)
    near = make_battery(soc0=0.85)
    lo, hi = near.feasible_range(iv, NO_CONDITIONS)
    assert lo == pytest.approx(-0.1 / 0.9)
    assert hi == 1.0
    near.dispatch(-5.0, iv, NO_CONDITIONS)  # clipped to the energy limit
    assert near.state.energy_mwh == pytest.approx(1.8, abs=1e-12)


def test_offer_is_water_value_curve():
    b = make_battery(soc0=0.5)
    iv = Interval(0, 15.0)
    curve = b.offer(iv, NO_CONDITIONS)
    lo, hi = b.feasible_range(iv, NO_CONDITIONS)
    assert curve.p_min_mw == pytest.approx(lo)
    assert curve.p_max_mw == pytest.approx(hi)
    prices = [blk.price_usd_per_mwh for blk in curve.blocks]
    assert prices == sorted(prices)
    n = b.params.price_blocks
    assert max(prices[:n]) < min(prices[n:])  # charge blocks below discharge blocks
    # emptier battery asks more for discharging
    low = make_battery(soc0=0.2).offer(iv, NO_CONDITIONS)
    assert low.blocks[-1].price_usd_per_mwh > curve.blocks[-1].price_usd_per_mwh


battery_params = st.builds(
    BatteryParams,
    power_mw=st.floats(0.0, 5.0),
    energy_mwh=st.floats(0.1, 10.0),
    eta_charge=st.floats(0.5, 1.0),
    eta_discharge=st.floats(0.5, 1.0),
    soc_min_pu=st.floats(0.0, 0.4),
    soc_max_pu=st.floats(0.6, 1.0),
    water_value_spread=st.floats(0.0, 2.0),
    degradation_cost_usd_per_mwh=st.floats(0.0, 20.0),
    price_blocks=st.integers(1, 4),
)


@settings(max_examples=60, deadline=None)
@given(
    params=battery_params,
    soc0=st.floats(0.0, 1.0),
    awards=st.lists(st.floats(-0.3, 1.3), min_size=1, max_size=60),
    duration=st.sampled_from([5.0, 15.0, 60.0]),
)
def test_random_awards_keep_soc_and_energy_balance(params, soc0, awards, duration):
    e0 = params.e_min_mwh + soc0 * (params.e_max_mwh - params.e_min_mwh)
    b = Battery("b", 1, params, BatteryState(e0))
    assert b.initial_stored_energy_mwh == e0
    iv = Interval(0, duration)
    cost = 0.0
    for frac in awards:
        curve = b.offer(iv, NO_CONDITIONS)
        lo, hi = b.feasible_range(iv, NO_CONDITIONS)
        assert curve.p_min_mw == pytest.approx(lo, abs=TOL)
        assert curve.p_max_mw == pytest.approx(hi, abs=TOL)
        assert -params.power_mw - TOL <= lo <= 0.0 <= hi <= params.power_mw + TOL
        r = b.dispatch(lo + frac * (hi - lo), iv, NO_CONDITIONS)  # frac outside [0,1] is clipped
        assert lo - TOL <= r.p_mw <= hi + TOL
        assert params.e_min_mwh - TOL <= b.state.energy_mwh <= params.e_max_mwh + TOL
        assert r.cost_usd == pytest.approx(
            params.degradation_cost_usd_per_mwh * abs(r.energy_mwh), abs=TOL
        )
        cost += r.cost_usd
        iv = iv.next()
    s = b.state
    expected = e0 + params.eta_charge * s.charged_mwh - s.discharged_mwh / params.eta_discharge
    assert s.energy_mwh == pytest.approx(expected, abs=TOL)
    assert b.stored_energy_mwh == s.energy_mwh
    assert b.initial_stored_energy_mwh == e0
    throughput = s.charged_mwh + s.discharged_mwh
    assert cost == pytest.approx(params.degradation_cost_usd_per_mwh * throughput, abs=1e-6)


def test_invalid_params_rejected():
    with pytest.raises(ValueError, match="eta_charge"):
        BatteryParams(power_mw=1.0, energy_mwh=1.0, eta_charge=1.5)
    with pytest.raises(ValueError, match="SOC"):
        Battery("b", 0, BatteryParams(1.0, 1.0), BatteryState(energy_mwh=0.99))


def test_idle_battery_costs_nothing_whatever_its_soc():
    # one baseline: an idle battery costs exactly 0, even near empty, where its
    # forgone charging blocks have a high water value
    for soc0 in (0.1, 0.15, 0.5, 0.9):
        b = make_battery(soc0=soc0, deg=3.0)
        iv = Interval(0, 60.0)
        for _ in range(4):
            r = b.dispatch(0.0, iv, NO_CONDITIONS)
            assert r.cost_usd == 0.0
            iv = iv.next()
        assert b.stored_energy_mwh == b.initial_stored_energy_mwh == soc0 * 2.0


def test_degradation_cost_of_grid_side_throughput_by_hand():
    b = make_battery(power=1.0, energy=4.0, eta_c=0.9, eta_d=0.8, soc0=0.5, deg=3.0)
    assert b.initial_stored_energy_mwh == pytest.approx(2.0)
    # charging 1 MW for one hour: 1 MWh from the grid costs 3 $ (not 0.9 * 3: grid side)
    r = b.dispatch(-1.0, Interval(0, 60.0), NO_CONDITIONS)
    assert r.cost_usd == pytest.approx(3.0, abs=1e-12)
    assert b.stored_energy_mwh == pytest.approx(2.9, abs=1e-12)  # stored, not times eta_d
    assert b.initial_stored_energy_mwh == pytest.approx(2.0)
    # discharging 0.8 MW for 30 min: 0.4 MWh to the grid costs 1.2 $ (positive, not net)
    r = b.dispatch(0.8, Interval(2, 30.0), NO_CONDITIONS)
    assert r.cost_usd == pytest.approx(1.2, abs=1e-12)
    assert b.stored_energy_mwh == pytest.approx(2.9 - 0.4 / 0.8, abs=1e-12)
    # a set-point beyond the power limit is clipped: cost of what was done (1 MW, 15 min)
    r = b.dispatch(5.0, Interval(8, 15.0), NO_CONDITIONS)
    assert r.p_mw == 1.0
    assert r.cost_usd == pytest.approx(0.75, abs=1e-12)
