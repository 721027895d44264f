"""The 30-LDA variant of the default system completes under every paradigm.

Before Total TSO had slack on its feeder models, its market was infeasible at the first
interval of this variant (one feeder's uncontrolled load alone violates its band) and the
run failed with nothing computed, while Total DSO fell back for 2 LDA-intervals.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import invariants as inv
from conftest import DEFAULT, write_scenario
from gridlayers.runner import run_scenario
from gridlayers.scenarios import load_scenario
from gridlayers.scenarios.variants import many_ldas


@pytest.mark.slow
def test_thirty_ldas_complete_under_every_paradigm(tmp_path: Path) -> None:
    data = many_ldas(yaml.safe_load(DEFAULT.read_text()), 30)
    data["horizon"] = {"start": "2016-06-01 10:00", "intervals": 8, "interval_min": 15}
    data["paradigms"] = ["total_tso", "minimal_dso", "total_dso", "passive"]
    data["output"] = {"bus_voltages": False}
    scenario = load_scenario(write_scenario(tmp_path, data))
    outcome = run_scenario(scenario, tmp_path / "out")
    assert outcome.ok, outcome.summary["error"]
    for paradigm, kpis in outcome.summary["paradigms"].items():
        assert kpis["intervals"] == 8, paradigm
        assert inv.energy_balance(outcome.out_dir, paradigm, scenario) == [], paradigm
        assert kpis["payments"]["net"] == pytest.approx(0.0, abs=1e-6 * kpis["generation_cost"])
