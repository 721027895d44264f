"""mosaik adapter for sub-area operators (microgrids, buildings): one ``Area`` entity each.

Runs under ``total_dso`` for LDAs with ``subareas`` (``docs/layers.md``); one simulator
per partition of LDAs, in the main process (nested runs need ``simulators.lda:
python``). Each entity wraps one node of the LDA's area tree
(:func:`gridlayers.agents.area_setup.lda_areas`), whose operator is a
:class:`~gridlayers.areas.operator.SubAreaOperator` on the sub-area's own LinDistFlow
model. It sees only its interfaces:

phase ``t0+0``  its aggregator entities' ``offers`` (devices of this area only) and its
                children's ``area_offer`` arrive; it builds its virtual resource at its
                PCC and sends it up as ``area_offer``
phase ``t0+1``  its parent's ``area_award`` (weak link, same phase) arrives; it
                disaggregates it, sends ``area_award`` down to its children (weak),
                ``setpoints[MW]`` to its aggregators (time-shifted: dispatch at ``t0+2``)
                and ``area_report`` to the collector (table ``area_interface``)

Its fallbacks are the DSO's (:mod:`gridlayers.areas.fallback`): if its hard-limit
problem is infeasible it uses the soft-limit model (feeder and PCC limits with penalised
slack); if even that fails (or its inputs are refused) it acts network-blind within its
PCC limit (:func:`gridlayers.agents.area_setup.blind_resource`,
:func:`~gridlayers.agents.area_setup.blind_split`). Each use is one record in
``area_report["fallback"]`` (``; ``-joined, ending like the DSO's "soft-limit fallback
used" / "network-blind fallback used"; the collector makes it an ``area_fallback`` event).
"""

from __future__ import annotations

import time as wallclock
from typing import Any

from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.agents import PHASE_OFFER
from gridlayers.agents.area_setup import (
    blind_resource,
    blind_split,
    child_awards,
    find_area,
    interface_values,
    lda_areas,
    parent_inputs,
)
from gridlayers.agents.lda_cache import lda_model
from gridlayers.areas.contract import award_values, offer_values
from gridlayers.areas.fallback import blind_note, soft_note
from gridlayers.areas.topology import interface_q_mvar
from gridlayers.dso.offer_blocks import InfeasibleDSOError
from gridlayers.simulators.base import RunSimulator
from gridlayers.simulators.codec import decode_curve, encode_curve

ATTRS = ["offers", "area_offer", "area_award", "setpoints[MW]", "area_report", "state"]

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {"Area": {"public": True, "params": ["lda", "area", "state"], "attrs": ATTRS}},
}


