"""Every bundled co-simulation scenario loads and validates, as users first run them.

Planner-only scenarios (no ``transmission`` section: ``isone8-so``, ``isone8-mo``,
``lda-planning``) are read by the planner and tested with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gridlayers.scenarios import load_scenario

SCENARIOS = [
    path
    for path in sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
    if "transmission" in yaml.safe_load(path.read_text())
]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_bundled_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name


def test_stress_scenario_is_a_stress_test() -> None:
    """30 LDAs with every DER type on 3.5x the default share of load buses (12,080 DER)."""
    scenario = load_scenario(SCENARIOS[0].parent / "stress.yaml")
    assert len(scenario.ldas) == 30
    assert len({lda.interface_bus for lda in scenario.ldas}) == 30
    shares = {e.type: e.share_of_load_buses for e in scenario.ldas[0].der.penetration}
    assert shares == {"pv": 1.0, "battery": 0.7, "flexible_load": 1.0, "ev_fleet": 0.875}
    assert all(lda.der == scenario.ldas[0].der for lda in scenario.ldas)
