"""mosaik wiring of an LDA's sub-areas under Total DSO (``docs/layers.md``).

For an LDA with ``subareas`` under ``total_dso`` (in-process LDAs only):

* one aggregator entity per (aggregator, area) holding only that area's own devices
  (``<lda>.<aggregator>@<area>``; the LDA's own level is the area named like the LDA),
  so no parent ever receives a child area's device offers;
* one ``Area`` entity per sub-area (:mod:`gridlayers.simulators.area`), in one area
  simulator per depth below the DSO (mosaik links connect different simulators);
* links: aggregators -> their area's operator (``offers``, phase ``t0+0``) and back
  (``setpoints[MW]``, time-shifted to ``t0+2``); child -> parent ``area_offer``
  (ordinary, ``t0+0``); parent -> child ``area_award`` (**weak**, within ``t0+1``: the
  simulators are started in one ``world.group()``, :func:`gridlayers.cosim.needs_group`);
  every aggregator -> the LDA's feeder (``DER_P[MW]``: the real devices at their real
  buses) and -> collector; areas -> collector (``area_report``); feeder -> collector
  (``PCC_P[MW]``, the realised AC export of each sub-area).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridlayers.agents import PHASE_OFFER
from gridlayers.agents.area_setup import area_aggregators, lda_areas, nested
from gridlayers.simulators.feeder import PCC_ATTR


@dataclass
class LdaAreas:
    """The entities of one nested LDA: per area its aggregators and (sub-areas) its operator."""

    lda: str
    aggregators: dict[str, list[Any]] = field(default_factory=dict)  # area -> entities
    operators: dict[str, Any] = field(default_factory=dict)  # sub-area -> Area entity
    parent: dict[str, str] = field(default_factory=dict)  # sub-area -> parent area


def nested_lda(lda: Any, paradigm: str) -> bool:
    """Whether LDA ``lda`` (a config) runs its sub-areas in this paradigm."""
    return paradigm == "total_dso" and bool(lda.subareas)


def start_areas(  # noqa: PLR0913
    model: Any,
    paradigm: str,
    asim: Any,
    area_sim: Any,
    resume: Any,
    labels: dict[str, str],
    sources: dict[str, list[str]],
    initial: set[tuple[str, int]],
    label: str,
) -> LdaAreas:
    """Create the aggregator entities per area and the ``Area`` entities of one LDA.

    ``model``: the LDA model (in this process); ``asim``: the partition's aggregator
    simulator; ``area_sim(depth)``: its area simulator for sub-areas at that depth below
    the DSO (1: the LDA's own sub-areas); ``resume``: :class:`gridlayers.cosim._Resume`.
    Fills ``labels``, ``sources`` and ``initial`` like the LDA's other entities.
    """
    if not nested(model, paradigm):
        msg = f"LDA {model.name!r} has no sub-areas under {paradigm!r}"
        raise ValueError(msg)
    tree = lda_areas(model)
    out = LdaAreas(model.name)
    for area, names in area_aggregators(model).items():
        out.aggregators[area] = []
        for name in names:
            key = f"{model.name}.{name}@{area}"
            state = resume.state(f"aggregator:{key}")
            entity = asim.Aggregator(lda=model.name, aggregator=name, area=area, **state)
            labels[entity.sid] = label
            sources[entity.full_id] = ["aggregator", key]
            initial.add((entity.sid, PHASE_OFFER))
            out.aggregators[area].append(entity)
    depth = {model.name: 0}
    for node in list(tree.walk())[1:]:  # parents first
        depth[node.name] = depth[node.parent] + 1
        key = f"{model.name}.{node.name}"
        state = resume.state(f"area:{key}")
        entity = area_sim(depth[node.name]).Area(lda=model.name, area=node.name, **state)
        labels[entity.sid] = label
        sources[entity.full_id] = ["area", key]
        out.operators[node.name] = entity
        out.parent[node.name] = node.parent
        if not node.own_devices and not node.children:  # nothing triggers it
            initial.add((entity.sid, PHASE_OFFER))
    return out


def connect_areas(
    world: Any,
    areas: dict[str, LdaAreas],
    feeders: dict[str, Any],
    dsos: dict[str, Any],
    collector: Any,
    aggregator_outputs: list[str],
) -> None:
    """Connect the nested LDAs' entities (see the module notes)."""
    shifted = {"time_shifted": 1}
    for lda, nest in areas.items():
        operator = {lda: dsos[lda], **nest.operators}
        for area, entities in nest.aggregators.items():
            for agg in entities:
                world.connect(agg, feeders[lda], "DER_P[MW]")
                world.connect(agg, collector, *aggregator_outputs)
                world.connect(agg, operator[area], "offers")
                world.connect(operator[area], agg, "setpoints[MW]", **shifted)
        for area, entity in nest.operators.items():
            parent = operator[nest.parent[area]]
            world.connect(entity, parent, "area_offer")
            world.connect(parent, entity, "area_award", weak=True)
            world.connect(entity, collector, "area_report", "state")
        world.connect(feeders[lda], collector, PCC_ATTR)
