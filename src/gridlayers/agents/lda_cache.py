"""Per-run cache of LDA models, so in-process simulators of one run build each LDA once.

Only aggregators change device state; feeders, DSOs and the TSO read the static parts
(network, ids, buses, profiles). The key includes a run id, so runs never share state.
Simulators in their own process simply build their own copy (same seed, same values).
"""

from __future__ import annotations

from typing import Any

from gridlayers.lda import LDAModel, build_lda
from gridlayers.scenarios.schema import Scenario

_CACHE: dict[tuple[str, str], LDAModel] = {}


def lda_model(run_id: str, scenario: dict[str, Any] | Scenario, lda: str) -> LDAModel:
    """Return the run's LDA model, building it on first use."""
    key = (run_id, lda)
    if key not in _CACHE:
        sc = scenario if isinstance(scenario, Scenario) else Scenario.model_validate(scenario)
        _CACHE[key] = build_lda(sc, lda)
    return _CACHE[key]


def release(run_id: str) -> None:
    """Forget every LDA model of a finished run."""
    for key in [k for k in _CACHE if k[0] == run_id]:
        del _CACHE[key]
