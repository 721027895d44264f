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
``iterative``    aggregators → DSO (offers); DSO → TSO (ADMM proposal) and TSO ⇝ DSO (price
                 and schedule, a weak link: same-time loop at ``t0``) until the rounds stop;
                 then as ``total_dso``: TSO ⇢ DSO (award) ⇢ aggregators
always           aggregators → feeders (realised DER, AC power flow at ``t0+2``) → TSO
                 (realised imports: real-time stage) → collector; agents → collector
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mosaik
from mosaik.exceptions import SimulationError

from gridlayers import mosaik_compat
from gridlayers.agents import PHASE_DISPATCH, PHASE_OFFER
from gridlayers.agents.aggregator import DEVICE_ATTRS
from gridlayers.agents.aggregator import RECORD_ATTRS as AGGREGATOR_OUTPUTS
from gridlayers.agents.lda_cache import lda_model, release, wiring_facts
from gridlayers.results.checkpoint import ResumeError, fingerprint
from gridlayers.results.store import ResultStore
from gridlayers.scenarios.schema import OutputConfig, Scenario
from gridlayers.simulators.area_wiring import connect_areas, nested_lda, start_areas
from gridlayers.simulators.feeder import BRANCH_OUTPUTS, DETAIL_OUTPUTS
from gridlayers.simulators.feeder import OUTPUTS as FEEDER_OUTPUTS
from gridlayers.simulators.feeder import STATE_ATTR as FEEDER_STATE
from gridlayers.simulators.market import RECORD_ATTR
from gridlayers.simulators.serve import KINDS, command
from gridlayers.simulators.watchdog import watch

PARADIGMS = ("passive", "minimal_dso", "total_dso", "total_tso", "iterative")
mosaik_compat.install()  # LDA partitions in other processes (see the module)

#: Seconds to keep trying to reach a served partition's simulator (``lda: connect``).
CONNECT_RETRY_S = 60.0

#: LDA-level simulators: mosaik name -> kind in :data:`gridlayers.simulators.serve.KINDS`.
_LDA_KINDS = {"Aggregator": "aggregator", "DSO": "dso", "Feeder": "feeder"}
_MARKET = "gridlayers.simulators.market"


