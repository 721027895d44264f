"""The ISO-NE 8-zone net reproduces the planner's data (gridlayers.grid.isone_net).

The expected values are recomputed here from the raw CSV files with pandas, not
through the planner's reader, so a wrong column, unit or aggregation in the builder
(or a stale bundled JSON) fails.
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
import yaml

from conftest import REPO, write_scenario
from gridlayers.grid.isone_net import (
    add_plan,
    build_isone8_net,
    planner_day_profile,
)
from gridlayers.grid.profiles import load_scale
from gridlayers.market.network import extract_dc_network
from gridlayers.planner.inputs_isone import bundled_isone8_dir
from gridlayers.scenarios import ScenarioError, load_scenario
from gridlayers.scenarios.resolve import resolve_scenario
from gridlayers.scenarios.schema import HorizonConfig

DATA = bundled_isone8_dir()
BUNDLED = REPO / "scenarios" / "networks" / "isone8.json"
REFERENCE = REPO / "scenarios" / "isone-reference.yaml"
ZONES = ["ME", "NH", "VT", "WCMA", "NEMA", "CT", "RI", "SEMA"]
FIRST_EPOCH_YEAR = 2027  # base_year 2022 + 5 years: the planner's epoch 1


def _raw_fleet(year: int) -> pd.DataFrame:
    """Capacity (MW) and capacity-weighted c1 ($/MWh) per zone and technology, from the CSV."""
    raw = pd.read_csv(DATA / "generators_loc_emission_damages.csv")
    raw = raw[raw["PlannedRetirementYear"] >= year]
    tech = np.where(raw["Type"] == "Gas_GT", "gas_ct", raw["type"].str.lower())
    raw = raw.assign(zone=[ZONES[n - 1] for n in raw["location_node"]], tech=tech)
    raw = raw.assign(cost_mw=raw["c1"] * raw["Pmax"])
    g = raw.groupby(["zone", "tech"])[["Pmax", "cost_mw"]].sum()
    return pd.DataFrame({"pmax_mw": g["Pmax"], "cost": g["cost_mw"] / g["Pmax"]})


def _raw_loads() -> tuple[pd.DataFrame, pd.DataFrame]:
    load = pd.read_csv(DATA / "load.csv", encoding="utf-8-sig", index_col=0).iloc[:, :8]
    re0 = (
        pd.read_csv(DATA / "wind.csv", header=None).iloc[:, :8]
        + pd.read_csv(DATA / "solar.csv", header=None).iloc[:, :8]
    )
    load.columns = re0.columns = ZONES
    return load.reset_index(drop=True), re0


def test_net_reproduces_the_planner_data() -> None:
    net = build_isone8_net()
    assert list(net.bus.name) == ZONES
    assert (net.bus.vn_kv == 345.0).all()
    # corridors: ends, transfer limit (MW, as the market reads it) and DC susceptance
    lines = pd.read_csv(DATA / "lines.csv").iloc[:12]
    got = [(ZONES[f], ZONES[t]) for f, t in zip(net.line.from_bus, net.line.to_bus, strict=True)]
    assert got == [
        (ZONES[f - 1], ZONES[t - 1]) for f, t in zip(lines.from_node, lines.to_node, strict=True)
    ]
    dc = extract_dc_network(net)
    np.testing.assert_allclose(dc.br_rate_mw, lines["s_max"].to_numpy(), rtol=1e-12)
    # MW per rad: pandapower S_base * b_pu equals the planner's 1 / x (p.u. on 1 MVA)
    np.testing.assert_allclose(dc.base_mva * dc.br_b_pu, 1.0 / lines["x"].to_numpy(), rtol=1e-9)
    # fleet of the first planner epoch, per zone and technology, and its marginal cost
    fleet = _raw_fleet(FIRST_EPOCH_YEAR)
    gens = net.gen.set_index([net.gen.bus.map(dict(enumerate(ZONES))), "technology"])
    assert sorted(gens.index) == sorted(fleet.index)
    cost = net.poly_cost[net.poly_cost.et == "gen"].set_index("element")["cp1_eur_per_mw"]
    for (zone, tech), row in fleet.iterrows():
        g = net.gen.index[(net.gen.bus == ZONES.index(zone)) & (net.gen.technology == tech)][0]
        assert net.gen.at[g, "max_p_mw"] == pytest.approx(row.pmax_mw, rel=1e-12)
        assert cost[g] == pytest.approx(row.cost, rel=1e-12)
        assert net.gen.at[g, "min_p_mw"] == 0.0
    assert dc.gen_p_max_mw.sum() == pytest.approx(fleet.pmax_mw.sum(), rel=1e-12)
    # loads: the zones' loads in the data's system peak hour; slack at SEMA without output
    load, _ = _raw_loads()
    peak = load.sum(axis=1).idxmax()
    np.testing.assert_allclose(net.load.p_mw, load.loc[peak, ZONES].to_numpy(), rtol=1e-12)
    assert net.bus.name[net.ext_grid.bus.iloc[0]] == "SEMA"
    assert net.ext_grid.max_p_mw.iloc[0] == 0.0


def test_bundled_json_is_the_generated_net() -> None:
    bundled = pp.from_json(str(BUNDLED))
    fresh = build_isone8_net()
    for table in ("bus", "line", "gen", "load", "ext_grid", "poly_cost"):
        columns = [c for c in fresh[table].columns if c not in ("geo", "curve_style")]
        pd.testing.assert_frame_equal(
            bundled[table][columns].reset_index(drop=True),
            fresh[table][columns].reset_index(drop=True),
            check_dtype=False,
            obj=table,
        )


def test_later_epochs_retire_units() -> None:
    e1, e2 = build_isone8_net(epoch=1), build_isone8_net(epoch=4)
    assert e2.gen.max_p_mw.sum() < e1.gen.max_p_mw.sum()
    assert e2.gen.max_p_mw.sum() == pytest.approx(_raw_fleet(2042).pmax_mw.sum(), rel=1e-12)


@pytest.mark.parametrize("day", [2, 3, 7])
def test_planner_day_profile_is_the_planner_system_load(day: int) -> None:
    net = build_isone8_net()
    load, re0 = _raw_loads()
    rows = slice(24 * (day - 1), 24 * day)
    expected = (load.iloc[rows].sum(axis=1) - re0.iloc[rows].sum(axis=1)).to_numpy()
    horizon = HorizonConfig(start=dt.datetime(2016, 6, 8), intervals=96, interval_min=15)
    bulk = load_scale(f"isone8_day{day}", horizon) * net.load.p_mw.sum()
    np.testing.assert_allclose(bulk, np.repeat(expected, 4), rtol=1e-12)
    # hourly intervals starting at 17:00 read hour 17 onwards, wrapping into the next day
    late = HorizonConfig(start=dt.datetime(2016, 6, 8, 17), intervals=10, interval_min=60)
    hours = [(17 + k) % 24 for k in range(10)]
    np.testing.assert_allclose(
        load_scale(f"isone8_day{day}", late), planner_day_profile(day).scale[hours], rtol=1e-12
    )


def _plan() -> dict:
    zero = dict.fromkeys(ZONES, 0.0)
    return {
        "capacity_by_zone_mw": {
            "gas_cc_ccs": dict(zero),
            "gas_ct": {**zero, "NEMA": 400.0},
            "wind": {**zero, "CT": 1000.0},
            "pv": {**zero, "ME": 200.0},
        },
        "upgrades": [{"line": 7, "epoch": 1}, {"line": 3, "epoch": 3}],
        "ldas": {"a": {"zone": "ME", "der_pv_mw": 50.0}},
    }


def test_plan_adds_new_capacity_by_zone() -> None:
    net = build_isone8_net(epoch=2)
    before = extract_dc_network(net)
    add_plan(net, _plan(), day=4, epoch=2)
    costs = pd.read_csv(DATA / "costs_atb2022.csv").set_index("index")
    cf = pd.read_csv(DATA / "wind_normalized.csv", header=None).iloc[72:96]  # day 4
    cf_pv = pd.read_csv(DATA / "solar_normalized.csv", header=None).iloc[72:96]
    cost = net.poly_cost[net.poly_cost.et == "gen"].set_index("element")["cp1_eur_per_mw"]
    new = net.gen.iloc[-3:]
    assert list(new.name) == ["NEMA gas_ct", "CT wind", "ME pv"]
    assert new.max_p_mw.iloc[0] == 400.0
    assert cost[new.index[0]] == pytest.approx(costs.at[10, "vom_ng_ct"])  # epoch 2 ends 2032
    assert new.max_p_mw.iloc[1] == pytest.approx(1000.0 * cf[5].mean(), rel=1e-12)
    assert new.max_p_mw.iloc[2] == pytest.approx((200.0 + 50.0) * cf_pv[0].mean(), rel=1e-12)
    assert cost[new.index[1]] == cost[new.index[2]] == 0.0
    after = extract_dc_network(net)
    assert after.br_rate_mw[6] == 2 * before.br_rate_mw[6]  # NEMA-SEMA upgraded in epoch 1
    assert after.br_rate_mw[2] == before.br_rate_mw[2]  # VT-WCMA only in epoch 3


def test_plan_without_zonal_capacities_names_the_fix() -> None:
    with pytest.raises(ValueError, match="capacity_by_zone_mw"):
        add_plan(build_isone8_net(), {"capacity_mw": {}}, day=1, epoch=1)


def test_build_command_writes_the_net(tmp_path: Path) -> None:
    out = tmp_path / "net.json"
    result = subprocess.run(
        [sys.executable, "-m", "gridlayers.grid.isone_net", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "8 zones, 12 corridors" in result.stdout
    assert len(pp.from_json(str(out)).gen) == len(build_isone8_net().gen)


# ---------------------------------------------------------------- scenario options


def _reference(tmp: Path, **changes: object) -> Path:
    data = yaml.safe_load(REFERENCE.read_text())
    data["transmission"]["json"] = str(BUNDLED)
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return write_scenario(tmp, data)


def test_reference_scenario_validates_and_resolves() -> None:
    scenario = load_scenario(REFERENCE)
    resolve_scenario(scenario, REFERENCE)
    zones = {lda.zone for lda in scenario.planner.lda.ldas}
    assert zones == set(ZONES)
    feeders = {lda.feeder.simbench for lda in scenario.ldas}
    assert len(feeders) == 4
    assert scenario.loop.price_feedback
    assert scenario.loop.planned_transmission


@pytest.mark.parametrize("profile", ["isone8_day11", "isone8_day0", "isone8_dayx", "isone8"])
def test_bad_planner_day_profile_is_a_one_line_error(tmp_path: Path, profile: str) -> None:
    file = _reference(tmp_path, **{"transmission.load_profile": profile})
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert info.value.field == "transmission.load_profile"
    assert "isone8_day<d>" in str(info.value)
    result = subprocess.run(
        [sys.executable, "-m", "gridlayers.cli", "validate", str(file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {file}: transmission.load_profile:")


def test_price_feedback_needs_the_zone_bus(tmp_path: Path) -> None:
    file = _reference(tmp_path, **{"ldas.0.interface_bus": 3})  # me_rural (ME) at WCMA
    with pytest.raises(ScenarioError) as info:
        resolve_scenario(load_scenario(file), file)
    assert info.value.field == "ldas[0].interface_bus"
    assert "'ME'" in str(info.value)
    assert "'WCMA'" in str(info.value)


def test_planned_transmission_needs_the_isone_net(tmp_path: Path) -> None:
    file = _reference(tmp_path, **{"transmission": {"case": "case9"}, "loop.price_feedback": False})
    data = yaml.safe_load(file.read_text())
    for lda in data["ldas"]:
        lda["interface_bus"] = 4  # case9 has buses 0..8
    file = write_scenario(tmp_path, data)
    with pytest.raises(ScenarioError) as info:
        resolve_scenario(load_scenario(file), file)
    assert info.value.field == "loop.planned_transmission"


def test_profile_peak_is_the_data_peak() -> None:
    # every planner day's profile stays below the peak hour (1.0) the net's loads are set to
    peaks = [planner_day_profile(d).scale.max() for d in range(1, 11)]
    assert max(peaks) <= 1.0
    assert math.isclose(planner_day_profile(7).peak_mw, 24435.139, rel_tol=1e-9)


def test_loop_day_transmission_is_the_planned_system(tmp_path: Path) -> None:
    from gridlayers.loop.transmission import day_transmission

    scenario = load_scenario(REFERENCE)
    tr = day_transmission(scenario, _plan(), 4, tmp_path)
    assert tr.load_profile == "isone8_day4"
    assert tr.load_scaling == 1.0  # the planned net carries the growth
    net = pp.from_json(str(tr.json_path))
    growth = 1.023 ** (5 * scenario.planner.n_epochs - 1)
    base = build_isone8_net()
    np.testing.assert_allclose(net.load.p_mw, base.load.p_mw * growth, rtol=1e-12)
    assert "NEMA gas_ct" in set(net.gen.name)
    # without planned_transmission only the profile follows the planner day
    off = scenario.model_copy(
        update={"loop": scenario.loop.model_copy(update={"planned_transmission": False})}
    )
    tr = day_transmission(off, None, 2, tmp_path / "off")
    assert tr.load_profile == "isone8_day2"
    assert tr.json_path == scenario.transmission.json_path
    assert not (tmp_path / "off").exists()
