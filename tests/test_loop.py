"""Operations->planning loop: mapping, measurement, damped update, validation, end to end."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from gridlayers.loop.config import LoopConfig
from gridlayers.loop.mapping import PlannedDER, cosim_scenario, feeder_peaks_mw, planned_devices
from gridlayers.loop.measure import LDAMeasurement, measure
from gridlayers.loop.update import combine_days, damped_update, plan_change_mw
from gridlayers.loop.validate import PlanFileError, check_lda, read_plan
from gridlayers.planner.config import LDAOperationalParams
from gridlayers.results.store import ResultStore
from gridlayers.scenarios import ScenarioError, load_scenario

SMALL = Path(__file__).parent / "data" / "loop-small.yaml"

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _parquet(path: Path) -> pd.DataFrame:
    return duckdb.sql(f"SELECT * FROM read_parquet('{path}')").df()


@pytest.fixture(scope="module")
def small():
    return load_scenario(SMALL)


# ------------------------------------------------------------------ mapping


def test_planned_devices_reproduce_the_plan_at_feeder_scale(small) -> None:
    lda = small.ldas[0]
    plan_lda = small.planner.lda.ldas[0]
    peaks = feeder_peaks_mw(lda)
    planned = PlannedDER(pv_mw=120.0, battery_mw=40.0, battery_mwh=80.0)
    devices = planned_devices(lda, planned, plan_lda, 0.02, peaks, 4)
    by_type = {t: [d for d in devices if d.type == t] for t in ("pv", "battery", "flexible_load")}
    assert sum(d.rated_mw for d in by_type["pv"]) == pytest.approx(120.0 * 0.02, rel=1e-12)
    assert sum(d.power_mw for d in by_type["battery"]) == pytest.approx(40.0 * 0.02, rel=1e-12)
    assert sum(d.energy_mwh for d in by_type["battery"]) == pytest.approx(80.0 * 0.02, rel=1e-12)
    shift = plan_lda.flexible_load.max_share * sum(peaks.values())
    assert sum(d.shift_up_max_mw for d in by_type["flexible_load"]) == pytest.approx(shift)
    top4 = set(sorted(peaks, key=peaks.get, reverse=True)[:4])
    assert {d.bus for d in devices} == top4
    assert all(d.eta_charge == plan_lda.battery.efficiency for d in by_type["battery"])


def test_cosim_scenario_keeps_other_der_and_sets_the_day(small) -> None:
    planned = {a.name: PlannedDER(10.0, 5.0, 10.0) for a in small.planner.lda.ldas}
    scales = {a: 0.02 for a in planned}
    peaks = {lda.name: feeder_peaks_mw(lda) for lda in small.ldas}
    sc = cosim_scenario(small, planned, scales, peaks, "total_tso", dt.date(2016, 7, 1), "x")
    assert sc.paradigms == ["total_tso"]
    assert sc.horizon.start == dt.datetime(2016, 7, 1)
    assert sc.horizon.intervals == 24  # 60-minute intervals
    assert sc.output.flexibility_probe
    me = sc.ldas[0].der
    assert [r.type for r in me.penetration] == ["ev_fleet"]  # kept: not a planned type
    assert {d.type for d in me.devices} == {"pv", "battery", "flexible_load"}


# ------------------------------------------------------------------ measurement


def _store(tmp_path: Path) -> ResultStore:
    """Two hourly intervals of one LDA with hand-checkable numbers."""
    store = ResultStore(tmp_path / "r.duckdb")
    t0, t1 = pd.Timestamp("2016-05-04 10:00"), pd.Timestamp("2016-05-04 11:00")
    feeder = {"paradigm": "total_dso", "lda": "a", "q_import_mvar": 0.0, "vm_min_pu": 1.0}
    store.append(
        "feeder_interval",
        [
            dict(
                feeder,
                interval=0,
                time=t0,
                p_import_mw=4.0,
                losses_mw=0.1,
                converged=True,
                voltage_violations=0,
                thermal_violations=0,
            ),
            dict(
                feeder,
                interval=1,
                time=t1,
                p_import_mw=-2.0,
                losses_mw=0.05,
                converged=True,
                voltage_violations=2,
                thermal_violations=0,
            ),
        ],
    )
    store.append(
        "interface_interval",
        [
            {
                "paradigm": "total_dso",
                "interval": 0,
                "time": t0,
                "lda": "a",
                "cleared_injection_mw": -3.5,
            },
            {
                "paradigm": "total_dso",
                "interval": 1,
                "time": t1,
                "lda": "a",
                "cleared_injection_mw": 2.0,
            },
        ],
    )
    store.append(
        "dso_interval",
        [
            {
                "paradigm": "total_dso",
                "interval": 0,
                "time": t0,
                "lda": "a",
                "redispatch_cost_usd": 3.0,
                "flex_offered_mw": 2.0,
                "flex_usable_mw": 1.5,
            },
            {
                "paradigm": "total_dso",
                "interval": 1,
                "time": t1,
                "lda": "a",
                "redispatch_cost_usd": 0.0,
                "flex_offered_mw": 0.0,
                "flex_usable_mw": 0.0,
            },
        ],
    )
    return store


def test_measure_by_hand(tmp_path: Path) -> None:
    store = _store(tmp_path)
    m = measure(store, "total_dso", 1.0, {"a": 0.5}, imbalance_price_usd_per_mwh=50.0)["a"]
    store.close()
    # throughput |4| + |-2| = 6 MWh; losses 0.15 MWh; imbalance |-4 - (-3.5)| = 0.5 MWh -> 25 $
    assert m.loss_factor == pytest.approx(0.15 / 6.0)
    assert m.cost_adder_usd_per_mwh == pytest.approx((3.0 + 25.0) / 6.0)
    assert m.flex_share_by_hour[10] == pytest.approx(0.75)
    assert m.flex_share_by_hour[11] is None  # nothing offered
    assert m.flex_share_by_hour[0] is None  # not simulated
    assert m.peak_import_mw == pytest.approx(4.0 / 0.5)  # LDA scale
    assert m.voltage_violations == 2


# ------------------------------------------------------------------ update


def _m(shares: list, losses: float, throughput: float, cost: float) -> LDAMeasurement:
    return LDAMeasurement(shares, None, None, 1.0, throughput, losses, cost, 0.0, 0.0, 0, 0, 0)


def test_combine_days_weights_like_the_planner() -> None:
    day1 = _m([0.5] * 12 + [None] * 12, 1.0, 10.0, 20.0)
    day2 = _m([1.0] * 24, 3.0, 10.0, 0.0)
    out = combine_days({1: {"a": day1}, 2: {"a": day2}}, {1: 0.25, 2: 0.75})["a"]
    assert out["flex_share_by_hour"][0] == pytest.approx(0.25 * 0.5 + 0.75 * 1.0)
    assert out["flex_share_by_hour"][20] == pytest.approx(1.0)  # only day 2 offered
    assert out["loss_factor"] == pytest.approx((0.25 * 1 + 0.75 * 3) / 10.0)
    assert out["cost_adder_usd_per_mwh"] == pytest.approx(0.25 * 20 / 10.0)


def test_damped_update_moves_part_way_and_clips() -> None:
    cfg = LoopConfig(days={1: dt.date(2016, 1, 1)}, damping=0.5, max_loss_factor=0.1)
    old = LDAOperationalParams(loss_factor=0.04, operating_cost_adder_usd_per_mwh=2.0)
    new = damped_update(
        old,
        {
            "flex_share_by_hour": [0.2] + [None] * 23,
            "loss_factor": 0.5,
            "cost_adder_usd_per_mwh": 4.0,
        },
        cfg,
    )
    assert new.flex_availability_by_hour[0] == pytest.approx(0.6)
    assert new.flex_availability_by_hour[1] == 1.0  # no measurement: unchanged
    assert new.loss_factor == pytest.approx(0.04 + 0.5 * (0.1 - 0.04))  # clipped to 0.1 first
    assert new.operating_cost_adder_usd_per_mwh == pytest.approx(3.0)


def test_plan_change_is_the_largest_move() -> None:
    a = {"x": {"der_pv_mw": 1.0, "der_battery_mw": 2.0, "interface_capacity_mw": 3.0}}
    b = {"x": {"der_pv_mw": 1.5, "der_battery_mw": 0.0, "interface_capacity_mw": 3.0}}
    assert plan_change_mw(a, b) == pytest.approx(2.0)


# ------------------------------------------------------------------ validation


def test_check_lda_flags_relied_hours_over_capacity() -> None:
    plan_day = {"import_mw": [100.0] * 24, "der_support_mw": [0.0] * 12 + [20.0] * 12}
    realised = [90.0] * 18 + [130.0] * 6
    rows = check_lda(realised, plan_day, capacity_mw=120.0, peak_mw=200.0)
    assert [r["hour"] for r in rows] == list(range(12, 24))
    assert [r["shortfall_mw"] for r in rows if r["shortfall_mw"] > 0] == [10.0] * 6


def test_read_plan_names_the_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "plan_summary.json"
    path.write_text(json.dumps({"ldas": {"a": {"der_pv_mw": 1.0}}}))
    with pytest.raises(PlanFileError, match=r"ldas\.a\.der_battery_mw missing"):
        read_plan(path, ["a"])
    with pytest.raises(PlanFileError, match=r"ldas\.b missing"):
        read_plan(path, ["b"])
    path.write_text(json.dumps({"rounds": []}))
    with pytest.raises(PlanFileError, match="loop.json"):
        read_plan(path, ["a"])


# ------------------------------------------------------------------ scenario errors


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["planner"].pop("lda"), "loop needs a 'planner:' section"),
        (lambda d: d["ldas"].pop(), "have no co-simulation LDA of the same name"),
        (lambda d: d["loop"].update(days={1: "2016-01-20"}), "not among planner.days"),
        (lambda d: d["loop"].update(damping=0.0), "loop.damping"),
    ],
)
def test_bad_loop_sections_name_the_problem(tmp_path: Path, edit, expected: str) -> None:
    data = yaml.safe_load(SMALL.read_text())
    edit(data)
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=expected) as info:
        load_scenario(file)
    assert str(file) in str(info.value)


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def loops(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """The small loop under Total DSO and Total TSO, run by one CLI call (side by side)."""
    out = tmp_path_factory.mktemp("loop")
    proc = subprocess.run(
        [
            sys.executable, "-m", "gridlayers.cli", "loop", str(SMALL),
            "--paradigm", "total_dso", "--paradigm", "total_tso", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "last plan per paradigm" in proc.stdout
    return {
        p: (out / p, json.loads((out / p / "loop.json").read_text()))
        for p in ("total_dso", "total_tso")
    }


@pytest.fixture(scope="module")
def loop_run(loops) -> tuple[Path, dict]:
    return loops["total_dso"]


def test_uncongested_total_tso_and_total_dso_loops_reach_the_same_plan(loops) -> None:
    """No feeder limit binds on loop-small: both paradigms operate alike, so plan alike."""
    (_, dso), (_, tso) = loops["total_dso"], loops["total_tso"]
    assert dso["status"] == tso["status"] == "converged"
    for a, x in dso["plan"]["ldas"].items():
        for key in ("der_pv_mw", "der_battery_mw", "interface_capacity_mw"):
            assert tso["plan"]["ldas"][a][key] == pytest.approx(x[key], abs=1e-3)
        assert tso["parameters"][a]["loss_factor"] == pytest.approx(
            dso["parameters"][a]["loss_factor"], rel=1e-6
        )
    assert tso["rounds"][0]["cosim"]["4"]["voltage_violations"] == 0


def test_loop_converges_and_records_every_round(loop_run) -> None:
    out, record = loop_run
    assert record["status"] == "converged"
    rounds = record["rounds"]
    assert rounds[-1]["plan_change_mw"] <= record["settings"]["tolerance_mw"]
    assert all(r["plan_change_mw"] > record["settings"]["tolerance_mw"] for r in rounds[1:-1])
    assert record["plan"]["ldas"]["me_south"]["der_pv_mw"] > 1.0  # DER was planned and simulated
    assert (out / "plan_summary.json").exists()


def test_loop_updates_are_the_damped_measurements(loop_run) -> None:
    """Round k+1's parameters = round k's + damping x (measured - round k's)."""
    _, record = loop_run
    alpha = record["settings"]["damping"]
    for before, after in zip(record["rounds"], record["rounds"][1:], strict=False):
        for a, measured in before["combined"].items():
            old, new = before["parameters"][a], after["parameters"][a]
            expected = old["loss_factor"] + alpha * (measured["loss_factor"] - old["loss_factor"])
            assert new["loss_factor"] == pytest.approx(expected)


def test_loop_measurement_matches_the_cosimulation_results(loop_run) -> None:
    """Loss factor re-derived from the round's AC results with pandas, not the loop's SQL."""
    out, record = loop_run
    first = record["rounds"][0]
    feeder = _parquet(out / "round1" / "day4" / "feeder_interval.parquet")
    dso = _parquet(out / "round1" / "day4" / "dso_interval.parquet")
    for a, m in first["measured"]["4"].items():
        f = feeder[feeder.lda == a]
        assert m["loss_factor"] == pytest.approx(f.losses_mw.sum() / f.p_import_mw.abs().sum())
        d = dso[dso.lda == a]
        assert (d.flex_usable_mw <= d.flex_offered_mw + 1e-9).all()
        assert (d.flex_usable_mw >= 0).all()


def test_validate_plan_reports_shortfalls_against_the_simulated_flow(loop_run, small) -> None:
    out, _ = loop_run
    plan = json.loads((out / "plan_summary.json").read_text())
    for lda in plan["ldas"].values():
        lda["interface_capacity_mw"] = 0.0  # every relied-on hour must fall short
    tight = out / "tight_plan.json"
    tight.write_text(json.dumps(plan))
    target = out / "validate"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridlayers.cli",
            "validate-plan",
            str(SMALL),
            "--plan",
            str(tight),
            "--paradigm",
            "total_dso",
            "--out",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((target / "validate_plan.json").read_text())
    feeder = _parquet(target / "day4" / "feeder_interval.parquet")
    scales = json.loads((out / "loop.json").read_text())["scales"]
    for a, r in report["ldas"].items():
        assert r["relied_hours"] > 0
        assert r["shortfall_hours"] == r["relied_hours"]
        assert not r["ok"]
        hourly = feeder[feeder.lda == a].groupby(feeder.time.dt.hour).p_import_mw.mean()
        for row in r["hours"]["4"]:
            assert row["shortfall_mw"] == pytest.approx(abs(hourly[row["hour"]]) / scales[a])
