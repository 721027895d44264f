"""Hand-checkable planner cases: optima computed by hand in each test."""

from __future__ import annotations

import pytest

from conftest import simple_config, two_bus
from gridlayers.planner import build_model, solve_model
from gridlayers.planner.config import capital_recovery_factor
from gridlayers.planner.report import summarize_model
from gridlayers.planner.toy import toy_inputs

DAYS_PER_YEAR = 365.0


#: Both solve methods must reach the hand-computed optima.
METHODS = ["monolithic", "benders"]


def solve(inputs, config):  # noqa: ANN001, ANN201
    m = build_model(inputs, config)
    res = solve_model(m, mip_gap=config.mip_gap, method=config.solve_method)
    assert res.method == config.solve_method
    return m, res, summarize_model(m, inputs, config)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("big_m_mode", ["reference", "tight"])
@pytest.mark.parametrize("length_miles", [40.0, 80.0])
def test_two_bus_corridor_upgrade_built_iff_cheaper(
    length_miles: float, big_m_mode: str, method: str
) -> None:
    # Without upgrade: 50 MW from A at 10 and 50 MW at B at 50 for 365 h/yr.
    no_upgrade = DAYS_PER_YEAR * (50 * 10 + 50 * 50)
    # With upgrade (second 50 MW circuit): all 100 MW from A + annuity of 3888.5 $/MW-mile.
    crf = 0.05 * 1.05**30 / (1.05**30 - 1)
    upgrade_capex = 3888.5 * 50.0 * length_miles
    with_upgrade = DAYS_PER_YEAR * 100 * 10 + crf * upgrade_capex
    # Break-even length: 730000 / (crf * 3888.5 * 50) = 57.7 miles.
    config = simple_config(big_m_mode=big_m_mode, solve_method=method)
    m, res, summary = solve(two_bus(length_miles), config)
    expected = min(no_upgrade, with_upgrade)
    assert res.objective == pytest.approx(expected, rel=1e-7)
    built = length_miles < 57.7
    assert [u["line"] for u in summary["upgrades"]] == ([1] if built else [])
    flow = m.FlowExisting[1, 1, 1, 1].value + m.FlowUpgrade[1, 1, 1, 1].value
    assert flow == pytest.approx(100.0 if built else 50.0, abs=1e-6)
    assert summary["hard_cost_busd"] == pytest.approx(expected / 1e9, rel=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_offshore_node_gets_cheapest_sufficient_cable(method: str) -> None:
    # Offshore node O with 300 MW wind must export >= 150 MW (curtailment <= 50%)
    # and must be connected in epoch 1: the cheapest cable is the 400 MW HVAC.
    length = 10.0
    inputs = toy_inputs(
        demand_mw={"O": [0.0], "A": [400.0]},
        units=[{"zone": "A", "pmax_mw": 500.0, "cost_usd_per_mwh": 1.0}],
        lines=[
            {
                "from_zone": "O",
                "to_zone": "A",
                "x_pu": 0.001,
                "s_max_mw": 0.0,
                "length_miles": length,
                "kind": "offshore",
            }
        ],
        offshore_zones=["O"],
        existing_re_mw={"O": [300.0]},
    )
    m, res, summary = solve(inputs, simple_config(solve_method=method))
    # Reference cost curve of the 400 MW HVAC cable in $ million with L in miles.
    cable_musd = 0.022876 * length**2 + 1.5093 * length + 40.131
    crf = capital_recovery_factor(0.05, 30)
    energy = DAYS_PER_YEAR * (400.0 - 300.0) * 1.0  # all wind exported, rest from A
    assert res.objective == pytest.approx(crf * cable_musd * 1e6 + energy, rel=1e-4)
    assert [(c["line"], c["type"]) for c in summary["cables"]] == [(1, "hvac400")]


@pytest.mark.parametrize("method", METHODS)
def test_battery_arbitrage_between_two_hours(method: str) -> None:
    # Hour 1: 50 MW load; hour 2: 250 MW. Cheap unit 10 $/MWh (200 MW), dear 100 $/MWh.
    # Cyclic SoC, eta_c = eta_d = 0.86: discharging 1 MWh needs 1/0.7396 MWh charged.
    # Charge <= P binds: dis2 = 0.7396 P; value per MW of P
    #   365 * (100 * 0.7396 - 10) = 23345 $/MW-yr > battery cost -> P = 50 / 0.7396.
    costs = {"CE": 2.0, "CP": 5.0, "fom_battery": 10.0}  # $/kWh, $/kW, $/kW-yr
    inputs = toy_inputs(
        demand_mw={"A": [50.0, 250.0]},
        units=[
            {"zone": "A", "pmax_mw": 200.0, "cost_usd_per_mwh": 10.0},
            {"zone": "A", "pmax_mw": 200.0, "cost_usd_per_mwh": 100.0},
        ],
        costs=costs,
    )
    config = simple_config(
        battery=True,
        battery_soc_mode="cyclic",
        battery_min_soc_share=0.0,
        battery_initial_soc_share=0.5,
        solve_method=method,
    )
    m, res, summary = solve(inputs, config)
    rt = 0.86 * 0.86
    p_mw = 50.0 / rt
    crf = capital_recovery_factor(0.05, 30)
    battery_cost = crf * 1000.0 * (4 * 2.0 + 5.0) + 1000.0 * 10.0  # $/MW-yr
    energy = DAYS_PER_YEAR * 10.0 * (50.0 + p_mw + 200.0)
    assert summary["capacity_mw"]["battery"] == pytest.approx(p_mw, rel=1e-6)
    assert res.objective == pytest.approx(energy + battery_cost * p_mw, rel=1e-7)
    assert m.Discharge[1, "A", 1, 2].value == pytest.approx(50.0, rel=1e-6)


def test_battery_not_built_when_too_expensive() -> None:
    inputs = toy_inputs(
        demand_mw={"A": [50.0, 250.0]},
        units=[
            {"zone": "A", "pmax_mw": 200.0, "cost_usd_per_mwh": 10.0},
            {"zone": "A", "pmax_mw": 200.0, "cost_usd_per_mwh": 100.0},
        ],
        costs={"CE": 2.0, "CP": 5.0, "fom_battery": 30.0},  # 30845 > 23345 $/MW-yr
    )
    config = simple_config(
        battery=True,
        battery_soc_mode="cyclic",
        battery_min_soc_share=0.0,
        battery_initial_soc_share=0.5,
    )
    _m, res, summary = solve(inputs, config)
    assert summary["capacity_mw"]["battery"] == pytest.approx(0.0, abs=1e-6)
    assert res.objective == pytest.approx(DAYS_PER_YEAR * (50 * 10 + 200 * 10 + 50 * 100), rel=1e-9)


def test_externality_weight_switches_dispatch() -> None:
    # Coal 20 $/MWh emitting 1 t/MWh vs gas 40 $/MWh clean; CO2 at 51 $/t.
    inputs = toy_inputs(
        demand_mw={"A": [100.0]},
        units=[
            {"zone": "A", "pmax_mw": 100.0, "cost_usd_per_mwh": 20.0, "co2_t_per_mwh": 1.0},
            {"zone": "A", "pmax_mw": 100.0, "cost_usd_per_mwh": 40.0},
        ],
    )
    for mo, cost in ((False, 20.0), (True, 40.0)):
        _m, res, summary = solve(inputs, simple_config(multi_objective=mo, air_quality=False))
        assert res.objective == pytest.approx(DAYS_PER_YEAR * 100 * cost, rel=1e-9)
        co2 = 0.0 if mo else DAYS_PER_YEAR * 100
        assert summary["carbon_cost_busd"] == pytest.approx(51.0 * co2 / 1e9, rel=1e-9)


def test_flexible_demand_blocks_priced_in_order() -> None:
    # Hour 1: 100 MW, hour 2: 110 MW; cheap unit 105 MW at 10 $/MWh, dear unit 4000 $/MWh.
    # alpha = 0.1: four blocks of alpha L / 4 = 2.5 MW (h1) and 2.75 MW (h2).
    # WTP_1 = (5000 - 402.1) / 12, WTP_2 = (5000 - 402.1) / 8 (< 4000): shifting 5 MW
    # from h2 to h1 is cheaper than the dear unit, using blocks 1 then 2 on both sides.
    inputs = toy_inputs(
        demand_mw={"A": [100.0, 110.0]},
        units=[
            {"zone": "A", "pmax_mw": 105.0, "cost_usd_per_mwh": 10.0},
            {"zone": "A", "pmax_mw": 50.0, "cost_usd_per_mwh": 4000.0},
        ],
    )
    _m, res, _s = solve(inputs, simple_config(demand_flexibility=True, alpha_flex=0.1))
    wtp1, wtp2 = (5000 - 402.1) / 12, (5000 - 402.1) / 8
    shift_cost = (2.5 * wtp1 + 2.5 * wtp2) + (2.75 * wtp1 + 2.25 * wtp2)
    expected = DAYS_PER_YEAR * (10.0 * 210.0 + shift_cost)
    assert res.objective == pytest.approx(expected, rel=1e-9)
    assert _m.FlexDemand[1, "A", 1, 2].value == pytest.approx(-5.0, abs=1e-7)


def test_highs_options_override_defaults_and_reject_unknown_names() -> None:
    inputs = two_bus(40.0)
    config = simple_config()
    base = solve_model(build_model(inputs, config), mip_gap=1e-9)
    # HiGHS default scaling (2) instead of DEFAULT_HIGHS_OPTIONS: same optimum.
    other = solve_model(
        build_model(inputs, config), mip_gap=1e-9, highs_options={"simplex_scale_strategy": 2}
    )
    assert other.objective == pytest.approx(base.objective, rel=1e-9)
    with pytest.raises(ValueError, match="no_such_option"):
        solve_model(build_model(inputs, config), highs_options={"no_such_option": 1})


def test_solve_relaxation_reports_lp_bound() -> None:
    # Corridor upgrade at 40 miles: the MIP builds it; the LP relaxation can only be cheaper.
    inputs = two_bus(40.0)
    config = simple_config()
    mip = solve_model(build_model(inputs, config), mip_gap=1e-9)
    lp = solve_model(build_model(inputs, config), highs_options={"solve_relaxation": True})
    assert lp.mip_gap == 0.0
    assert lp.bound == lp.objective
    assert lp.objective <= mip.objective * (1 + 1e-9)


def test_benders_master_failures_are_reported_not_mistaken_for_infeasibility(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A master LP that fails at every tree node: a clear error naming the cause."""
    import gridlayers.planner.benders as benders
    from gridlayers.planner.benders_blocks import BendersError
    from gridlayers.planner.solve import PlannerSolveError

    real = benders.branch_and_cut
    real_heuristic = benders.rounding_heuristic

    def fail() -> None:
        msg = "Benders master LP has no solution (Solve error)"
        raise BendersError(msg)

    def failing_heuristic(run, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        # The master fails from the end of the LP phase on: the rounding heuristic
        # gives up quietly (no plan), and every tree node is abandoned.
        run.master.solve = fail
        return real_heuristic(run, *args, **kwargs)

    def failing_tree(run, mip_gap, max_iterations=None):  # noqa: ANN001, ANN202
        run.master.solve = fail
        return real(run, mip_gap, max_iterations)

    monkeypatch.setattr(benders, "rounding_heuristic", failing_heuristic)
    monkeypatch.setattr(benders, "branch_and_cut", failing_tree)
    config = simple_config(solve_method="benders")
    m = build_model(two_bus(40.0), config)
    with pytest.raises(PlannerSolveError, match="abandoned after master LP failures"):
        solve_model(m, mip_gap=config.mip_gap, method="benders")
