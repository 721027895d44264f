"""mosaik wiring of one paradigm (the data flow of one market interval, DESIGN.md).

Simulators and their links (``⇢`` = time-shifted by one mosaik second, see
:mod:`gridlayers.agents` for the phases inside an interval):

``passive``      aggregators → DSO (self-schedules) → TSO (forecast import, fixed bid);
                 TSO ⇢ DSO ⇢ aggregators (self-schedules passed back)
``minimal_dso``  aggregators → TSO (portfolio) and → DSO (offers, proposed split);
                 DSO → TSO (firm exchange); TSO ⇢ aggregators (awards);
                 TSO ⇢ DSO (interface LMP); DSO ⇢ aggregators (checked set-points)
``total_dso``    aggregators → DSO (offers) → TSO (virtual resource);
                 TSO ⇢ DSO (award) ⇢ aggregators (disaggregated set-points)
``total_tso``    aggregators → DSO (offers) → TSO (feeder inputs for the embedded
                 LinDistFlow models); TSO ⇢ DSO (set-points) ⇢ aggregators
always           aggregators → feeders (realised DER, AC power flow at ``t0+2``) → TSO
                 (realised imports: real-time stage) → collector; agents → collector
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from typing import Any

import mosaik

from gridlayers.agents import PHASE_DISPATCH, PHASE_OFFER
from gridlayers.agents.aggregator import RECORD_ATTRS as AGGREGATOR_OUTPUTS
from gridlayers.agents.lda_cache import lda_model, release
from gridlayers.results.store import ResultStore
from gridlayers.scenarios.schema import Scenario
from gridlayers.simulators.feeder import OUTPUTS as FEEDER_OUTPUTS
from gridlayers.simulators.market import RECORD_ATTR

PARADIGMS = ("passive", "minimal_dso", "total_dso", "total_tso")

_STARTERS = {
    "Feeder": ("gridlayers.simulators.feeder", "FeederSim", "feeder"),
    "Market": ("gridlayers.simulators.market", "MarketSim", "market"),
}
#: Agents run in-process. As subprocesses (cmd) mosaik 3.6 stops with "cannot progress
#: backwards" in its progress tracking of the time-shifted, event-based agent links.
_IN_PROCESS = {
    "Collector": "gridlayers.simulators.collector:Collector",
    "Aggregator": "gridlayers.agents.aggregator:AggregatorSim",
    "DSO": "gridlayers.agents.dso:DSOSim",
}


def sim_config(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Return mosaik's SIM_CONFIG: each simulator in-process or as a subprocess (``cmd``)."""
    config: dict[str, dict[str, str]] = {name: {"python": cls} for name, cls in _IN_PROCESS.items()}
    for name, (module, cls, field) in _STARTERS.items():  # feeders and market: python or cmd
        if getattr(scenario.simulators, field) == "python":
            config[name] = {"python": f"{module}:{cls}"}
        else:
            config[name] = {"cmd": f"{sys.executable} -m {module} %(addr)s"}
    return config


def run_world(
    scenario: Scenario,
    paradigm: str,
    store: ResultStore,
    on_interval: Callable[[int], None] | None = None,
    intervals: int | None = None,
) -> None:
    """Build the mosaik World for one paradigm and run the horizon (or its first intervals).

    Parameters
    ----------
    scenario : Scenario
        The validated scenario.
    paradigm : str
        One of :data:`PARADIGMS`.
    store : ResultStore
        Open store the collector writes into, interval by interval.
    on_interval : callable, optional
        Called with the interval number once every feeder of that interval is stored.
    intervals : int, optional
        Stop after this many market intervals (default: the whole horizon). Everything
        is still built for the whole horizon (profiles, forecasts), as in a full run.

    """
    if paradigm not in PARADIGMS:
        msg = f"unknown paradigm {paradigm!r}; known: {PARADIGMS}"
        raise ValueError(msg)
    run_id = uuid.uuid4().hex
    data = scenario.model_dump(mode="json", by_alias=True)
    world = mosaik.World(
        sim_config(scenario), mosaik_config={"start_timeout": 180}, skip_greetings=True
    )
    try:
        _wire(
            world,
            scenario,
            paradigm,
            store,
            on_interval,
            dict(scenario=data, paradigm=paradigm, run_id=run_id),
        )
        horizon = scenario.horizon
        n = horizon.intervals if intervals is None else min(intervals, horizon.intervals)
        world.run(until=n * horizon.interval_s, print_progress=False)
    finally:
        world.shutdown()
        release(run_id)


