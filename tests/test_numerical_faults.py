"""Numerical faults: each is survived, named, recorded as an event and counted (issue 14.2).

Domain tests on hand-sized systems (the rural SimBench feeder with a DSO, a 3-bus
transmission triangle) plus one short co-simulation of the bundled default scenario with
an injected power-flow non-convergence and a NaN forecast in one LDA.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from conftest import RURAL, rural_linear_feeder
from gridlayers.domain import BidBlock, BidCurve
from gridlayers.dso import DSOOperator
from gridlayers.dso.faults import DSOBadCoefficientError, DSOTimeLimitError
from gridlayers.grid.networks import simbench_feeder
from gridlayers.market import ClearingError, TransmissionMarket
from gridlayers.numerics import FAULT_KINDS, bad_bounds, bad_values

LMP = 50.0

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# ------------------------------------------------------------------------- power flow
def test_failed_power_flow_is_retried_from_a_flat_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm start fails (forced), the flat-start retry converges to the normal answer."""
    from gridlayers.grid import Feeder
    from gridlayers.grid.acpf import ACPowerFlow
    from gridlayers.scenarios.schema import LimitsConfig

    net, _ = simbench_feeder(RURAL)
    loads = (net.load.p_mw.to_numpy() * 1.5, net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy())
    expected = Feeder(net, LimitsConfig()).run(*loads)
    real_solve, calls = ACPowerFlow.solve, []

    def warm_start_fails(self, *args, flat_start=False, max_iteration=10):  # noqa: ANN001, ANN202
        calls.append(flat_start)
        return real_solve(self, *args, flat_start=flat_start,
                          max_iteration=max_iteration if flat_start else 0)  # fmt: skip

    monkeypatch.setattr(ACPowerFlow, "solve", warm_start_fails)
    result = Feeder(net, LimitsConfig()).run(*loads)
    assert calls == [False, True]
    assert result.converged
    assert result.retried
    assert result.p_import_mw == pytest.approx(expected.p_import_mw, abs=1e-8)


