"""Battery: exact energy accounting, SOC bounds, monotone offers within limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlayers.der import NO_CONDITIONS, Battery, BatteryParams, BatteryState, Interval

TOL = 1e-9


def make_battery(power=1.0, energy=2.0, eta_c=0.9, eta_d=0.8, soc0=0.5, lo=0.1, hi=0.9):
    params = BatteryParams(
        power_mw=power,
        energy_mwh=energy,
        eta_charge=eta_c,
        eta_discharge=eta_d,
        soc_min_pu=lo,
        soc_max_pu=hi,
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
    iv = Interval(0, duration)
    for frac in awards:
        curve = b.offer(iv, NO_CONDITIONS)
        lo, hi = b.feasible_range(iv, NO_CONDITIONS)
        assert curve.p_min_mw == pytest.approx(lo, abs=TOL)
        assert curve.p_max_mw == pytest.approx(hi, abs=TOL)
        assert -params.power_mw - TOL <= lo <= 0.0 <= hi <= params.power_mw + TOL
        r = b.dispatch(lo + frac * (hi - lo), iv, NO_CONDITIONS)  # frac outside [0,1] is clipped
        assert lo - TOL <= r.p_mw <= hi + TOL
        assert params.e_min_mwh - TOL <= b.state.energy_mwh <= params.e_max_mwh + TOL
        iv = iv.next()
    s = b.state
    expected = e0 + params.eta_charge * s.charged_mwh - s.discharged_mwh / params.eta_discharge
    assert s.energy_mwh == pytest.approx(expected, abs=TOL)


def test_invalid_params_rejected():
    with pytest.raises(ValueError, match="eta_charge"):
        BatteryParams(power_mw=1.0, energy_mwh=1.0, eta_charge=1.5)
    with pytest.raises(ValueError, match="SOC"):
        Battery("b", 0, BatteryParams(1.0, 1.0), BatteryState(energy_mwh=0.99))