def _wire(
    world: mosaik.World,
    scenario: Scenario,
    paradigm: str,
    store: ResultStore,
    on_interval: Callable[[int], None] | None,
    common: dict[str, Any],
) -> None:
    sources: dict[str, list[str]] = {}
    feeders, aggs, dsos = {}, {}, {}
    # In-process, one feeder simulator and one aggregator simulator hold every LDA's
    # entities: mosaik's scheduling cost grows with the number of simulators, not of
    # entities. Feeders as subprocesses ('cmd') get one process per LDA.
    per_lda_feeders = scenario.simulators.feeder == "cmd"
    fsim = None if per_lda_feeders else world.start("Feeder", **common)
    asim = None
    self_stepping: set[str] = set()  # feeder simulators that step without aggregators
    for lda in scenario.ldas:
        model = lda_model(common["run_id"], scenario, lda.name)
        sim = world.start("Feeder", **common) if per_lda_feeders else fsim
        feeders[lda.name] = sim.Feeder(lda=lda.name)
        sources[feeders[lda.name].full_id] = ["feeder", lda.name]
        if not model.der_sgen:  # no aggregator triggers this feeder: it steps on its own
            self_stepping.add(feeders[lda.name].sid)
        if model.aggregators:
            if asim is None:
                asim = world.start("Aggregator", **common)
            for name in model.aggregators:
                entity = asim.Aggregator(lda=lda.name, aggregator=name)
                aggs[entity.full_id] = (lda.name, entity)
                sources[entity.full_id] = ["aggregator", f"{lda.name}.{name}"]
        dsos[lda.name] = world.start("DSO", **common).DSO(lda=lda.name)
        sources[dsos[lda.name].full_id] = ["dso", lda.name]
        if not model.aggregators:  # no offers trigger this DSO: it bids on its own
            world.set_initial_event(dsos[lda.name].sid, PHASE_OFFER)
    for sid in self_stepping:
        world.set_initial_event(sid, PHASE_DISPATCH)
    if aggs:
        world.set_initial_event(next(iter(aggs.values()))[1].sid, PHASE_OFFER)
    interfaces = {lda.name: lda.interface_bus for lda in scenario.ldas}
    tso = world.start("Market", **common).TSO(interfaces=interfaces, sources=dict(sources))
    sources[tso.full_id] = ["market", "tso"]
    horizon = scenario.horizon
    collector = world.start(
        "Collector",
        store=store,
        paradigm=paradigm,
        start=horizon.start,
        interval_s=horizon.interval_s,
        bus_voltages=scenario.output.bus_voltages,
        on_interval=on_interval,
    ).Collector(sources=sources)
    _connect(world, paradigm, feeders, aggs, dsos, tso, collector)


def _connect(
    world: mosaik.World,
    paradigm: str,
    feeders: dict,
    aggs: dict,
    dsos: dict,
    tso: Any,
    collector: Any,
) -> None:
    shifted = {"time_shifted": 1}
    for feeder in feeders.values():
        world.connect(feeder, collector, *FEEDER_OUTPUTS)
        world.connect(feeder, tso, "P_import[MW]")  # real-time stage
    for lda, agg in aggs.values():
        world.connect(agg, feeders[lda], "DER_P[MW]")
        world.connect(agg, collector, *AGGREGATOR_OUTPUTS)
        world.connect(agg, dsos[lda], "offers")
        world.connect(dsos[lda], agg, "setpoints[MW]", **shifted)
        if paradigm == "minimal_dso":
            world.connect(agg, tso, "portfolio")
            world.connect(agg, dsos[lda], "proposed[MW]")
            world.connect(tso, agg, "awards", **shifted)
    for dso in dsos.values():
        world.connect(dso, tso, "bid", "tso_inputs")
        world.connect(tso, dso, "awards", "interface_LMP", "tso_setpoints", **shifted)
        world.connect(dso, collector, "dso_report")
    world.connect(tso, collector, RECORD_ATTR)
