"""PlannerConfig validation and the bundled LDA planning scenario."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from gridlayers.planner import (
    LDAOperationalParams,
    PlannerConfig,
    build_model,
    load_planner_config,
    plan,
    read_inputs,
    with_lda_operational,
)

ROOT = Path(__file__).resolve().parents[1]
LDA_SCENARIO = ROOT / "scenarios" / "lda-planning.yaml"


def test_unknown_planner_key_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra_forbidden"):
        PlannerConfig.model_validate({"multi_objectiv": True})


def test_every_field_has_a_description() -> None:
    missing = [n for n, f in PlannerConfig.model_fields.items() if not f.description]
    assert missing == []


def test_lda_scenario_builds_small_model() -> None:
    name, config = load_planner_config(LDA_SCENARIO)
    assert name == "lda-planning"
    assert [a.name for a in config.lda.ldas] == ["me-south", "nh-south", "vt-chittenden"]
    m = build_model(read_inputs(config), config)
    assert list(m.ZONES) == ["ME", "NH", "VT"]
    assert len(m.LDA_TIMEPOINTS) == 2 * 3 * 2 * 24
    assert len(m.OFFSHORE_LINES) == 0


def test_unknown_lda_name_rejected() -> None:
    _, config = load_planner_config(LDA_SCENARIO)
    with pytest.raises(KeyError, match="nope"):
        with_lda_operational(config, {"nope": LDAOperationalParams()})


@pytest.mark.slow
def test_lda_scenario_replans_with_less_flexibility(tmp_path: Path) -> None:
    _, config = load_planner_config(LDA_SCENARIO)
    base = plan(config, tmp_path / "base")
    assert base["termination"] == "Optimal"
    # No usable DER flexibility at the interface: DER batteries become worthless.
    rigid = LDAOperationalParams(
        flex_availability_by_hour=[0.0] * 24, loss_factor=0.04, operating_cost_adder_usd_per_mwh=2.0
    )
    replanned = plan(with_lda_operational(config, {"me-south": rigid}), tmp_path / "rigid")
    assert replanned["ldas"]["me-south"]["der_battery_mw"] == pytest.approx(0.0, abs=1e-6)
    assert replanned["objective_busd"] >= base["objective_busd"] - 1e-9
