"""Per-run cache of LDA models, so in-process simulators of one run build each LDA once.

Only aggregators change device state; feeders, DSOs and the TSO read the static parts
(network, ids, buses, profiles). The key includes a run id, so runs never share state.
Behind it sits the on-disk cache of :mod:`gridlayers.startup_cache`: a model missing
here is unpickled from disk (an independent object in its initial state) or built and
stored, so simulators in their own process and later runs skip building it.

Notes
-----
A model holds its horizon's profiles: for a year of a SimBench MV feeder, ~79 MB of
actual feeder profiles, ~79 MB of forecasts and ~52 MB of bus loads. In-process, every
simulator shares one model per LDA. A simulator in a process of its own
(:mod:`gridlayers.simulators.serve` sets :data:`PROCESS_ROLE`) keeps only the profiles
its kind reads (:data:`ROLE_READS`) and drops the others when the model is loaded, so a
partitioned year holds each profile once per reading process instead of three times
(plus once in the main process, which only wires the simulators:
:func:`wiring_facts`).

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridlayers.lda import LDAModel
from gridlayers.scenarios.schema import Scenario
from gridlayers.startup_cache import cached_lda

_CACHE: dict[tuple[str, str], LDAModel] = {}

#: Year-long profile attributes of :class:`~gridlayers.lda.LDAModel`.
PROFILES = frozenset(
    {
        "actual",
        "forecast",
        "bus_load_actual_mw",
        "bus_load_forecast_mw",
        "pv_pu_actual",
        "pv_pu_forecast",
    }
)
#: Profiles each simulator kind reads (the feeder: actual loads and generators; the
#: DSO: forecast fixed injections; aggregators: device conditions).
ROLE_READS = {
    "feeder": frozenset({"actual"}),
    "dso": frozenset({"forecast"}),
    "aggregator": frozenset(
        {"bus_load_actual_mw", "bus_load_forecast_mw", "pv_pu_actual", "pv_pu_forecast"}
    ),
}
#: Kind of simulator this process serves alone (a key of :data:`ROLE_READS`), or None
#: when simulators share the process (every profile kept).
PROCESS_ROLE: str | None = None


def lda_model(run_id: str, scenario: dict[str, Any] | Scenario, lda: str) -> LDAModel:
    """Return the run's LDA model: from this process, the disk cache, or built on first use.

    In a process serving one simulator kind (:data:`PROCESS_ROLE`), the profiles that kind
    does not read are ``None``.
    """
    key = (run_id, lda)
    if key not in _CACHE:
        sc = scenario if isinstance(scenario, Scenario) else Scenario.model_validate(scenario)
        model = cached_lda(sc, lda)
        if PROCESS_ROLE is not None:
            for name in PROFILES - ROLE_READS[PROCESS_ROLE]:
                setattr(model, name, None)
        _CACHE[key] = model
    return _CACHE[key]


@dataclass(frozen=True)
class WiringFacts:
    """What the main process needs of an LDA to wire its simulators.

    Attributes
    ----------
    aggregators : tuple of str
        Aggregator names, in the model's order.
    has_der : bool
        Whether any DER device (a static generator the aggregators dispatch) exists.

    """

    aggregators: tuple[str, ...]
    has_der: bool


def wiring_facts(run_id: str, scenario: Scenario, lda: str, *, in_process: bool) -> WiringFacts:
    """Return an LDA's :class:`WiringFacts`.

    ``in_process``: the LDA's simulators run in this process, so the model is loaded into
    the run's cache (they reuse it). Otherwise the model is read and dropped: the main
    process of a partitioned run holds no LDA's profiles.
    """
    model = lda_model(run_id, scenario, lda) if in_process else cached_lda(scenario, lda)
    return WiringFacts(tuple(model.aggregators), bool(model.der_sgen))


def release(run_id: str) -> None:
    """Forget every LDA model of a finished run."""
    for key in [k for k in _CACHE if k[0] == run_id]:
        del _CACHE[key]
