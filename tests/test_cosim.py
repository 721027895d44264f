"""The mosaik co-simulation against a direct, mosaik-free recomputation of the same intervals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import query_results, write_scenario
from gridlayers.grid import Feeder
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.lda import build_lda
from gridlayers.market import TransmissionMarket
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario
from gridlayers.simulators.feeder import FeederSim


def _table(out: Path, sql: str) -> list[tuple]:
    return query_results(out, sql)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    import yaml

    from conftest import DEFAULT

    data = yaml.safe_load(DEFAULT.read_text())
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 4, "interval_min": 15}
    data["paradigms"] = ["passive"]
    for lda in data["ldas"]:  # the plain wiring; DER dispatch is checked separately below
        lda.pop("der", None)
    folder = tmp_path_factory.mktemp("small")
    scenario = load_scenario(write_scenario(folder, data))
    outcome = run_scenario(scenario, folder / "out")
    return scenario, outcome


def test_run_matches_direct_recomputation(small_run: tuple) -> None:
    scenario, outcome = small_run
    assert outcome.ok, outcome.summary["error"]
    out = outcome.out_dir
    net = transmission_network(scenario.transmission)
    market = TransmissionMarket(net, cost_segments=scenario.transmission.cost_segments)
    scale = load_scale(scenario.transmission.load_profile, scenario.horizon)
    models = {lda.name: build_lda(scenario, lda.name) for lda in scenario.ldas}
    physics = {name: (Feeder(m.net, m.config.limits), m.actual) for name, m in models.items()}
    for k in range(scenario.horizon.intervals):
        extra = {}
        for lda in scenario.ldas:
            feeder, prof = physics[lda.name]
            r = feeder.run(prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k])
            extra[lda.interface_bus] = r.p_import_mw
            stored = _table(
                out,
                f"SELECT p_import_mw, losses_mw FROM feeder_interval "
                f"WHERE interval={k} AND lda='{lda.name}'",
            )
            assert stored[0] == pytest.approx((r.p_import_mw, r.losses_mw), abs=1e-9)
        # the real-time stage: actual bulk load plus the realised AC imports
        cleared = market.clear(
            load_p_mw=net.load.p_mw * net.load.scaling * scale[k], extra_load_mw=extra
        )
        cost = _table(out, f"SELECT generation_cost_usd FROM market_interval WHERE interval={k}")
        assert cost[0][0] == pytest.approx(cleared.generation_cost_usd_per_h * 0.25, rel=1e-9)
        for lda in scenario.ldas:
            lmp = _table(
                out,
                f"SELECT lmp_rt_usd_per_mwh FROM lmp WHERE interval={k} "
                f"AND bus={lda.interface_bus}",
            )[0][0]
            assert lmp == pytest.approx(cleared.lmp.at[lda.interface_bus], rel=1e-7)


def test_summary_kpis_agree_with_stored_series(small_run: tuple) -> None:
    scenario, outcome = small_run
    out = outcome.out_dir
    summary = json.loads((out / "summary.json").read_text())
    kpis = summary["paradigms"]["passive"]
    assert summary["status"] == "completed"
    assert kpis["intervals"] == 4
    total = _table(out, "SELECT sum(generation_cost_usd) FROM market_interval")[0][0]
    assert kpis["total_cost"] == pytest.approx(total)  # no DER, no unserved energy: generation
    realised = _table(out, "SELECT sum(realised_injection_mw) FROM interface_interval")[0][0]
    imports = _table(out, "SELECT sum(p_import_mw) FROM feeder_interval")[0][0]
    assert realised == pytest.approx(-imports, abs=1e-9)  # the real-time stage saw the physics
    assert kpis["imbalance_mwh"] > 0.0  # passive decides on forecasts, too
    imports = _table(out, "SELECT sum(p_import_mw) FROM feeder_interval")[0][0]
    assert kpis["lda_import_mwh"] == pytest.approx(imports * 0.25)
    n_buses = _table(out, "SELECT count(*) FROM bus_voltage WHERE interval=0")[0][0]
    assert n_buses > 200  # three MV feeders' buses stored
    assert {"results.duckdb", "summary.json", "scenario.resolved.yaml"} <= {
        p.name for p in out.iterdir()
    }
    assert set(kpis["interface_lmp_usd_per_mwh"]) == {"rural", "semiurban", "urban"}


def test_subprocess_simulators_give_identical_results(small_run: tuple, tmp_path: Path) -> None:
    scenario, outcome = small_run
    as_cmd = scenario.model_copy(
        update={
            "simulators": scenario.simulators.model_copy(update={"feeder": "cmd", "market": "cmd"})
        }
    )
    result = run_scenario(as_cmd, tmp_path / "cmd")
    assert result.ok, result.summary["error"]
    query = "SELECT interval, lda, p_import_mw FROM feeder_interval ORDER BY interval, lda"
    assert _table(result.out_dir, query) == _table(outcome.out_dir, query)
    query = "SELECT lmp_usd_per_mwh FROM lmp ORDER BY interval, bus"
    lmps = [row[0] for row in _table(result.out_dir, query)]
    assert lmps == pytest.approx([row[0] for row in _table(outcome.out_dir, query)], rel=1e-7)


def test_crashing_simulator_is_recorded_and_results_kept(
    small_run: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, _ = small_run
    original = FeederSim.step

    def crash_at_interval_2(self: FeederSim, time: int, inputs: dict, max_advance: int) -> int:
        if time >= 2 * scenario.horizon.interval_s:
            msg = "simulated feeder crash"
            raise RuntimeError(msg)
        return original(self, time, inputs, max_advance)

    monkeypatch.setattr(FeederSim, "step", crash_at_interval_2)
    result = run_scenario(scenario, tmp_path / "crash")
    assert not result.ok
    assert "simulated feeder crash" in result.summary["error"]
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["paradigms"]["passive"]["intervals"] == 2  # intervals 0 and 1 kept
    assert (result.out_dir / "error.log").read_text().count("simulated feeder crash")


def test_cli_run_writes_summary(small_run: tuple, tmp_path: Path) -> None:
    scenario, _ = small_run
    file = tmp_path / "s.yaml"
    import yaml

    file.write_text(yaml.safe_dump(scenario.model_dump(mode="json", by_alias=True)))
    done = subprocess.run(
        [sys.executable, "-m", "gridlayers.cli", "run", str(file), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "total resource cost [$]" in done.stdout
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["status"] == "completed"


def test_passive_der_dispatch_reaches_the_physics(tmp_path: Path) -> None:
    """Aggregators self-schedule with forecasts, dispatch with actuals, feeders see it."""
    import yaml

    from conftest import DEFAULT
    from gridlayers.grid import Feeder
    from gridlayers.lda import build_lda

    data = yaml.safe_load(DEFAULT.read_text())
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 3, "interval_min": 15}
    data["paradigms"] = ["passive"]
    data["ldas"] = data["ldas"][:1]
    scenario = load_scenario(write_scenario(tmp_path, data))
    outcome = run_scenario(scenario, tmp_path / "out")
    assert outcome.ok, outcome.summary["error"]
    model = build_lda(scenario, "rural")  # fresh devices, same seed
    assert len(model.devices) > 50
    feeder = Feeder(model.net, model.config.limits)
    for k in range(3):
        iv, fc, act = (
            model.interval(k),
            model.conditions(k, "forecast"),
            model.conditions(k, "actual"),
        )
        der = {}
        for dev in model.devices:
            p_set = dev.self_schedule_mw(iv, fc[dev.device_id])
            der[dev.device_id] = dev.dispatch(p_set, iv, act[dev.device_id], fc[dev.device_id]).p_mw
        r = feeder.run(
            model.actual.load_p_mw.iloc[k],
            model.actual.load_q_mvar.iloc[k],
            model.sgen_p_mw(k, der),
        )
        stored = _table(
            outcome.out_dir, f"SELECT p_import_mw FROM feeder_interval WHERE interval={k}"
        )
        assert stored[0][0] == pytest.approx(r.p_import_mw, abs=1e-9)
        energy = _table(
            outcome.out_dir,
            f"SELECT sum(der_energy_mwh) FROM aggregator_interval WHERE interval={k}",
        )
        assert energy[0][0] == pytest.approx(sum(der.values()) * 0.25, abs=1e-9)
