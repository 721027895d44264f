"""Per-device DER dispatch and per-branch loading (output.device_dispatch, output.branch_loading).

A short run of every paradigm with both options on: the per-device rows add up to each
aggregator's stored totals, every device and every in-service branch is there once per
interval, and the branch loadings reproduce the feeder's maximum and its import. With
the options off, neither table gets a row and the wiring does not even ask for them.
The checks are functions, so a test can show that they catch a dropped row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import DEFAULT, write_scenario
from gridlayers.cosim import collector_outputs
from gridlayers.lda import build_lda
from gridlayers.results import load
from gridlayers.results.load import RunResults
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario
from gridlayers.scenarios.schema import OutputConfig

PARADIGMS = ["total_tso", "minimal_dso", "total_dso", "passive"]
INTERVALS = 3
AGGREGATOR = ["paradigm", "interval", "lda", "aggregator"]
FEEDER = ["paradigm", "interval", "lda"]
#: Largest difference between a sum of device (or branch) values and the stored total, MW.
TOL_MW = 1e-9


def _run(folder: Path, paradigms: list[str], intervals: int, **output: bool) -> RunResults:
    data = yaml.safe_load(DEFAULT.read_text())
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": intervals, "interval_min": 15}
    data["paradigms"] = paradigms
    data["output"] = {"bus_voltages": False, **output}
    scenario = load_scenario(write_scenario(folder, data))
    outcome = run_scenario(scenario, folder / "run")
    assert outcome.ok, outcome.summary["error"]
    return load(outcome.out_dir)


@pytest.fixture(scope="module")
def detailed(tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """Every paradigm, three midday quarter-hours, both detail options on."""
    folder = tmp_path_factory.mktemp("detail")
    return _run(folder, PARADIGMS, INTERVALS, device_dispatch=True, branch_loading=True)


@pytest.fixture(scope="module")
def models(detailed: RunResults) -> dict:
    """The run's LDA models (devices per aggregator, feeder nets), rebuilt from its scenario."""
    scenario = load_scenario(detailed.path / "scenario.resolved.yaml")
    return {lda.name: build_lda(scenario, lda.name) for lda in scenario.ldas}


# ------------------------------------------------------------------ the checks


def check_devices_add_up(devices: pd.DataFrame, aggregators: pd.DataFrame, hours: float) -> None:
    """Per aggregator and interval, the device rows sum to the aggregator's stored totals.

    Realised injection and set-point (MW), stored energy at the end of the interval
    (MWh, devices that store nothing count 0) and PV curtailment (available minus
    realised power times the interval length, MWh).
    """
    pv = devices[devices["kind"] == "pv"]
    curtailed = (
        ((pv["available_mw"] - pv["realised_mw"]) * hours)
        .groupby([pv[k] for k in AGGREGATOR])
        .sum()
    )
    sums = devices.groupby(AGGREGATOR)[["realised_mw", "setpoint_mw", "stored_mwh"]].sum()
    sums["curtailed_mwh"] = curtailed.reindex(sums.index, fill_value=0.0)
    totals = aggregators.set_index(AGGREGATOR)
    assert sorted(sums.index) == sorted(totals.index), "aggregator-intervals without devices"
    totals = totals.loc[sums.index]
    for device_column, total_column in (
        ("realised_mw", "realised_mw"),
        ("setpoint_mw", "setpoint_mw"),
        ("stored_mwh", "stored_end_mwh"),
        ("curtailed_mwh", "curtailed_mwh"),
    ):
        difference = (sums[device_column] - totals[total_column]).abs()
        assert difference.max() <= TOL_MW, f"{device_column}: {difference.idxmax()}"


def check_branches_match_the_feeder(branches: pd.DataFrame, feeders: pd.DataFrame) -> None:
    """Per LDA and interval, the largest branch loading is the feeder's, exactly, and the
    flows into the transformers' high-voltage side add up to the feeder's import."""
    largest = branches.groupby(FEEDER)["loading_percent"].max()
    stored = feeders.set_index(FEEDER)
    assert sorted(largest.index) == sorted(stored.index), "LDA-intervals without branches"
    assert (largest == stored.loc[largest.index, "max_loading_percent"]).all()
    trafos = branches[branches["branch"].str.startswith("trafo:")]
    hv = trafos.groupby(FEEDER)["p_from_mw"].sum()
    assert (hv - stored.loc[hv.index, "p_import_mw"]).abs().max() <= TOL_MW


# ------------------------------------------------------------------ device_interval


def test_device_rows_add_up_to_the_aggregator_totals(detailed: RunResults) -> None:
    devices, aggregators = detailed["device_interval"], detailed["aggregator_interval"]
    assert set(devices["paradigm"]) == set(PARADIGMS)
    assert set(devices["interval"]) == set(range(INTERVALS))
    assert aggregators["realised_mw"].abs().sum() > 1.0  # the sums compare something
    check_devices_add_up(devices, aggregators, hours=0.25)


