"""EV fleet: every feasible session is fully charged by departure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlayers.der import (
    NO_CONDITIONS,
    EVFleet,
    EVFleetParams,
    EVSessions,
    Interval,
    generate_sessions,
)

TOL = 1e-9


def one_session_fleet(arr_min, dep_min, need_mwh, charger_mw=0.01, eta=1.0):
    params = EVFleetParams(n_vehicles=1, charge_efficiency=eta)
    sessions = EVSessions(
        vehicle=np.array([0]),
        arrival_min=np.array([float(arr_min)]),
        departure_min=np.array([float(dep_min)]),
        need_mwh=np.array([need_mwh]),
        charger_mw=np.array([charger_mw]),
    )
    return EVFleet("ev", 4, params, sessions)


def test_deadline_forces_charging():
    # 1 h plugged from 00:30 to 01:30, need 10 kWh at 10 kW: must charge at full power
    fleet = one_session_fleet(30, 90, 0.01)
    iv = Interval(2, 15.0)  # 00:30-00:45
    assert fleet.feasible_range(iv, NO_CONDITIONS) == pytest.approx((-0.01, -0.01))
    # with 2 h plugged, the first quarter hours are optional
    relaxed = one_session_fleet(30, 150, 0.01)
    lo, hi = relaxed.feasible_range(iv, NO_CONDITIONS)
    assert (lo, hi) == pytest.approx((-0.01, 0.0))
    # a vehicle present for half of the interval can draw at most half the energy
    half = one_session_fleet(37.5, 600, 0.05)
    assert half.feasible_range(iv, NO_CONDITIONS)[0] == pytest.approx(-0.005)


def test_sessions_are_deterministic_and_valid():
    p = EVFleetParams(n_vehicles=30, horizon_days=3)
    a, b = generate_sessions(p, 7), generate_sessions(p, 7)
    assert np.array_equal(a.arrival_min, b.arrival_min)
    assert np.array_equal(a.need_mwh, b.need_mwh)
    assert not np.array_equal(a.need_mwh, generate_sessions(p, 8).need_mwh)
    assert len(a) == 90
    assert np.all(a.departure_min > a.arrival_min)
    for v in range(30):
        arr = a.arrival_min[a.vehicle == v]
        dep = a.departure_min[a.vehicle == v]
        assert np.all(dep[:-1] <= arr[1:])  # sessions of one vehicle do not overlap


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 25),
    need=st.floats(1.0, 60.0),
    dep=st.floats(0.0, 23.9),
    duration=st.sampled_from([15.0, 60.0]),
    data=st.data(),
)
def test_feasible_sessions_complete_under_any_awards(seed, n, need, dep, duration, data):
    params = EVFleetParams(
        n_vehicles=n,
        energy_need_mean_kwh=need,
        departure_mean_h=dep,
        horizon_days=2,
    )
    fleet = EVFleet("ev", 1, params, generate_sessions(params, seed))
    steps = round(3 * 1440 / duration)
    fracs = data.draw(st.lists(st.floats(0.0, 1.0), min_size=steps, max_size=steps))
    iv = Interval(0, duration)
    s = fleet.sessions
    for frac in fracs:
        curve = fleet.offer(iv, NO_CONDITIONS)
        lo, hi = fleet.feasible_range(iv, NO_CONDITIONS)
        assert curve.p_min_mw == pytest.approx(lo, abs=TOL)
        assert curve.p_max_mw == pytest.approx(hi, abs=TOL)
        before = fleet.state.delivered_mwh.copy()
        r = fleet.dispatch(lo + frac * (hi - lo), iv, NO_CONDITIONS)
        assert r.p_mw == pytest.approx(lo + frac * (hi - lo), abs=TOL)
        x = fleet.state.delivered_mwh - before
        plugged_h = (
            np.maximum(
                np.minimum(iv.end_min, s.departure_min) - np.maximum(iv.start_min, s.arrival_min),
                0.0,
            )
            / 60.0
        )
        assert np.all(x >= -TOL)
        assert np.all(x <= params.charge_efficiency * s.charger_mw * plugged_h + TOL)
        iv = iv.next()
    delivered = fleet.state.delivered_mwh
    assert np.all(delivered <= s.need_mwh + TOL)
    done = fleet.feasible_sessions()
    assert np.all(delivered[done] >= s.need_mwh[done] - TOL)
    unmet = fleet.unmet_need_mwh(iv.start_min)
    assert np.all(unmet[done] <= TOL)
    assert fleet.state.charged_mwh * params.charge_efficiency == pytest.approx(
        delivered.sum(), abs=TOL
    )