class AreaSim(RunSimulator):
    """Runs the operators of its ``Area`` entities (entity id ``<lda>.<area>``)."""

    def __init__(self) -> None:
        super().__init__(META)
        self._areas: dict[str, AreaAgent] = {}

    def create(
        self, num: int, model: str, *, lda: str, area: str, state: dict[str, Any] | None = None
    ) -> list[CreateResult]:
        """Create the operator of sub-area ``area`` of LDA ``lda`` (``num`` must be 1).

        ``state`` (the entity's ``state`` output, from a checkpoint): ``{"vm_pu": PCC
        voltage of the parent's last dispatch}``, where its next resource is built.
        """
        eid = f"{lda}.{area}"
        if num != 1 or eid in self._areas:
            msg = f"create one Area per sub-area, once (got num={num}, {eid!r})"
            raise ValueError(msg)
        m = lda_model(self._run_id, self._scenario, lda)
        self._areas[eid] = AreaAgent(m, area)
        if state is not None:
            self._areas[eid].node.operator.set_root_voltage(state["vm_pu"])
        return [{"eid": eid, "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int | None:
        """Offer (phase 0) or disaggregate the parent's award (phase 1); see the module."""
        k, phase = divmod(time, self._step)
        for eid, agent in self._areas.items():
            agent.step(k, phase, inputs.get(eid, {}))
        if phase == PHASE_OFFER and any(a.self_driven for a in self._areas.values()):
            return (k + 1) * self._step
        return None

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return each entity's outputs of its last step."""
        return {
            eid: {a: self._areas[eid].out[a] for a in attrs if a in self._areas[eid].out}
            for eid, attrs in outputs.items()
        }


class AreaAgent:
    """One sub-area's operator between its parent and its children (see the module)."""

    def __init__(self, model: Any, area: str) -> None:
        self._lda = model
        self.node = find_area(lda_areas(model), area)
        if self.node.parent is None:
            msg = f"{area!r} is the LDA itself: its operator is the DSO"
            raise ValueError(msg)
        #: No aggregator or child triggers it: it steps on its own at every offer phase.
        self.self_driven = not self.node.own_devices and not self.node.children
        self.out: dict[str, Any] = {}
        self._offers: dict = {}

    def step(self, k: int, phase: int, got: dict[str, Any]) -> None:
        """Act on interval ``k``'s offers (phase 0) or its parent's award (phase 1)."""
        self.out = {}
        if phase == PHASE_OFFER and "area_award" not in got:
            self._offer(k, got)
        elif "area_award" in got:
            self._settle(got)

    def _offer(self, k: int, got: dict[str, Any]) -> None:
        start = wallclock.perf_counter()
        own = {}
        for per_aggregator in (got.get("offers") or {}).values():
            own.update({d: decode_curve(c) for d, c in per_aggregator.items()})
        self._fixed = self._lda.fixed_injections(k, "forecast")
        self._own, self._area_offers = own, got.get("area_offer")
        p, q, self._offers = parent_inputs(self.node, *self._fixed, own, self._area_offers)
        self._fallback: list[str] = []
        try:
            vr = self.node.operator.virtual_resource(p, q, self._offers)
            curve, self._slack = vr.curve, vr.slack
            self._note(soft_note("offer", vr))
        except InfeasibleDSOError as exc:  # incl. refused (non-finite) inputs
            self._note(blind_note("offer", exc))
            curve, self._slack = self._blind_curve(), None
        self._curve, self._seconds = curve, wallclock.perf_counter() - start
        q_pcc = interface_q_mvar(self.node.feeder, p, q)  # what crosses the PCC (Mvar)
        self.out["area_offer"] = {
            "area": self.node.name,
            "curve": encode_curve(curve),
            "q_mvar": q_pcc,
        }

    def _note(self, record: str | None) -> None:
        """Keep the record of a fallback (``area_report["fallback"]``, an event)."""
        if record is not None:
            self._fallback.append(record)

    def _blind_curve(self) -> Any:
        """Network-blind resource (see the module notes), at most the parent's block slots."""
        slots = self.node.operator.max_blocks
        return blind_resource(self.node, *self._fixed, self._own, self._area_offers, slots)

    def _settle(self, got: dict[str, Any]) -> None:
        start = wallclock.perf_counter()
        award = next(m[self.node.name] for m in got["area_award"].values() if self.node.name in m)
        operator = self.node.operator
        operator.set_root_voltage(award["vm_pu"])  # also the next interval's resource's
        price, award_mw = float(award["price_usd_per_mwh"]), float(award["award_mw"])
        try:
            if not self._flexible():  # nothing to decide: every child at its firm point
                setpoints, awards = blind_split(
                    self.node, *self._fixed, self._own, self._area_offers, award_mw, price
                )
                cost = sum(self._offers[d].cost_usd_per_h(p) for d, p in setpoints.items())
                return self._report(award, setpoints, awards, float(cost), False, start)
            result = operator.disaggregate(award_mw, price)
            self._note(soft_note("settle", result))
            setpoints, awards = child_awards(self.node, result, price)
            cost, slack = float(result.cost_usd_per_h), result.slack is not None
        except InfeasibleDSOError as exc:
            self._note(blind_note("settle", exc))
            setpoints, awards = blind_split(
                self.node, *self._fixed, self._own, self._area_offers, award_mw, price
            )
            cost, slack = None, False
        self._report(award, setpoints, awards, cost, slack, start)

    def _flexible(self) -> bool:
        """Whether any own device or child offers a range (else the dispatch is fixed)."""
        return any(c.p_max_mw > c.p_min_mw for c in self._offers.values())

    def _report(  # noqa: PLR0913
        self,
        award: dict[str, Any],
        setpoints: dict[str, float],
        awards: dict[str, Any],
        cost: float | None,
        slack: bool,
        start: float,
    ) -> None:
        """Send the set-points, the children's awards and the interface report."""
        price = float(award["price_usd_per_mwh"])
        self.out["setpoints[MW]"] = setpoints
        self.out["state"] = {"vm_pu": float(award["vm_pu"])}  # for checkpoints
        if awards:
            self.out["area_award"] = awards
        own_values = len(setpoints) + sum(
            offer_values(c) for d, c in self._offers.items() if d in self.node.own_devices
        )
        self.out["area_report"] = {
            "area": self.node.name,
            "parent": self.node.parent,
            "pcc_bus": int(self.node.pcc_bus),
            "p_min_mw": float(self._curve.p_min_mw),
            "p_max_mw": float(self._curve.p_max_mw),
            "cleared_mw": float(award["award_mw"]),
            "price_usd_per_mwh": price,
            "vm_pu": float(award["vm_pu"]),
            "interface_values": offer_values(self._curve) + award_values(),
            "internal_values": own_values + interface_values(self.node, self._offers),
            "cost_usd_per_h": cost,
            "slack": slack or self._slack is not None,
            "fallback": "; ".join(self._fallback) or None,
            "solve_seconds": self._seconds + wallclock.perf_counter() - start,
        }