def sim_config(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Return mosaik's SIM_CONFIG (see ``simulators`` in the scenario reference).

    Collector always in-process; market in-process or ``cmd``; each partition's aggregator,
    DSO and feeder simulators in-process, ``cmd`` or ``connect`` (then named
    ``<Kind>-p<partition>``, one address each).
    """
    sims = scenario.simulators
    config: dict[str, dict[str, str]] = {
        "Collector": {"python": "gridlayers.simulators.collector:Collector"},
        "Area": {"python": "gridlayers.simulators.area:AreaSim"},  # sub-areas, in-process
        "Market": (
            {"python": f"{_MARKET}:MarketSim"}
            if sims.market == "python"
            else {"cmd": f"{sys.executable} -m {_MARKET} %(addr)s"}
        ),
    }
    for name, kind in _LDA_KINDS.items():
        if sims.lda == "python" and (kind != "feeder" or sims.feeder == "python"):
            config[name] = {"python": KINDS[kind][0]}
        elif sims.lda in ("python", "cmd"):  # feeder: cmd keeps one process per LDA feeder
            config[name] = {"cmd": command(kind)}
        else:
            for p, address in enumerate(sims.addresses):
                host, port = address.rsplit(":", 1)
                config[f"{name}-p{p}"] = {"connect": f"{host}:{int(port) + KINDS[kind][1]}"}
    return config


def partitions(scenario: Scenario) -> list[list[str]]:
    """Return the LDA names of each partition: LDA ``i`` goes to partition ``i mod N``."""
    n = scenario.simulators.partition_count(len(scenario.ldas))
    names = [lda.name for lda in scenario.ldas]
    return [names[p::n] for p in range(n)]


def run_world(
    scenario: Scenario,
    paradigm: str,
    store: ResultStore,
    on_interval: Callable[[int], None] | None = None,
    intervals: int | None = None,
    start: int = 0,
    states: dict[str, Any] | None = None,
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
        Called with the interval number once it is complete (committed if a commit was due).
    intervals : int, optional
        Stop after this many market intervals (default: the whole horizon). Everything
        is still built for the whole horizon (profiles, forecasts), as in a full run.
    start : int
        First interval to run (``run --resume``: the one after the last stored). mosaik
        time stays absolute (interval ``k`` at ``k * interval_s``); the simulators' first
        events are at ``start``'s and nothing happens before them.
    states : dict, optional
        With ``start > 0``: every stateful entity's state after interval ``start - 1``
        (:func:`gridlayers.results.checkpoint.states`, keys ``kind:name``).

    Raises
    ------
    SimulatorTimeout
        If a simulator does not answer within ``simulators.step_timeout_s``.
    SimulatorCrashed
        If a simulator's process dies (:mod:`gridlayers.simulators.watchdog`).

    """
    if paradigm not in PARADIGMS:
        msg = f"unknown paradigm {paradigm!r}; known: {PARADIGMS}"
        raise ValueError(msg)
    if start > 0 and states is None:
        msg = f"starting at interval {start} needs the checkpointed states"
        raise ValueError(msg)
    run_id = uuid.uuid4().hex
    data = scenario.model_dump(mode="json", by_alias=True)
    world = mosaik.World(
        sim_config(scenario),
        mosaik_config={"start_timeout": 180},
        skip_greetings=True,
        **loop_options(scenario, paradigm),
    )
    horizon = scenario.horizon
    try:
        labels = _wire(
            world,
            scenario,
            paradigm,
            store,
            on_interval,
            dict(scenario=data, paradigm=paradigm, run_id=run_id),
            _Resume(start, states if start else None),
        )
        n = horizon.intervals if intervals is None else min(intervals, horizon.intervals)
        with watch(world, scenario.simulators.step_timeout_s, horizon.interval_s, labels):
            world.run(until=n * horizon.interval_s, print_progress=False)
    except BaseException:
        # a dead simulator can make the shutdown fail too; keep the error that ended the run
        with contextlib.suppress(Exception):
            world.shutdown()
        raise
    else:
        world.shutdown()
    finally:
        release(run_id)


@dataclass(frozen=True)
class _Resume:
    """Where a world starts: interval ``start`` with these entity states (``None``: fresh)."""

    start: int = 0
    states: dict[str, Any] | None = None

    def state(self, key: str) -> dict[str, Any]:
        """Create parameters restoring entity ``key`` (``kind:name``); none when fresh."""
        if self.states is None:
            return {}
        if key not in self.states:
            msg = f"the checkpoint has no state for {key}; cannot resume"
            raise ResumeError(msg)
        return {"state": self.states[key]}


def _wire(  # noqa: PLR0913
    world: mosaik.World,
    scenario: Scenario,
    paradigm: str,
    store: ResultStore,
    on_interval: Callable[[int], None] | None,
    common: dict[str, Any],
    resume: _Resume,
) -> dict[str, str]:
    """Start and connect every simulator; return a label per simulator id (for messages)."""
    labels: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    # weak (same-time loop) links are allowed only inside one mosaik group
    group = world.group() if needs_group(scenario, paradigm) else contextlib.nullcontext()
    with group:
        areas: dict[str, Any] = {}  # nested LDAs (sub-areas under total_dso)
        started = _start_lda_simulators(world, scenario, common, resume, labels, sources, areas)
        feeders, aggs, dsos = started
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
        intervals=horizon.intervals,
        scenario_sha256=fingerprint(common["scenario"]),
        checkpoint_intervals=scenario.output.checkpoint_intervals,
        bus_voltages=scenario.output.bus_voltages,
        on_interval=on_interval,
    ).Collector(sources=sources)
    labels[tso.sid] = "TSO market"
    labels[collector.sid] = "result collector"
    _connect(world, paradigm, feeders, aggs, dsos, tso, collector, scenario.output)
    connect_areas(world, areas, feeders, dsos, collector, collector_outputs(scenario.output)[1])
    return labels