def test_pandapower_backend_retries_from_a_cold_start_that_converges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The warm ``runpp`` fails (forced); the cold retry converges across the 150 deg shift.

    A flat start (every angle 0 deg) never converges on SimBench feeders; the retry must
    start from angles that include the transformer's phase shift.
    """
    from gridlayers.grid import Feeder
    from gridlayers.scenarios.schema import LimitsConfig

    net, _ = simbench_feeder(RURAL)
    assert (net.trafo.shift_degree == 150.0).all()  # the case the retry must handle
    loads = (net.load.p_mw.to_numpy() * 1.5, net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy())
    feeder = Feeder(net, LimitsConfig(), backend="pandapower")
    expected = feeder.run(*loads)
    real_runpp, inits = pp.runpp, []

    def warm_start_fails(net, **kwargs):  # noqa: ANN001, ANN003, ANN202
        inits.append(kwargs.get("init", "recycle" if "recycle" in kwargs else "auto"))
        if "recycle" in kwargs:
            raise pp.LoadflowNotConverged("forced")
        return real_runpp(net, **kwargs)

    monkeypatch.setattr(pp, "runpp", warm_start_fails)
    result = feeder.run(*loads)
    assert inits[0] == "recycle"
    assert len(inits) == 2
    assert result.converged
    assert result.retried
    assert result.p_import_mw == pytest.approx(expected.p_import_mw, abs=1e-8)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def feeder_case() -> dict:
    """Rural feeder, band [0.9525, 1.0475] pu, a PV and a battery at the two weakest buses.

    ``infeasible``: 5 MW of uncontrolled PV at the weakest bus (no dispatch keeps the band).
    """
    net, feeder, p, q = rural_linear_feeder()
    vm = feeder.solve_power_flow(p, q).vm_pu.sort_values()
    weak, weak2 = int(vm.index[0]), int(vm.index[1])
    battery = BidCurve(-1.0, (BidBlock(1.0, 20.0), BidBlock(1.0, 60.0)))
    return {
        "feeder": feeder,
        "devices": {"pv": weak, "bat": weak2},
        "p": p,
        "q": q,
        "weak": weak,
        "offers": {"pv": BidCurve(0.0, (BidBlock(3.0, 1.0),)), "bat": battery},
        "p_infeasible": p.add(pd.Series({weak: 5.0}), fill_value=0.0),
    }


def _timeless(vr: object) -> object:
    """The result without its wall time (the only field that may differ between runs)."""
    return dataclasses.replace(vr, solve_seconds=0.0)


def _dso(case: dict, **kwargs: object) -> DSOOperator:
    return DSOOperator(case["feeder"], case["devices"], **kwargs)


def _triangle(load_mw: float = 100.0, gen_min_mw: float = 0.0) -> pp.pandapowerNet:
    """3-bus triangle (as tests/test_market_updates.py); ``gen_min_mw``: must-run at bus 1."""
    net = pp.create_empty_network(sn_mva=100.0)
    buses = [pp.create_bus(net, vn_kv=110.0) for _ in range(3)]
    for f, t in [(0, 1), (1, 2), (0, 2)]:
        i_ka = 50.0 / (110.0 * math.sqrt(3)) if (f, t) == (0, 2) else 10.0
        pp.create_line_from_parameters(
            net, buses[f], buses[t], length_km=1.0, r_ohm_per_km=0.0, x_ohm_per_km=0.4,
            c_nf_per_km=0.0, max_i_ka=i_ka, max_loading_percent=100.0,
        )  # fmt: skip
    pp.create_ext_grid(net, buses[0], min_p_mw=0.0, max_p_mw=200.0)
    pp.create_gen(net, buses[1], p_mw=0.0, min_p_mw=gen_min_mw, max_p_mw=200.0, controllable=True)
    pp.create_load(net, buses[2], p_mw=load_mw)
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=10.0)
    pp.create_poly_cost(net, 0, "gen", cp1_eur_per_mw=30.0)
    return net


# ---------------------------------------------------------------------------- checks
def test_value_checks_find_nan_inf_and_extreme_entries() -> None:
    values = np.array([1.0, np.nan, -np.inf, 2e9, -1e9, 0.0])
    assert bad_values(values).tolist() == [1, 2, 3]
    lower = np.array([-np.inf, 0.0, np.nan, np.inf, -5e9])
    upper = np.array([np.inf, 1.0, 1.0, np.inf, 0.0])
    assert bad_bounds(lower, upper).tolist() == [2, 3, 4]  # NaN, +inf lower, extreme


# --------------------------------------------------------------------- DSO infeasible
def test_infeasible_dso_names_the_voltage_limits_and_uses_slack(feeder_case: dict) -> None:
    dso = _dso(feeder_case)
    vr = dso.virtual_resource(feeder_case["p_infeasible"], feeder_case["q"], feeder_case["offers"])
    assert vr.slack is not None  # slack at the configured penalty
    assert vr.slack["buses"] > 0
    failure = vr.hard_limit_failure
    assert "provenInfeasible" in failure
    assert "conflicting constraints: voltage upper limits at buses" in failure
    assert "thermal" not in failure  # only the family at fault
    assert "balance" not in failure
    dis = dso.disaggregate(vr.p_min_mw, LMP)
    assert "voltage upper limits at buses" in dis.hard_limit_failure
    assert dis.slack is not None


def test_infeasible_redispatch_names_the_voltage_limits(feeder_case: dict) -> None:
    dso = _dso(feeder_case)
    setpoints = {"pv": 3.0, "bat": 1.0}
    red = dso.redispatch(
        setpoints, feeder_case["p_infeasible"], feeder_case["q"], feeder_case["offers"], LMP
    )
    assert red.slack is not None
    assert "voltage upper limits at buses" in red.hard_limit_failure


# ------------------------------------------------------------------- bad coefficients
def test_nan_forecast_is_rejected_naming_the_row_and_nothing_is_lost(feeder_case: dict) -> None:
    """A NaN forecast never reaches HiGHS; the next interval equals a DSO that never saw it."""
    p, q, offers = feeder_case["p"], feeder_case["q"], feeder_case["offers"]
    dso, clean = _dso(feeder_case), _dso(feeder_case)
    first = dso.virtual_resource(p, q, offers)
    assert _timeless(clean.virtual_resource(p, q, offers)) == _timeless(first)
    bad = p.copy()
    bad[feeder_case["weak"]] = np.nan
    node = feeder_case["feeder"].bus_node_bus[feeder_case["weak"]]
    with pytest.raises(DSOBadCoefficientError, match=rf"row 'feeder\.PBalance\[{node}\]' \(nan\)"):
        dso.virtual_resource(bad, q, offers)
    with pytest.raises(DSOBadCoefficientError, match="interval rejected"):  # not last interval's
        dso.disaggregate(first.p_min_mw, LMP)
    p2 = p * 1.1
    after, expected = dso.virtual_resource(p2, q, offers), clean.virtual_resource(p2, q, offers)
    # bit for bit: HiGHS never saw the rejected interval
    assert _timeless(after) == _timeless(expected)
    assert (
        dso.disaggregate(after.p_max_mw, LMP).setpoints_mw
        == clean.disaggregate(after.p_max_mw, LMP).setpoints_mw
    )


@pytest.mark.parametrize("value", [float("inf"), 1e16, float("nan")])
def test_bad_coefficient_is_rejected_before_highs_naming_row_and_column(
    feeder_case: dict, value: float
) -> None:
    """A bad loss coefficient (the update-in-place path) is refused; HiGHS keeps its model."""
    p, q, offers = feeder_case["p"], feeder_case["q"], feeder_case["offers"]
    dso = _dso(feeder_case)
    dso.virtual_resource(p, q, offers)
    highs = dso._lp.solver._solver_model  # noqa: SLF001
    before = np.array(highs.getLp().a_matrix_.value_)
    branch = feeder_case["feeder"].buses[5]
    dso.model.feeder.loss_coef_p_per_mw[branch]._value = value  # as a bad push would carry it
    dso._params_changed = True  # noqa: SLF001
    with pytest.raises(DSOBadCoefficientError) as info:
        dso._solve(dso.model.MinExport)  # noqa: SLF001
    message = str(info.value)  # e.g. "row 'feeder.PBalance[30]', column 'feeder.BranchP[30]'"
    assert f"[{branch}]', column 'feeder.BranchP[{branch}]' coefficient" in message
    assert message.startswith("model 'gridlayers_dso': non-finite or extreme value in row")
    assert info.value.kind == "bad_coefficient"
    np.testing.assert_array_equal(np.array(highs.getLp().a_matrix_.value_), before)


# -------------------------------------------------------------------------- time limit
def test_dso_time_limit_is_reported_not_slack_and_lifted_afterwards(feeder_case: dict) -> None:
    p, q, offers = feeder_case["p"], feeder_case["q"], feeder_case["offers"]
    dso = _dso(feeder_case)
    expected = dso.virtual_resource(p, q, offers)
    dso._lp.solver.config.time_limit = 1e-12  # noqa: SLF001 - inject a tiny limit
    with pytest.raises(DSOTimeLimitError, match="time limit") as info:
        dso.virtual_resource(feeder_case["p_infeasible"], q, offers)  # would take slack
    assert info.value.kind == "solver_time_limit"
    assert dso._soft is None  # noqa: SLF001 - the soft-limit fallback was not used
    dso._lp.solver.config.time_limit = None  # noqa: SLF001
    assert dso.virtual_resource(p, q, offers).curve == expected.curve


def test_market_time_limit_is_retried_from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    import highspy

    import gridlayers.market.clearing as clearing

    market = TransmissionMarket(_triangle())
    first = market.clear()
    real_run, calls = clearing.run, []

    def timing_out_once(solver: object) -> object:
        calls.append(1)
        return highspy.HighsModelStatus.kTimeLimit if len(calls) == 1 else real_run(solver)

    monkeypatch.setattr(clearing, "run", timing_out_once)
    again = market.clear()
    assert len(calls) == 2
    np.testing.assert_allclose(again.lmp, first.lmp, rtol=1e-9)
    assert [f["kind"] for f in market.last_faults] == ["solver_time_limit"]
    assert "re-solved from scratch" in market.last_faults[0]["message"]


def test_market_tiny_time_limit_ends_with_a_clear_error() -> None:
    market = TransmissionMarket(_triangle())
    market.clear()
    market._solver.config.time_limit = 1e-12  # noqa: SLF001
    with pytest.raises(ClearingError) as info:
        market.clear()
    assert info.value.kind == "solver_time_limit"


# --------------------------------------------------------------------- TSO infeasible
def test_infeasible_tso_names_the_family_and_clears_with_balance_slack() -> None:
    """Must-run 150 MW at bus 1 against 100 MW of load: spill 50 MW at VOLL."""
    market = TransmissionMarket(_triangle(load_mw=100.0, gen_min_mw=150.0))
    res = market.clear()
    assert res.status.endswith("+balanceSlack")
    (fault,) = market.last_faults
    assert fault["kind"] == "tso_infeasible"
    assert "generator limits of units" in fault["message"]
    assert "spilled 50.000 MW" in fault["message"]
    assert res.gen_p_mw["gen"].iloc[0] == pytest.approx(150.0, abs=1e-6)
    assert res.lmp.min() == pytest.approx(-10_000.0, rel=1e-6)  # spill priced at VOLL
    # the next feasible interval is cleared normally, by the untouched persistent model
    fresh = TransmissionMarket(_triangle(load_mw=180.0, gen_min_mw=150.0)).clear(
        load_p_mw=pd.Series({0: 180.0})
    )
    ok = market.clear(load_p_mw=pd.Series({0: 180.0}))
    assert market.last_faults == []
    assert not ok.status.endswith("balanceSlack")
    np.testing.assert_allclose(ok.lmp, fresh.lmp, rtol=1e-9)


def test_market_nan_bid_is_rejected_and_recorded() -> None:
    market = TransmissionMarket(_triangle(), participants={"dso": 2})
    good = BidCurve(0.0, (BidBlock(20.0, 5.0),))
    expected = market.clear(bids={"dso": good})
    res = market.clear(bids={"dso": BidCurve(0.0, (BidBlock(20.0, float("nan")),))})
    assert res.awards_mw["dso"] == 0.0
    (fault,) = market.last_faults
    assert fault["kind"] == "bad_coefficient"
    assert "bid_price_usd_per_mwh[('dso', 0)] (nan)" in fault["message"]
    again = market.clear(bids={"dso": good})
    assert again.awards_mw == expected.awards_mw
    assert market.last_faults == []


@pytest.mark.parametrize("value", [float("inf"), -float("inf"), 1e12])  # NaN: a missing load
def test_market_bad_load_is_refused_before_highs(value: float) -> None:
    market = TransmissionMarket(_triangle())
    first = TransmissionMarket(_triangle())  # also in the very first clear (pyomo's path)
    with pytest.raises(ClearingError, match=r"non-finite or extreme load") as info:
        first.clear(load_p_mw=pd.Series({0: value}))
    assert info.value.kind == "bad_coefficient"
    expected = market.clear()
    with pytest.raises(ClearingError, match=r"non-finite or extreme load") as info:
        market.clear(load_p_mw=pd.Series({0: value}))
    assert info.value.kind == "bad_coefficient"
    np.testing.assert_allclose(market.clear(load_p_mw=pd.Series({0: 100.0})).lmp, expected.lmp)


# ------------------------------------------------------------------------------ KPIs
def test_kpis_count_every_fault_kind(tmp_path) -> None:  # noqa: ANN001
    import datetime as dt

    from gridlayers.results.kpis import numerical_faults
    from gridlayers.results.store import ResultStore

    store = ResultStore(tmp_path / "r.duckdb")
    t = dt.datetime(2016, 6, 1)
    for kind, n in (("powerflow_not_converged", 2), ("bad_coefficient", 1), ("feeder_slack", 4)):
        for i in range(n):
            store.event("total_dso", i, t, "rural", kind, "x")
    store.event("minimal_dso", 0, t, "tso", "tso_infeasible", "x")
    store.flush()
    counts = numerical_faults(store, "total_dso")
    assert list(counts) == list(FAULT_KINDS)
    assert counts == {
        "powerflow_not_converged": 2, "dso_infeasible": 0, "tso_infeasible": 0,
        "solver_time_limit": 0, "bad_coefficient": 1,
    }  # fmt: skip
    store.close()


# --------------------------------------------------------------------- co-simulation
NONCONVERGED_INTERVAL, NAN_INTERVAL, NAN_LDA = 1, 2, "rural"


@pytest.fixture(scope="module")
def faulted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Default scenario, Total DSO, 4 quarter-hours; 400x load in every feeder's power flow
    at interval 1 (both attempts), a NaN forecast at one bus of the rural LDA at interval 2."""
    import yaml

    from conftest import DEFAULT, write_scenario
    from gridlayers.grid.acpf import ACPowerFlow
    from gridlayers.lda import LDAModel
    from gridlayers.runner import run_scenario
    from gridlayers.scenarios import load_scenario
    from gridlayers.simulators.feeder import FeederSim

    data = yaml.safe_load(DEFAULT.read_text())
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 4, "interval_min": 15}
    data["paradigms"] = ["total_dso"]
    data["output"] = {"bus_voltages": False}
    folder = tmp_path_factory.mktemp("faults")
    scenario = load_scenario(write_scenario(folder, data))
    mp = pytest.MonkeyPatch()
    state = {"k": -1}
    real_step, real_solve, real_fixed = FeederSim.step, ACPowerFlow.solve, LDAModel.fixed_injections

    def step(self, time, inputs, max_advance):  # noqa: ANN001, ANN202
        state["k"] = time // self._step
        return real_step(self, time, inputs, max_advance)

    def solve(self, load_p_mw, load_q_mvar, *args, **kwargs):  # noqa: ANN001, ANN202
        if state["k"] == NONCONVERGED_INTERVAL:  # an impossible load: no AC solution
            load_p_mw, load_q_mvar = np.asarray(load_p_mw) * 400, np.asarray(load_q_mvar) * 400
        return real_solve(self, load_p_mw, load_q_mvar, *args, **kwargs)

    def fixed(self, k, which="forecast"):  # noqa: ANN001, ANN202
        p, q = real_fixed(self, k, which)
        if k == NAN_INTERVAL and which == "forecast" and self.name == NAN_LDA:
            p.iloc[len(p) // 2] = np.nan
        return p, q

    mp.setattr(FeederSim, "step", step)
    mp.setattr(ACPowerFlow, "solve", solve)
    mp.setattr(LDAModel, "fixed_injections", fixed)
    try:
        outcome = run_scenario(scenario, folder / "out")
    finally:
        mp.undo()
    return scenario, outcome


def _query(outcome: object, sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(outcome.out_dir / "results.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_cosim_survives_nonconvergence_and_nan_forecast(faulted_run: tuple) -> None:
    scenario, outcome = faulted_run
    assert outcome.ok, outcome.summary["error"]
    ldas = sorted(lda.name for lda in scenario.ldas)
    # every interval of every table is stored
    assert _query(outcome, "SELECT DISTINCT interval FROM market_interval ORDER BY 1") == [
        (k,) for k in range(4)
    ]
    feeder = _query(
        outcome,
        "SELECT interval, lda, converged, retried, p_import_mw FROM feeder_interval ORDER BY 1, 2",
    )
    assert [(k, lda) for k, lda, *_ in feeder] == [(k, lda) for k in range(4) for lda in ldas]
    for k, _, converged, retried, p_import in feeder:
        assert converged == (k != NONCONVERGED_INTERVAL)
        assert retried == (k == NONCONVERGED_INTERVAL)  # retried from a flat start first
        assert math.isfinite(p_import)  # the lossless estimate where it failed
    dso = _query(outcome, "SELECT interval, lda FROM dso_interval ORDER BY 1, 2")
    assert dso == [(k, lda) for k in range(4) for lda in ldas]
    events = _query(outcome, "SELECT interval, source, kind, message FROM event ORDER BY 1, 2")
    nonconv = [(k, s) for k, s, kind, _ in events if kind == "powerflow_not_converged"]
    assert nonconv == [(NONCONVERGED_INTERVAL, lda) for lda in ldas]
    bad = [(k, s, m) for k, s, kind, m in events if kind == "bad_coefficient"]
    assert [(k, s) for k, s, _ in bad] == [(NAN_INTERVAL, NAN_LDA)] * 2  # offer and settle
    assert all("feeder.PBalance[" in m and "(nan)" in m for *_, m in bad)
    assert "network-blind fallback used" in bad[0][2]
    faults = outcome.summary["paradigms"]["total_dso"]["numerical_faults"]
    assert faults["powerflow_not_converged"] == len(ldas)
    assert faults["bad_coefficient"] == 2
    assert outcome.summary["paradigms"]["total_dso"]["nonconverged_powerflows"] == len(ldas)
    # the interval after the faults is solved normally again
    last = _query(outcome, f"SELECT count(*) FROM event WHERE interval = 3 AND kind IN "
                           f"{tuple(FAULT_KINDS)}")  # fmt: skip
    assert last == [(0,)]


def test_a_fault_that_ends_the_run_is_counted_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from conftest import DEFAULT, write_scenario
    from gridlayers.runner import run_scenario
    from gridlayers.scenarios import load_scenario

    data = yaml.safe_load(DEFAULT.read_text())
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 3, "interval_min": 15}
    data["paradigms"] = ["total_dso"]
    path = write_scenario(tmp_path, data)
    clear = TransmissionMarket.clear
    calls = [0]

    def failing(self, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls[0] += 1
        if calls[0] == 3:  # forward clear of interval 1 (after interval 0's two stages)
            raise ClearingError("market clearing failed: maxTimeLimit", kind="solver_time_limit")
        return clear(self, **kwargs)

    monkeypatch.setattr(TransmissionMarket, "clear", failing)
    outcome = run_scenario(load_scenario(path), tmp_path / "run")
    assert outcome.summary["status"] == "failed"
    assert outcome.summary["failure_kind"] == "solver_time_limit"
    kpis = outcome.summary["paradigms"]["total_dso"]
    assert kpis["numerical_faults"]["solver_time_limit"] == 1
    assert kpis["intervals"] == 1  # interval 0 kept
