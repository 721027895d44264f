"""Per-run cache of LDA models, so in-process simulators of one run build each LDA once.

Only aggregators change device state; feeders, DSOs and the TSO read the static parts
(network, ids, buses, profiles). The key includes a run id, so runs never share state.
Behind it sits the on-disk cache of :mod:`gridlayers.startup_cache`: a model missing
here is unpickled from disk (an independent object in its initial state) or built and
stored, so simulators in their own process and later runs skip building it.
"""

from __future__ import annotations

from typing import Any

from gridlayers.lda import LDAModel
from gridlayers.scenarios.schema import Scenario
from gridlayers.startup_cache import cached_lda

_CACHE: dict[tuple[str, str], LDAModel] = {}


def lda_model(run_id: str, scenario: dict[str, Any] | Scenario, lda: str) -> LDAModel:
    """Return the run's LDA model: from this process, the disk cache, or built on first use."""
    key = (run_id, lda)
    if key not in _CACHE:
        sc = scenario if isinstance(scenario, Scenario) else Scenario.model_validate(scenario)
        _CACHE[key] = cached_lda(sc, lda)
    return _CACHE[key]


def release(run_id: str) -> None:
    """Forget every LDA model of a finished run."""
    for key in [k for k in _CACHE if k[0] == run_id]:
        del _CACHE[key]