def _start_lda_simulators(  # noqa: PLR0913
    world: mosaik.World,
    scenario: Scenario,
    common: dict[str, Any],
    resume: _Resume,
    labels: dict[str, str],
    sources: dict[str, list[str]],
    areas: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, tuple[str, Any]], dict[str, Any]]:
    """Start every partition's feeder, aggregator and DSO simulators and their entities.

    Fills ``labels`` (simulator id -> label for messages) and ``sources`` (entity full id
    -> ``[kind, name]``) and sets the initial events of the entities nothing triggers.
    Returns the feeder and DSO entities per LDA and the aggregator entities per full id
    (with their LDA). LDAs with sub-areas under Total DSO get their aggregators per area
    and their ``Area`` entities in ``areas`` instead (:mod:`gridlayers.simulators.area_wiring`).
    """
    feeders: dict[str, Any] = {}
    aggs: dict[str, tuple[str, Any]] = {}
    dsos: dict[str, Any] = {}
    # Each partition has one aggregator, one DSO and one feeder simulator for its LDAs:
    # mosaik's scheduling cost grows with the number of simulators, not of entities.
    # Feeders as subprocesses without partitions ('feeder: cmd') get one process per LDA.
    connect = scenario.simulators.lda == "connect"
    per_lda_feeders = scenario.simulators.lda == "python" and scenario.simulators.feeder == "cmd"
    # the main process keeps the LDA models only if their agents run in it
    lda_in_process = scenario.simulators.lda == "python"
    initial: set[tuple[str, int]] = set()  # (simulator, time) of steps nothing triggers
    for p, names in enumerate(partitions(scenario)):
        area_sims: dict[int, Any] = {}  # the partition's area simulator per depth
        start = _starter(world, common, p if connect else None)
        fsim, asim, dsim = None if per_lda_feeders else start("Feeder"), None, start("DSO")
        label = f"partition {p}: {', '.join(names)}"
        for lda_name in names:
            facts = wiring_facts(common["run_id"], scenario, lda_name, in_process=lda_in_process)
            lda_fsim = start("Feeder") if per_lda_feeders else fsim
            feeders[lda_name] = lda_fsim.Feeder(lda=lda_name, **resume.state(f"feeder:{lda_name}"))
            labels[feeders[lda_name].sid] = f"LDA {lda_name}" if per_lda_feeders else label
            sources[feeders[lda_name].full_id] = ["feeder", lda_name]
            if not facts.has_der:  # no aggregator triggers this feeder: it steps on its own
                initial.add((feeders[lda_name].sid, PHASE_DISPATCH))
            lda_config = next(c for c in scenario.ldas if c.name == lda_name)
            if nested_lda(lda_config, common["paradigm"]):
                if asim is None and facts.aggregators:
                    asim = start("Aggregator")
                model = lda_model(common["run_id"], scenario, lda_name)
                area_sim = functools.partial(_area_sim, area_sims, start)
                where = (labels, sources, initial, label)
                areas[lda_name] = start_areas(
                    model, common["paradigm"], asim, area_sim, resume, *where
                )
            elif facts.aggregators:
                if asim is None:
                    asim = start("Aggregator")
                for name in facts.aggregators:
                    state = resume.state(f"aggregator:{lda_name}.{name}")
                    entity = asim.Aggregator(lda=lda_name, aggregator=name, **state)
                    labels[entity.sid] = label
                    aggs[entity.full_id] = (lda_name, entity)
                    sources[entity.full_id] = ["aggregator", f"{lda_name}.{name}"]
                    initial.add((entity.sid, PHASE_OFFER))
            dsos[lda_name] = dsim.DSO(lda=lda_name)
            labels[dsos[lda_name].sid] = label
            sources[dsos[lda_name].full_id] = ["dso", lda_name]
            if not facts.aggregators:  # no offers trigger this DSO: it bids on its own
                initial.add((dsos[lda_name].sid, PHASE_OFFER))
    first = resume.start * scenario.horizon.interval_s  # nothing happens before it
    for sid, time_ in sorted(initial):
        world.set_initial_event(sid, first + time_)
    return feeders, aggs, dsos


def _area_sim(sims: dict[int, Any], start: Callable[[str], Any], depth: int) -> Any:
    """Return the partition's area simulator for sub-areas at ``depth`` (started once)."""
    if depth not in sims:
        sims[depth] = start("Area")
    return sims[depth]


