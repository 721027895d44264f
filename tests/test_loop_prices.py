"""Prices and congestion travel from a co-simulation back into the planner (unit level).

A hand-made co-simulation result (``lmp`` rows of a results store) and hand-made planner
zonal prices go through the loop's price mapping (:mod:`gridlayers.loop.prices`), the
damped update and the planner's price adder, each step checked against hand arithmetic.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from conftest import simple_config, two_bus
from gridlayers.loop.config import LoopConfig
from gridlayers.loop.prices import (
    bus_weights,
    operation_prices,
    plan_prices_by_bus,
    premium_by_hour,
    price_gaps,
)
from gridlayers.loop.update import damped_update
from gridlayers.planner import (
    InterfaceConfig,
    LDAConfig,
    LDAExtensionConfig,
    LDAOperationalParams,
    build_model,
    solve_model,
)
from gridlayers.planner.config import DERBatteryConfig, DERPVConfig, capital_recovery_factor
from gridlayers.planner.lda import update_operational
from gridlayers.planner.prices import zone_prices_usd_per_mwh
from gridlayers.planner.report import summarize_model
from gridlayers.planner.toy import toy_inputs
from gridlayers.results.store import ResultStore

DAY = 2  # planner day the co-simulation represents
A, B, C = 0, 1, 2  # transmission buses; zones "A", "B", "C"


def _store(tmp: Path) -> ResultStore:
    """Three buses, two quarter-hours in 05:00-06:00 and one in 06:00-07:00 (real time).

    05:00  A 10, B 30, C 20     05:15  A 10, B 50, C 20     06:00  all 20 $/MWh
    """
    store = ResultStore(tmp / "results.duckdb")
    t = dt.datetime(2016, 7, 21, 5)
    prices = {
        0: (t, {A: 10.0, B: 30.0, C: 20.0}),
        1: (t + dt.timedelta(minutes=15), {A: 10.0, B: 50.0, C: 20.0}),
        2: (t + dt.timedelta(hours=1), {A: 20.0, B: 20.0, C: 20.0}),
    }
    store.append(
        "lmp",
        [
            {
                "paradigm": "total_dso",
                "interval": k,
                "time": time,
                "bus": bus,
                "lmp_usd_per_mwh": lmp + 1.0,  # forward: 1 $/MWh above real time
                "lmp_rt_usd_per_mwh": lmp,
            }
            for k, (time, by_bus) in prices.items()
            for bus, lmp in by_bus.items()
        ],
    )
    return store


def test_operation_prices_and_premiums_by_hand(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        op = operation_prices(store, "total_dso")
    finally:
        store.close()
    rt = op["real_time"]
    assert rt.loc[5, B] == pytest.approx(40.0)  # mean of the two quarter-hours
    assert op["forward"].loc[5, B] == pytest.approx(41.0)
    assert op["congested_share"].loc[5, "share"] == 1.0
    assert op["congested_share"].loc[6, "share"] == 0.0
    # bulk load 50 MW at A and at B, none at C: the system price of hour 5 is 25 $/MWh
    weights = bus_weights({A: 50.0, B: 50.0, C: 0.0})
    assert weights == {A: 0.5, B: 0.5}
    premium = premium_by_hour(rt, weights)
    assert premium.loc[5].tolist() == pytest.approx([-15.0, 15.0, -5.0])
    assert premium.loc[6].tolist() == pytest.approx([0.0, 0.0, 0.0])


def test_price_gap_is_what_the_plan_did_not_price(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        rt = operation_prices(store, "total_dso")["real_time"]
    finally:
        store.close()
    # planner hour 6 is 05:00-06:00: A 10, B 20, C 15 -> system 15, premium of B +5
    zone_prices = {(z, DAY, h): 30.0 for z in "ABC" for h in range(1, 25)}
    zone_prices.update({("A", DAY, 6): 10.0, ("B", DAY, 6): 20.0, ("C", DAY, 6): 15.0})
    plan = plan_prices_by_bus(zone_prices, DAY, {"A": A, "B": B, "C": C})
    assert plan.loc[5, B] == 20.0
    gaps = price_gaps(rt, plan, {A: 0.5, B: 0.5}, {"lda_b": B, "lda_a": A})
    assert gaps["lda_b"]["operation"][5] == pytest.approx(15.0)
    assert gaps["lda_b"]["plan"][5] == pytest.approx(5.0)
    assert gaps["lda_b"]["gap"][5] == pytest.approx(10.0)
    assert gaps["lda_a"]["gap"][5] == pytest.approx(-15.0 - (-5.0))
    assert gaps["lda_b"]["gap"][6] == pytest.approx(0.0)
    assert gaps["lda_b"]["gap"][0] is None  # hour not co-simulated

    # the damped update carries the gap into the planner's price adder of that day and hour
    cfg = LoopConfig(days={DAY: dt.date(2016, 7, 21)}, damping=0.5, price_feedback=True)
    old = LDAOperationalParams(price_adder_usd_per_mwh={DAY: [2.0] * 24, 9: [1.0] * 24})
    measured = {
        "flex_share_by_hour": [None] * 24,
        "loss_factor": None,
        "cost_adder_usd_per_mwh": None,
        "price_gap_usd_per_mwh": {DAY: gaps["lda_b"]["gap"]},
    }
    new = damped_update(old, measured, cfg).price_adder_usd_per_mwh
    assert new[DAY][5] == pytest.approx(2.0 + 0.5 * (10.0 - 2.0))
    assert new[DAY][6] == pytest.approx(2.0 + 0.5 * (0.0 - 2.0))
    assert new[DAY][0] == 2.0  # not measured: kept
    assert new[9] == [1.0] * 24  # day not co-simulated: kept
    # without price_feedback the adder stays
    off = cfg.model_copy(update={"price_feedback": False})
    assert damped_update(old, measured, off).price_adder_usd_per_mwh == old.price_adder_usd_per_mwh


# ------------------------------------------------------------------ planner side

LOSS = 0.1
GRID_COST = 100.0


def _lda_model(adder: list[float] | None = None) -> tuple:
    """One zone, one hour, 100 MW inside one LDA, 60 MW interface (tests/test_planner_lda.py)."""
    lda = LDAConfig(
        name="feeder1",
        zone="Z",
        load_share=1.0,
        interface=InterfaceConfig(capacity_mw=60.0),
        pv=DERPVConfig(capex_usd_per_mw=1e6, fom_usd_per_mw_yr=0.0),
        battery=DERBatteryConfig(power_capex_usd_per_mw=1e9),
        operational=LDAOperationalParams(
            loss_factor=LOSS,
            price_adder_usd_per_mwh={} if adder is None else {1: adder},
        ),
    )
    config = simple_config(lda=LDAExtensionConfig(ldas=[lda]))
    inputs = toy_inputs(
        demand_mw={"Z": [100.0]},
        units=[{"zone": "Z", "pmax_mw": 1000.0, "cost_usd_per_mwh": GRID_COST}],
        cf_pv=[1.0],
    )
    return build_model(inputs, config), inputs, config


@pytest.mark.parametrize("adder", [-20.0, 0.0, 20.0])
def test_price_adder_prices_the_lda_net_import(adder: float) -> None:
    # The interface binds at 60 MW either way (PV at 93,679 $/MW-yr is dearer than import
    # while 365 (100 + adder) / 0.9 < 93,679): only the cost of the import moves.
    m, inputs, config = _lda_model([adder] * 24)
    res = solve_model(m, mip_gap=1e-9)
    pv_annuity = capital_recovery_factor(0.08, 25) * 1e6 * (100.0 - 60.0 * (1 - LOSS))
    expected = 365.0 * 60.0 * (GRID_COST + adder) + pv_annuity
    assert res.objective == pytest.approx(expected, rel=1e-7)
    summary = summarize_model(m, inputs, config)
    assert summary["cost_by_epoch_usd_per_yr"]["LDAPriceAdderCost"]["1"] == pytest.approx(
        365.0 * 60.0 * adder, abs=1e-6
    )


def test_price_adder_updates_in_place_and_moves_the_plan() -> None:
    # An adder of 200 $/MWh makes imported energy dearer (365 * 300 / 0.9 = 121,667 $/MW-yr)
    # than PV (93,679 $/MW-yr): PV now covers the whole 100 MW and the LDA imports nothing.
    m, inputs, config = _lda_model()
    update_operational(
        m,
        {
            "feeder1": LDAOperationalParams(
                loss_factor=LOSS, price_adder_usd_per_mwh={1: [200.0] * 24}
            )
        },
    )
    assert m.lda_price_adder["feeder1", 1, 1].value == 200.0
    res = solve_model(m, mip_gap=1e-9)
    assert res.objective == pytest.approx(capital_recovery_factor(0.08, 25) * 1e6 * 100.0, rel=1e-7)
    out = summarize_model(m, inputs, config)["ldas"]["feeder1"]
    assert out["der_pv_mw"] == pytest.approx(100.0, rel=1e-7)
    assert out["interface_peak_import_mw"] == pytest.approx(0.0, abs=1e-6)


def test_planner_zone_prices_are_the_marginal_costs() -> None:
    # Two zones, 50 MW corridor: A's 10 $/MWh unit serves B up to the limit, B's 50 $/MWh
    # unit the rest -> prices 10 and 50 in hour 1 (100 MW at B), 10 and 10 in hour 2 (30 MW).
    inputs = two_bus(100.0, load_mw=[100.0, 30.0])
    for config in (simple_config(), simple_config(n_epochs=2, epoch_years=5, obj_scale=1e-3)):
        m = build_model(inputs, config)
        solve_model(m, mip_gap=1e-9)
        prices = zone_prices_usd_per_mwh(m, config.obj_scale)
        assert prices["A", 1, 1] == pytest.approx(10.0, rel=1e-9)
        assert prices["B", 1, 1] == pytest.approx(50.0, rel=1e-9)
        assert prices["B", 1, 2] == pytest.approx(10.0, rel=1e-9)
