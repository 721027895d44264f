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
    unmet = 0.0
    for frac in fracs:
        curve = fleet.offer(iv, NO_CONDITIONS)
        lo, hi = fleet.feasible_range(iv, NO_CONDITIONS)
        assert curve.p_min_mw == pytest.approx(lo, abs=TOL)
        assert curve.p_max_mw == pytest.approx(hi, abs=TOL)
        before = fleet.state.delivered_mwh.copy()
        r = fleet.dispatch(lo + frac * (hi - lo), iv, NO_CONDITIONS)
        assert r.p_mw == pytest.approx(lo + frac * (hi - lo), abs=TOL)
        # the deadline floor is hard: followed set-points never leave avoidable shortfall
        assert r.cost_usd == 0.0
        unmet += r.unmet_mwh
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
    unmet_by_session = fleet.unmet_need_mwh(iv.start_min)
    assert np.all(unmet_by_session[done] <= TOL)
    assert unmet == pytest.approx(unmet_by_session.sum(), abs=1e-6)
    now = s.departure_min > iv.start_min
    assert fleet.stored_energy_mwh == pytest.approx(
        delivered[now].sum() / params.charge_efficiency, abs=TOL
    )
    assert fleet.state.charged_mwh * params.charge_efficiency == pytest.approx(
        delivered.sum(), abs=TOL
    )


def sessions_fleet(rows, eta=1.0, penalty=100.0):
    """Fleet from ``(arrival_min, departure_min, need_mwh, charger_mw)`` rows."""
    params = EVFleetParams(
        n_vehicles=len(rows), charge_efficiency=eta, unmet_energy_penalty_usd_per_mwh=penalty
    )
    arr, dep, need, charger = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    sessions = EVSessions(np.arange(len(rows)), arr, dep, need, charger)
    return EVFleet("ev", 4, params, sessions)


def test_default_penalty():
    assert EVFleetParams(n_vehicles=1).unmet_energy_penalty_usd_per_mwh == 500.0
    with pytest.raises(ValueError, match="unmet_energy_penalty"):
        EVFleetParams(n_vehicles=1, unmet_energy_penalty_usd_per_mwh=-1.0)


def test_avoidable_shortfall_is_charged_once_in_the_departure_interval():
    # session 0: 00:00-02:00, needs 2 MWh at 4 MW (feasible); session 1 leaves at 05:00,
    # after the last dispatched interval (03:00-04:00)
    fleet = sessions_fleet([(0, 120, 2.0, 4.0), (0, 300, 1.0, 1.0)])
    r = fleet.dispatch(0.0, Interval(0, 60.0), NO_CONDITIONS)  # nothing forced yet
    assert r.p_mw == 0.0
    assert (r.cost_usd, r.unmet_mwh) == (0.0, 0.0)
    # 01:00-02:00 is not dispatched (the fleet does nothing); session 0 leaves at 02:00
    r = fleet.dispatch(0.0, Interval(2, 60.0), NO_CONDITIONS)
    assert r.unmet_mwh == pytest.approx(2.0)
    assert r.cost_usd == pytest.approx(100.0 * 2.0)
    r = fleet.dispatch(0.0, Interval(3, 60.0), NO_CONDITIONS)  # never again
    assert (r.cost_usd, r.unmet_mwh) == (0.0, 0.0)
    assert fleet.state.cost_usd == pytest.approx(200.0)
    assert fleet.state.unmet_mwh == pytest.approx(2.0)
    # session 1 still needs energy but departs after the horizon: no penalty
    assert fleet.state.delivered_mwh[1] < 1.0


def test_unavoidable_shortfall_is_energy_not_cost():
    # needs 5 MWh in 1 h at 2 MW: charged at full power, 3 MWh could never be delivered
    fleet = sessions_fleet([(0, 60, 5.0, 2.0)])
    r = fleet.dispatch(0.0, Interval(0, 60.0), NO_CONDITIONS)
    assert r.p_mw == pytest.approx(-2.0)
    assert r.unmet_mwh == pytest.approx(3.0)
    assert r.cost_usd == 0.0


def test_run_starting_after_arrival_counts_only_the_plugged_time_in_the_run():
    # plugged 00:00-02:00, 2 MWh at 1 MW: feasible at arrival, but the run starts at
    # 01:00 with nothing delivered; 1 MWh is all the run could deliver
    fleet = sessions_fleet([(0, 120, 2.0, 1.0)])
    r = fleet.dispatch(0.0, Interval(1, 60.0), NO_CONDITIONS)
    assert r.p_mw == pytest.approx(-1.0)
    assert r.unmet_mwh == pytest.approx(1.0)
    assert r.cost_usd == 0.0


def test_sessions_gone_before_the_first_interval_are_ignored():
    fleet = sessions_fleet([(0, 60, 1.0, 1.0)])
    r = fleet.dispatch(0.0, Interval(2, 60.0), NO_CONDITIONS)
    assert (r.cost_usd, r.unmet_mwh) == (0.0, 0.0)


def test_stored_energy_is_grid_energy_drawn_for_sessions_still_plugged_in():
    fleet = sessions_fleet([(0, 120, 0.4, 1.0), (0, 600, 1.0, 0.5)], eta=0.8)
    assert fleet.stored_energy_mwh == 0.0
    assert fleet.initial_stored_energy_mwh == 0.0
    # 00:00-01:00 at 0.5 MW: all to session 0 (earliest departure), 0.4 MWh stored
    fleet.dispatch(-0.5, Interval(0, 60.0), NO_CONDITIONS)
    assert fleet.state.delivered_mwh == pytest.approx([0.4, 0.0])
    assert fleet.stored_energy_mwh == pytest.approx(0.5)  # 0.4 / 0.8 grid MWh
    # 01:00-02:00 at 0.25 MW to session 1; session 0 departs at 02:00
    r = fleet.dispatch(-0.25, Interval(1, 60.0), NO_CONDITIONS)
    assert r.cost_usd == 0.0
    assert fleet.state.time_min == 120.0
    assert fleet.stored_energy_mwh == pytest.approx(0.25)
    assert fleet.initial_stored_energy_mwh == 0.0
