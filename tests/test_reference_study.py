"""The reference study's co-simulation: the planner's ISO-NE system cleared under every paradigm.

A four-hour slice of ``scenarios/isone-reference.yaml`` (planner day 3 at the 2027 load
level, 16:00-20:00) with three of its LDAs. From 17:00 the NEMA/Boston import corridors
reach their 1,200 MW transfer limit: the zonal LMPs must split then, and only then.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, write_scenario
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.market import TransmissionMarket
from gridlayers.results.store import ResultStore
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario

REFERENCE = REPO / "scenarios" / "isone-reference.yaml"
PARADIGMS = ["total_tso", "minimal_dso", "total_dso"]
NEMA, SEMA = 4, 7  # bus = zone index of the ISO-NE net
LIMIT_MW = 1200.0


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("reference")
    data = yaml.safe_load(REFERENCE.read_text())
    data["transmission"]["json"] = str(REPO / "scenarios" / "networks" / "isone8.json")
    data["ldas"] = [
        x for x in data["ldas"] if x["name"] in ("nema_urban", "sema_rural", "ct_urban")
    ]
    data["horizon"] = {"start": "2016-06-08 16:00", "intervals": 4, "interval_min": 60}
    data["paradigms"] = PARADIGMS
    data["forecast"] = dict.fromkeys(
        ("load_error_std", "pv_error_std", "wind_error_std", "bulk_load_error_std"), 0.0
    )
    data["output"] = {"bus_voltages": False}
    for key in ("loop", "planner"):
        del data[key]
    file = write_scenario(tmp, data)
    scenario = load_scenario(file)
    outcome = run_scenario(scenario, tmp / "run")
    return tmp / "run", scenario, outcome


def test_every_paradigm_completes(slice_run: tuple) -> None:
    _, _, outcome = slice_run
    assert outcome.ok, outcome.summary.get("error")
    for p in PARADIGMS:
        kpis = outcome.summary["paradigms"][p]
        assert kpis["unserved_energy_mwh"] == pytest.approx(0.0, abs=1e-6)
        assert kpis["nonconverged_powerflows"] == 0


def _lmp(folder: Path) -> pd.DataFrame:
    store = ResultStore(folder / "results.duckdb")
    try:
        return store.query(
            "SELECT paradigm, interval, bus, lmp_usd_per_mwh, lmp_rt_usd_per_mwh FROM lmp"
        )
    finally:
        store.close()


def test_zonal_lmps_split_when_the_nema_import_limit_binds(slice_run: tuple) -> None:
    folder, scenario, _ = slice_run
    lmp = _lmp(folder)
    for p in PARADIGMS:
        for col in ("lmp_usd_per_mwh", "lmp_rt_usd_per_mwh"):
            table = lmp[lmp.paradigm == p].pivot(index="interval", columns="bus", values=col)
            spread = table.max(axis=1) - table.min(axis=1)
            assert spread[0] < 1.0, (p, col)  # 16:00: no corridor at its limit, one price
            assert (spread[1:] > 100.0).all(), (p, col)  # 17:00-19:00: NEMA behind its limit
            assert (table.loc[1:, NEMA] > table.loc[1:, SEMA] + 100.0).all()
    # the same LMPs under every paradigm (the LDAs are a few MW at GW-sized zones)
    rt = lmp.pivot_table(index=["interval", "bus"], columns="paradigm", values="lmp_rt_usd_per_mwh")
    assert np.allclose(rt[PARADIGMS[0]], rt[PARADIGMS[1]], atol=0.5)
    assert np.allclose(rt[PARADIGMS[0]], rt[PARADIGMS[2]], atol=0.5)


def _clear(scenario: object, imports: pd.DataFrame, limit_factor: float) -> list:
    """Re-clear the run's real-time stage; return per interval (lines at limit, LMP spread)."""
    net = transmission_network(scenario.transmission)
    net.line["max_loading_percent"] *= limit_factor
    market = TransmissionMarket(net, cost_segments=scenario.transmission.cost_segments)
    bus = {lda.name: lda.interface_bus for lda in scenario.ldas}
    scale = load_scale(scenario.transmission.load_profile, scenario.horizon)
    base = net.load.p_mw * net.load.scaling
    out = []
    for k in range(scenario.horizon.intervals):
        extra: dict[int, float] = {}
        for row in imports[imports.interval == k].itertuples():
            extra[bus[row.lda]] = extra.get(bus[row.lda], 0.0) + row.p_import_mw
        res = market.clear(load_p_mw=base * scale[k], extra_load_mw=extra)
        assert (res.line_p_mw.abs() <= LIMIT_MW * limit_factor + 1e-6).all()
        lmp = res.lmp_usd_per_mwh
        at_limit = int((res.line_p_mw.abs() > LIMIT_MW * limit_factor - 1e-3).sum())
        out.append((at_limit, float(lmp.max() - lmp.min())))
    return out


def test_the_split_comes_from_the_corridor_transfer_limits(slice_run: tuple) -> None:
    folder, scenario, _ = slice_run
    store = ResultStore(folder / "results.duckdb")
    try:
        imports = store.query(
            "SELECT interval, lda, p_import_mw FROM feeder_interval WHERE paradigm = 'total_dso'"
        )
        rt = store.query(
            "SELECT interval, bus, lmp_rt_usd_per_mwh AS lmp FROM lmp WHERE paradigm = 'total_dso'"
        ).pivot(index="interval", columns="bus", values="lmp")
    finally:
        store.close()
    limited = _clear(scenario, imports, 1.0)
    # the run's real-time LMPs are this clearing's: the split is the DC-OPF's, not noise
    np.testing.assert_allclose([s for _, s in limited], rt.max(axis=1) - rt.min(axis=1), atol=1e-6)
    assert all(n >= 1 for n, _ in limited[1:])  # a corridor at 1,200 MW whenever prices split
    # with ten times the transfer limits nothing binds and every zone has one price
    relaxed = _clear(scenario, imports, 10.0)
    assert all(n == 0 and spread < 1e-6 for n, spread in relaxed)