def needs_group(scenario: Scenario, paradigm: str) -> bool:
    """Whether the run has weak links (mosaik same-time loops).

    mosaik allows weak links only between simulators started inside one
    ``world.group()``; the LDA and market simulators are then started in one.
    """
    nested = any(nested_lda(lda, paradigm) for lda in scenario.ldas)
    # iterative: the ADMM rounds (TSO -> DSO weak, DSO -> TSO); sub-areas under total_dso:
    # awards flow down within t0+1 (parent -> child weak, child -> parent)
    return paradigm == "iterative" or nested


#: Same-time loop iterations allowed beyond ``coordination.max_rounds`` (iterative). The
#: first round is the interval's first step, each further one a loop iteration: measured,
#: ``max_loop_iterations = max_rounds`` runs a 3-round limit through and ``max_rounds - 1``
#: stops it (mosaik's "sub-step more than 2 times"); 5 more are a safety margin.
LOOP_MARGIN = 5


def loop_options(scenario: Scenario, paradigm: str) -> dict[str, int]:
    """Return ``mosaik.World`` keywords for same-time loops (``max_loop_iterations``)."""
    if paradigm != "iterative":
        return {}
    return {"max_loop_iterations": scenario.coordination.max_rounds + LOOP_MARGIN}


def collector_outputs(output: OutputConfig) -> tuple[list[str], list[str]]:
    """Return the feeder and aggregator attributes the collector needs for ``output``.

    Per-element outputs (bus voltages, branch loadings, per-device dispatch) are
    connected only when stored, so a run without them never builds them.
    """
    feeder = [a for a in FEEDER_OUTPUTS if a not in DETAIL_OUTPUTS] + [FEEDER_STATE]
    if output.bus_voltages:
        feeder.append("Vm[pu]")
    if output.branch_loading:
        feeder += BRANCH_OUTPUTS
    aggregator = AGGREGATOR_OUTPUTS + (DEVICE_ATTRS if output.device_dispatch else [])
    return feeder, aggregator


def _starter(world: mosaik.World, common: dict[str, Any], partition: int | None):
    """Return ``start(name)``: a new simulator of that kind (of ``partition`` if connected).

    A served partition restarts its simulators after each world (paradigm): connecting
    is retried for up to :data:`CONNECT_RETRY_S` seconds while they come back up.
    """

    def start(name: str) -> Any:
        if partition is None:
            return world.start(name, **common)
        deadline = time.monotonic() + CONNECT_RETRY_S
        while True:
            try:
                return world.start(f"{name}-p{partition}", **common)
            except SimulationError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    return start


def _connect(
    world: mosaik.World,
    paradigm: str,
    feeders: dict,
    aggs: dict,
    dsos: dict,
    tso: Any,
    collector: Any,
    output: OutputConfig,
) -> None:
    shifted = {"time_shifted": 1}
    feeder_outputs, aggregator_outputs = collector_outputs(output)
    for feeder in feeders.values():
        world.connect(feeder, collector, *feeder_outputs)
        world.connect(feeder, tso, "P_import[MW]")  # real-time stage
    for lda, agg in aggs.values():
        world.connect(agg, feeders[lda], "DER_P[MW]")
        world.connect(agg, collector, *aggregator_outputs)
        world.connect(agg, dsos[lda], "offers")
        world.connect(dsos[lda], agg, "setpoints[MW]", **shifted)
        if paradigm == "minimal_dso":
            world.connect(agg, tso, "portfolio")
            world.connect(agg, dsos[lda], "proposed[MW]")
            world.connect(tso, agg, "awards", **shifted)
    if paradigm == "iterative":  # ADMM rounds in a same-time loop, then as Total DSO
        for dso in dsos.values():
            world.connect(dso, tso, "admm_proposal")
            world.connect(tso, dso, "admm_price", weak=True)
    for dso in dsos.values():
        world.connect(dso, tso, "bid", "tso_inputs")
        world.connect(tso, dso, "awards", "interface_LMP", "tso_setpoints", **shifted)
        world.connect(dso, collector, "dso_report")
    world.connect(tso, collector, RECORD_ATTR)
