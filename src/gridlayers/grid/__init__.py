"""The physics layer: pandapower networks, their profiles, and per-interval AC power flow."""

from __future__ import annotations

from gridlayers.grid.feeder import Feeder, FeederResult
from gridlayers.grid.networks import network_from_source
from gridlayers.grid.profiles import FeederProfiles, feeder_profiles
from gridlayers.scenarios.schema import Scenario

__all__ = ["Feeder", "FeederProfiles", "FeederResult", "build_lda_physics"]


def build_lda_physics(scenario: Scenario, lda_name: str) -> tuple[Feeder, FeederProfiles]:
    """Build the feeder power flow and its actual profiles for one LDA of a scenario.

    Parameters
    ----------
    scenario : Scenario
        The validated scenario.
    lda_name : str
        Name of the LDA.

    Returns
    -------
    feeder : Feeder
        Prepared AC power flow of the LDA's feeder.
    profiles : FeederProfiles
        Actual load and generation per interval of the horizon (MW, Mvar).

    """
    lda = next(x for x in scenario.ldas if x.name == lda_name)
    net = network_from_source(lda.feeder)
    return Feeder(net, lda.limits), feeder_profiles(net, lda.feeder, scenario.horizon)
