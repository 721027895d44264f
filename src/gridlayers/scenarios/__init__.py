"""Scenario files: schema, loading and reference resolution."""

from gridlayers.scenarios.load import ScenarioError, load_scenario
from gridlayers.scenarios.schema import Scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario"]
