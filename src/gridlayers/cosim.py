"""mosaik wiring of one scenario run (the data flow of DESIGN.md, one market interval).

Paradigm ``passive``: per interval, each LDA's feeder runs AC power flow with actual
load and generation; its realised import enters the TSO clearing as load at the
interface bus (same mosaik time, no lag); the collector stores everything.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import mosaik

from gridlayers.results.store import ResultStore
from gridlayers.scenarios.schema import Scenario
from gridlayers.simulators.feeder import OUTPUTS as FEEDER_OUTPUTS
from gridlayers.simulators.market import META as MARKET_META

_MODULES = {"Feeder": "gridlayers.simulators.feeder", "Market": "gridlayers.simulators.market"}
_CLASSES = {"Feeder": "FeederSim", "Market": "MarketSim"}


def sim_config(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Return mosaik's SIM_CONFIG: each simulator in-process or as a subprocess (``cmd``)."""
    modes = {"Feeder": scenario.simulators.feeder, "Market": scenario.simulators.market}
    config: dict[str, dict[str, str]] = {
        "Collector": {"python": "gridlayers.simulators.collector:Collector"}
    }
    for name, mode in modes.items():
        if mode == "python":
            config[name] = {"python": f"{_MODULES[name]}:{_CLASSES[name]}"}
        else:
            config[name] = {"cmd": f"{sys.executable} -m {_MODULES[name]} %(addr)s"}
    return config


def run_world(
    scenario: Scenario,
    paradigm: str,
    store: ResultStore,
    on_interval: Callable[[int], None] | None = None,
) -> None:
    """Build the mosaik World for one paradigm and run the whole horizon.

    Parameters
    ----------
    scenario : Scenario
        The validated scenario.
    paradigm : str
        Which paradigm to wire (currently ``"passive"``).
    store : ResultStore
        Open store the collector writes into, interval by interval.
    on_interval : callable, optional
        Called with the interval number after each interval is stored (progress).

    """
    if paradigm != "passive":
        msg = f"paradigm {paradigm!r} is not wired"
        raise ValueError(msg)
    data = scenario.model_dump(mode="json", by_alias=True)
    horizon = scenario.horizon
    world = mosaik.World(
        sim_config(scenario), mosaik_config={"start_timeout": 120}, skip_greetings=True
    )
    try:
        feeders = {
            lda.name: world.start("Feeder", scenario=data).Feeder(lda=lda.name)
            for lda in scenario.ldas
        }
        bus_of = {lda.name: lda.interface_bus for lda in scenario.ldas}
        tso = world.start("Market", scenario=data).TSO(
            interfaces={e.full_id: bus_of[name] for name, e in feeders.items()}
        )
        sources = {e.full_id: ["feeder", name] for name, e in feeders.items()}
        sources[tso.full_id] = ["market", "tso"]
        collector = world.start(
            "Collector", store=store, paradigm=paradigm, start=horizon.start,
            interval_s=horizon.interval_s, bus_voltages=scenario.output.bus_voltages,
            on_interval=on_interval,
        ).Collector(sources=sources)  # fmt: skip
        market_attrs = [a for a in MARKET_META["models"]["TSO"]["attrs"] if a != "P_import[MW]"]
        for entity in feeders.values():
            world.connect(entity, tso, "P_import[MW]")
            world.connect(entity, collector, *FEEDER_OUTPUTS)
        world.connect(tso, collector, *market_attrs)
        world.run(until=horizon.intervals * horizon.interval_s, print_progress=False)
    finally:
        world.shutdown()