def test_every_device_has_one_row_per_interval_with_its_kind(
    detailed: RunResults, models: dict
) -> None:
    devices = detailed["device_interval"]
    expected = {
        (lda, name, dev.device_id, dev.kind)
        for lda, m in models.items()
        for name, aggregator in m.aggregators.items()
        for dev in aggregator.devices
    }
    assert {d.kind for m in models.values() for a in m.aggregators.values() for d in a.devices} == {
        "pv",
        "battery",
        "flexible_load",
        "ev_fleet",
    }
    for (paradigm, k), rows in devices.groupby(["paradigm", "interval"]):
        found = list(
            zip(rows["lda"], rows["aggregator"], rows["device"], rows["kind"], strict=True)
        )
        assert len(found) == len(expected), (paradigm, k)
        assert set(found) == expected, (paradigm, k)


def test_device_columns_follow_their_units_and_nulls(detailed: RunResults) -> None:
    devices = detailed["device_interval"]
    pv, others = devices[devices["kind"] == "pv"], devices[devices["kind"] != "pv"]
    assert pv["available_mw"].notna().all()
    assert others["available_mw"].isna().all()  # only PV has an exogenous availability
    assert (pv["realised_mw"] <= pv["available_mw"] + TOL_MW).all()
    assert (pv["realised_mw"] >= 0.0).all()
    assert pv["stored_mwh"].isna().all()
    assert others["stored_mwh"].notna().all()
    battery = devices[devices["kind"] == "battery"]
    assert (battery["stored_mwh"] >= 0.0).all()
    flexible = devices[devices["kind"] == "flexible_load"]
    assert (flexible["realised_mw"] < 0.0).all()  # consumption: negative injection


# ------------------------------------------------------------------ branch_interval


def test_branch_loadings_reproduce_the_feeder_maximum_and_import(detailed: RunResults) -> None:
    branches, feeders = detailed["branch_interval"], detailed["feeder_interval"]
    assert feeders["converged"].all()
    assert set(branches["paradigm"]) == set(PARADIGMS)
    check_branches_match_the_feeder(branches, feeders)


def test_every_in_service_branch_has_one_row_per_interval(
    detailed: RunResults, models: dict
) -> None:
    branches = detailed["branch_interval"]
    for lda, m in models.items():
        net = m.net
        expected = {f"line:{i}" for i in net.line.index[net.line.in_service]}
        expected |= {f"trafo:{i}" for i in net.trafo.index[net.trafo.in_service]}
        for (paradigm, k), rows in branches[branches["lda"] == lda].groupby(
            ["paradigm", "interval"]
        ):
            assert len(rows) == len(expected), (lda, paradigm, k)
            assert set(rows["branch"]) == expected, (lda, paradigm, k)
    assert (branches["loading_percent"] >= 0.0).all()
    assert branches["q_from_mvar"].notna().all()


# ------------------------------------------------------------------ the checks can fail


def test_the_checks_catch_a_dropped_or_changed_row(detailed: RunResults) -> None:
    devices, aggregators = detailed["device_interval"], detailed["aggregator_interval"]
    moving = devices.index[devices["realised_mw"].abs() > 1e-6]
    for broken in (devices.drop(index=moving[0]), devices.drop(index=moving[-1])):
        with pytest.raises(AssertionError):
            check_devices_add_up(broken, aggregators, hours=0.25)
    shifted = devices.copy()
    shifted.loc[moving[0], "setpoint_mw"] += 1e-6
    with pytest.raises(AssertionError, match="setpoint_mw"):
        check_devices_add_up(shifted, aggregators, hours=0.25)
    branches, feeders = detailed["branch_interval"], detailed["feeder_interval"]
    worst = branches.groupby(FEEDER)["loading_percent"].idxmax()
    with pytest.raises(AssertionError):  # the most loaded branch of one feeder-interval
        check_branches_match_the_feeder(branches.drop(index=worst.iloc[0]), feeders)
    trafo = branches.index[branches["branch"].str.startswith("trafo:")][0]
    with pytest.raises(AssertionError):
        check_branches_match_the_feeder(branches.drop(index=trafo), feeders)


# ------------------------------------------------------------------ options off


def test_without_the_options_the_tables_stay_empty(tmp_path: Path) -> None:
    run = _run(tmp_path, ["total_dso"], 2)
    assert len(run["feeder_interval"]) == 2 * 3
    assert len(run["aggregator_interval"]) > 0
    for table in ("device_interval", "branch_interval", "bus_voltage"):
        assert run[table].empty, table
        assert list(run[table].columns)  # documented columns all the same
    assert not (run.path / "device_interval.parquet").exists()


def test_only_the_stored_details_are_wired_to_the_collector() -> None:
    feeder, aggregator = collector_outputs(OutputConfig(bus_voltages=False))
    assert "P_import[MW]" in feeder
    assert not [a for a in feeder if a.startswith(("Vm[", "Branch_"))]
    assert aggregator == ["der_report", "state"]  # the devices' state: the checkpoint
    feeder, aggregator = collector_outputs(
        OutputConfig(bus_voltages=True, branch_loading=True, device_dispatch=True)
    )
    assert {"Vm[pu]", "Branch_loading[%]", "Branch_P_from[MW]", "Branch_Q_from[MVAr]"} <= set(
        feeder
    )
    assert aggregator == ["der_report", "state", "der_devices"]
