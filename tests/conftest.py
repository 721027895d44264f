"""Shared fixtures: small scenarios written to temporary files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gridlayers.planner import PlannerConfig

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "scenarios" / "default.yaml"


def write_scenario(folder: Path, data: dict, name: str = "scenario.yaml") -> Path:
    """Write ``data`` as YAML into ``folder`` and return the path."""
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def default_data() -> dict:
    """The bundled default scenario as a dict (edit freely)."""
    return yaml.safe_load(DEFAULT.read_text())


@pytest.fixture
def small_data(default_data: dict) -> dict:
    """The default scenario shortened to 4 intervals around noon (fast)."""
    data = dict(default_data)
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 4, "interval_min": 15}
    data["output"] = {"bus_voltages": True}
    return data


def simple_config(**overrides: object) -> PlannerConfig:
    """One one-year epoch (DF = A = 1), no reserves, RPS, flexibility or batteries."""
    base = dict(
        n_epochs=1,
        epoch_years=1,
        multi_objective=False,
        rps=False,
        demand_flexibility=False,
        reserve_load_share=0.0,
        reserve_re_share=0.0,
        battery=False,
        obj_scale=1.0,
        mip_gap=1e-9,
    )
    base.update(overrides)
    return PlannerConfig(**base)
