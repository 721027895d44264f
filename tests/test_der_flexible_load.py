"""Flexible load: shifted energy nets to zero at every day end."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlayers.der import DeviceConditions, FlexibleLoad, FlexibleLoadParams, Interval

TOL = 1e-9


def run_days(load, fracs, baselines, duration, offset=0.0, actual_delta=0.0):
    """Dispatch at fractions of the offered range; return (day, shift MWh) per interval."""
    iv = Interval(0, duration, offset)
    out = []
    for frac, b in zip(fracs, baselines, strict=False):
        fc = DeviceConditions(load_baseline_mw=b)
        act = DeviceConditions(load_baseline_mw=b + actual_delta)
        curve = load.offer(iv, fc)
        lo, hi = load.feasible_range(iv, fc)
        assert curve.p_min_mw == pytest.approx(lo, abs=TOL)
        assert curve.p_max_mw == pytest.approx(hi, abs=TOL)
        p_set = lo + frac * (hi - lo)
        r = load.dispatch(p_set, iv, act, fc)
        shift = -r.p_mw - act.load_baseline_mw
        assert -load.params.shift_down_max_mw - TOL <= shift <= load.params.shift_up_max_mw + TOL
        cost = load.params.shift_cost_usd_per_mwh * abs(shift) * iv.hours
        assert r.cost_usd == pytest.approx(cost, abs=TOL)
        carried = sum(e for d, e in out if d == iv.day) + shift * iv.hours
        expected = 0.0 if iv.remaining_in_day == 0 else carried
        assert load.stored_energy_mwh == pytest.approx(expected, abs=TOL)
        # set-points within the range are followed exactly (up to the baseline error)
        assert r.p_mw == pytest.approx(p_set - actual_delta, abs=TOL)
        out.append((iv.day, shift * iv.hours))
        iv = iv.next()
    return out


def daily_sums(records):
    sums = {}
    for day, e in records:
        sums[day] = sums.get(day, 0.0) + e
    return sums


def test_last_interval_is_forced():
    load = FlexibleLoad("f", 2, FlexibleLoadParams(shift_up_max_mw=1.0, shift_down_max_mw=1.0))
    iv = Interval(0, 60.0)
    fc = DeviceConditions(load_baseline_mw=2.0)
    for _ in range(23):
        lo, _hi = load.feasible_range(iv, fc)
        load.dispatch(lo, iv, fc)  # consume as much as allowed
        iv = iv.next()
    lo, hi = load.feasible_range(iv, fc)
    assert lo == pytest.approx(hi)
    # it consumed 1 MW extra for 12 h, then had to come back down for 11 h; 1 h left
    assert lo == pytest.approx(-(2.0 - 1.0))
    r = load.dispatch(lo, iv, fc)
    assert load.state.shifted_mwh == 0.0
    assert load.state.consumed_mwh == pytest.approx(48.0)
    assert r.p_mw == pytest.approx(-1.0)


def test_offer_prices_around_reference():
    p = FlexibleLoadParams(1.0, 0.5, reference_price_usd_per_mwh=40.0, shift_cost_usd_per_mwh=5.0)
    curve = FlexibleLoad("f", 2, p).offer(Interval(0), DeviceConditions(load_baseline_mw=2.0))
    assert curve.p_min_mw == pytest.approx(-3.0)
    assert [(b.quantity_mw, b.price_usd_per_mwh) for b in curve.blocks] == [
        (1.0, 35.0),
        (0.5, 45.0),
    ]


@settings(max_examples=50, deadline=None)
@given(
    up=st.floats(0.0, 2.0),
    down=st.floats(0.0, 2.0),
    energy=st.one_of(st.just(math.inf), st.floats(0.05, 5.0)),
    duration=st.sampled_from([15.0, 60.0]),
    offset_steps=st.integers(0, 5),
    data=st.data(),
)
def test_daily_neutrality_under_any_awards(up, down, energy, duration, offset_steps, data):
    n = round(1440 / duration) * 2 + 7
    fracs = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    baselines = data.draw(st.lists(st.floats(0.0, 3.0), min_size=n, max_size=n))
    delta = data.draw(st.floats(-0.5, 0.5))
    params = FlexibleLoadParams(up, down, shift_energy_max_mwh=energy)
    load = FlexibleLoad("f", 1, params)
    records = run_days(load, fracs, baselines, duration, offset_steps * duration, delta)
    sums = daily_sums(records)
    last_day = records[-1][0]
    for day, total in sums.items():
        if day != last_day:  # completed days
            assert total == pytest.approx(0.0, abs=TOL)
    assert load.state.neutrality_error_mwh == pytest.approx(0.0, abs=TOL)
    # cumulative shifted energy stays within its bound
    running = 0.0
    for i, (day, e) in enumerate(records):
        running = e if i == 0 or records[i - 1][0] != day else running + e
        assert abs(running) <= energy + TOL


def test_shift_up_then_back_costs_twice_the_shift():
    # 60-min intervals 22:00 and 23:00 (the last of the day, forced back to S = 0)
    p = FlexibleLoadParams(1.0, 1.0, shift_cost_usd_per_mwh=5.0)
    load = FlexibleLoad("f", 2, p)
    assert load.initial_stored_energy_mwh == 0.0
    fc = DeviceConditions(load_baseline_mw=2.0)
    act = DeviceConditions(load_baseline_mw=2.3)  # baseline forecast error: not a shift
    r = load.dispatch(-2.5, Interval(22, 60.0), act, fc)  # +0.5 MW for 1 h
    assert r.p_mw == pytest.approx(-2.8)
    assert r.cost_usd == pytest.approx(2.5, abs=1e-12)
    assert load.stored_energy_mwh == pytest.approx(0.5, abs=1e-12)  # consumed ahead
    r = load.dispatch(0.0, Interval(23, 60.0), act, fc)  # forced to s = -0.5 MW
    assert r.p_mw == pytest.approx(-1.8)
    assert r.cost_usd == pytest.approx(2.5, abs=1e-12)  # reductions cost too
    assert load.stored_energy_mwh == 0.0
    assert load.initial_stored_energy_mwh == 0.0


def test_following_the_baseline_costs_nothing():
    load = FlexibleLoad("f", 2, FlexibleLoadParams(1.0, 1.0, shift_cost_usd_per_mwh=5.0))
    iv = Interval(0, 15.0)
    for b in (2.0, 1.0, 3.0):
        fc = DeviceConditions(load_baseline_mw=b)
        # the realised baseline differs from the forecast; the shift is still 0
        r = load.dispatch(-b, iv, DeviceConditions(load_baseline_mw=b + 0.4), fc)
        assert r.cost_usd == 0.0
        assert load.stored_energy_mwh == 0.0
        iv = iv.next()
    # a reduction of 0.2 MW for 15 min held at the end of the horizon: 5 * 0.05 $
    r = load.dispatch(-0.8, iv, DeviceConditions(load_baseline_mw=1.0))
    assert r.cost_usd == pytest.approx(0.25, abs=1e-12)
    assert load.stored_energy_mwh == pytest.approx(-0.05, abs=1e-12)
