"""The physics layer: pandapower networks, their profiles, and per-interval AC power flow.

An LDA's feeder with its DER, forecasts and actuals is assembled by :mod:`gridlayers.lda`.
"""

from __future__ import annotations

from gridlayers.grid.feeder import Feeder, FeederResult
from gridlayers.grid.profiles import FeederProfiles, feeder_profiles

__all__ = ["Feeder", "FeederProfiles", "FeederResult", "feeder_profiles"]
