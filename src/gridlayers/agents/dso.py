"""mosaik agent for the DSOs of a partition of LDAs (one entity per LDA).

Phase ``t0+0`` (offers from the LDA's aggregators arrive):

``passive``      forecast the LDA's import with every device at its self-schedule and
                 bid it as a fixed quantity (what a TSO's load forecast of the substation is)
``total_dso``    build the virtual resource and bid it at the interface (``bid``)
``minimal_dso``  bid only the firm forecast exchange of the uncontrolled load (``bid``)
``total_tso``    hand the forecast injections and every device offer to the TSO
                 (``tso_inputs``), which holds the feeder model

Phase ``t0+1`` (the TSO's result arrives):

``total_dso``    disaggregate the award within feeder limits, publish DLMPs
``minimal_dso``  check the aggregators' proposed split and redispatch what would
                 violate limits (the cost of tier bypassing)
``total_tso``    pass the TSO's device set-points down
``passive``      pass the self-schedules back unchanged

Final ``setpoints[MW]`` go to the aggregators; ``dso_report`` to the collector, with the
strategy's own events if it keeps any (``drain_events()``, e.g. the ``external``
strategy's time-outs and fallbacks: ``dso_report["events"]``, one ``event`` row each).

If the DSO's optimisation is infeasible (e.g. the uncontrolled load and generation alone
violate the feeder's limits), the DSO falls back to **soft limits** for that interval
(:class:`gridlayers.dso.DSOOperator`, soft-limit fallback): it solves the same problem
with slack on the voltage and thermal limits priced at the LDA's
``limits.slack_penalty_usd_per_mwh`` per MW-equivalent and dispatches for the least
violation. Total DSO offers the exports reachable with the least slack any dispatch needs
and disaggregates the award at least DER cost plus slack penalty; Minimal DSO corrects
the aggregators' split at least move cost plus slack penalty. The interval is recorded
(``dso_report["infeasible"]``: one message per phase ending in "soft-limit fallback
used", an ``event`` row) with the slack of the set-points, or of the offer if only the
offer needed slack (``dso_report["slack"]``, keys of
:func:`gridlayers.dso.opf.slack_report`; the penalty is not a DER cost).

**Numerical faults** (``docs/faults.md``): a non-finite or extreme forecast injection is
named (the balance row it would enter), taken as 0 MW, and under Total DSO and Minimal DSO
the interval's problem is rejected (network-blind fallback); a DSO LP that hits the solver
time limit is not trusted either (network-blind fallback). Both go to
``dso_report["faults"]`` (``{"kind": "bad_coefficient" | "solver_time_limit",
"message": ...}``, an ``event`` row of that kind each), not to ``infeasible``.

Only if even the soft problem fails (or a custom strategy raises
:class:`~gridlayers.dso.offer_blocks.InfeasibleDSOError`) does the DSO act network-blind,
the message then ending in "network-blind fallback used": the virtual resource becomes
the merged device offers on top of the firm exchange and an award the soft
disaggregation cannot place is split in merit order (Total DSO); proposed set-points pass
unchanged (Minimal DSO). The physics layer shows what either costs.
"""

from __future__ import annotations

import functools
import time as wallclock
from typing import Any

import pandas as pd
from mosaik_api_v3.types import CreateResult, Meta, OutputData, OutputRequest

from gridlayers.agents import PHASE_AWARD, PHASE_OFFER
from gridlayers.agents.area_setup import (
    blind_resource,
    blind_split,
    child_awards,
    interface_values,
    lda_areas,
    nested,
    parent_inputs,
)
from gridlayers.agents.dso_admm import DsoRounds
from gridlayers.agents.dso_setup import build_dso
from gridlayers.agents.lda_cache import lda_model
from gridlayers.der.curves import split_award
from gridlayers.domain import BidCurve
from gridlayers.dso.faults import DSOBadCoefficientError, check_fixed_injections, fault_kind
from gridlayers.dso.offer_blocks import InfeasibleDSOError
from gridlayers.dso.virtual_resource import interface_curve
from gridlayers.lda import LDAModel
from gridlayers.numerics import DSO_INFEASIBLE, MAX_ABS_VALUE, bad_values
from gridlayers.simulators.base import RunSimulator
from gridlayers.simulators.codec import decode_curve, encode_curve, first_value

#: Endings of ``dso_report["infeasible"]`` messages: which fallback the DSO used.
SOFT = "soft-limit fallback used"
BLIND = "network-blind fallback used"
#: Ending of a bad-input fault where no DSO problem is rejected (the values are replaced).
ZEROED = "non-finite or extreme inputs taken as 0 MW"

ATTRS = [
    "offers",
    "proposed[MW]",
    "awards",
    "interface_LMP",
    "tso_setpoints",
    "bid",
    "tso_inputs",
    "setpoints[MW]",
    "admm_price",
    "admm_proposal",
    "area_offer",
    "area_award",
    "dso_report",
]

#: Device kinds whose range the flexibility probe measures (the planner's LDA flexibility).
FLEXIBLE_KINDS = frozenset({"battery", "flexible_load"})

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {"DSO": {"public": True, "params": ["lda"], "attrs": ATTRS}},
}


def _merge(values: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in (values or {}).values():
        merged.update(part)
    return merged


class DSOSim(RunSimulator):
    """Runs the DSO of each of its LDA entities (one simulator per partition of LDAs)."""

    def __init__(self) -> None:
        super().__init__(META)
        self._dsos: dict[str, DSOAgent] = {}

    def create(self, num: int, model: str, *, lda: str) -> list[CreateResult]:
        """Create the DSO of LDA ``lda`` (``num`` must be 1; the entity id is the LDA name)."""
        if num != 1 or lda in self._dsos:
            msg = f"create one DSO per LDA, once (got num={num}, lda={lda!r})"
            raise ValueError(msg)
        probe = bool(self._scenario["output"].get("flexibility_probe", False))
        model_ = lda_model(self._run_id, self._scenario, lda)
        rho = self._scenario.get("coordination", {}).get("penalty_usd_per_mwh_per_mw")
        self._dsos[lda] = DSOAgent(model_, self._paradigm, probe, rho)
        return [{"eid": lda, "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int | None:
        """Every DSO acts on its offers (phase 0) or on the TSO's result (phase 1).

        A simulator with an LDA without aggregators (no DER) steps on its own at phase 0
        of every interval; the others are triggered by their aggregators' offers.
        """
        k, phase = divmod(time, self._step)
        for lda, dso in self._dsos.items():
            dso.step(k, phase, inputs.get(lda, {}))
        if phase == PHASE_OFFER and any(not d._lda.aggregators for d in self._dsos.values()):
            return (k + 1) * self._step
        return None

    def get_data(self, outputs: OutputRequest) -> OutputData:
        """Return the outputs each DSO produced in the last step."""
        return {
            eid: {a: self._dsos[eid]._out[a] for a in attrs if a in self._dsos[eid]._out}
            for eid, attrs in outputs.items()
        }


class DSOAgent:
    """The DSO of one LDA in the run's paradigm (see the module notes)."""

    def __init__(self, lda: LDAModel, paradigm: str, probe: bool, rho: float | None = None) -> None:
        self._rho = rho  # iterative: ADMM penalty (($/MWh) per MW)
        self._lda, self._paradigm, self._probe = lda, paradigm, probe
        self._flexible = {d.device_id for d in lda.devices if d.kind in FLEXIBLE_KINDS}
        self._offers: dict[str, BidCurve] = {}
        self._out: dict[str, Any] = {}
        self._nested = nested(lda, paradigm)  # sub-areas' resources enter as pseudo-devices

    @functools.cached_property
    def _core(self) -> Any:
        """The LDA's DSO core, built on first use.

        In a partitioned run the partitions' DSO processes then build their optimisation
        models in parallel, in the first interval, instead of one after another while
        mosaik creates the entities (the largest part of a 10^5-DER start-up).
        """
        if self._nested:  # sub-areas (docs/layers.md): the top of the LDA's area tree
            self._node = lda_areas(self._lda, max_blocks=10)
            return self._node.operator
        core = build_dso(self._lda, max_blocks=10)
        if self._paradigm == "iterative":  # before the first solve freezes the model
            self._admm = DsoRounds(core, self._rho)
        return core

    def step(self, k: int, phase: int, got: dict[str, Any]) -> None:
        """Act on offers (phase 0) or on the TSO's result (phase 1) of interval ``k``."""
        self._out = {}
        start = wallclock.perf_counter()
        self._fixed = self._lda.fixed_injections(k, "forecast")
        if phase == PHASE_OFFER and "admm_price" in got:  # iterative: a further round
            self._out = {"admm_proposal": self._admm_round(got)}
            return
        if phase == PHASE_OFFER:
            self._offers = {d: decode_curve(c) for d, c in _merge(got.get("offers")).items()}
            self._area_offers = got.get("area_offer")  # the sub-areas' resources, if nested
            self._infeasible: list[str] = []
            self._faults: list[dict[str, str]] = []
            self._slack: dict[str, dict[str, float | int]] = {}
            bad = self._screen_inputs()
            try:
                if bad is not None and self._paradigm == "total_dso":
                    raise bad  # the interval's problem is rejected
                self._offer(k)
                if bad is not None:
                    self._record("offer", bad, ZEROED)
            except InfeasibleDSOError as exc:
                self._record("offer", exc, BLIND)
                if self._paradigm == "iterative":  # propose the firm exchange every round
                    self._out["admm_proposal"] = self._admm.hold(self._firm_exchange_mw())
                else:
                    self._out["bid"] = encode_curve(self._blind_resource())
        elif phase == PHASE_AWARD:
            bad = self._screen_inputs()
            try:
                if bad is not None and self._paradigm in ("total_dso", "minimal_dso"):
                    raise bad
                self._settle(got)
                if bad is not None:
                    self._record("settle", bad, ZEROED)
            except InfeasibleDSOError as exc:
                self._record("settle", exc, BLIND)
                self._settle(got, blind=True)
        if "dso_report" in self._out:
            report = self._out["dso_report"]
            report["infeasible"] = list(self._infeasible)
            report["faults"] = list(self._faults)
            slack = self._slack.get("settle", self._slack.get("offer"))
            if slack is not None:
                report["slack"] = dict(slack)
            report["solve_seconds"] = wallclock.perf_counter() - start
            rounds = getattr(self, "_admm", None)
            if rounds is not None:  # iterative: and the interval's round solves
                report["solve_seconds"] += rounds.solve_seconds
            drain = getattr(self.__dict__.get("_core"), "drain_events", None)
            if drain is not None:  # e.g. the external strategy's time-outs and fallbacks
                report["events"] = drain()

    def _offer(self, k: int) -> None:
        p_fixed, q_fixed = self._fixed
        if self._paradigm == "total_dso":
            self._view = self._offers
            if self._nested:  # without the sub-areas' buses; their resources as devices
                self._core  # noqa: B018 - builds the area tree
                p_fixed, q_fixed, self._view = parent_inputs(
                    self._node, p_fixed, q_fixed, self._offers, self._area_offers
                )
            vr = self._core.virtual_resource(p_fixed, q_fixed, self._view)
            self._note_soft("offer", vr)
            self._out["bid"] = encode_curve(vr.curve)
        elif self._paradigm == "minimal_dso":
            self._out["bid"] = encode_curve(BidCurve.fixed(self._firm_exchange_mw()))
        elif self._paradigm == "passive":
            own = {d: c.p_min_mw for d, c in self._offers.items()}
            self._out["bid"] = encode_curve(BidCurve.fixed(self._firm_exchange_mw(own)))
        elif self._paradigm == "iterative":
            self._core  # noqa: B018 - builds the DSO core and its ADMM rounds
            self._out["admm_proposal"] = self._admm.start(p_fixed, q_fixed, self._offers)
            self._infeasible += [f"offer: {f}; {SOFT}" for f in self._admm.failures]
        elif self._paradigm == "total_tso":
            self._out["tso_inputs"] = {
                "p_fixed": {str(b): float(v) for b, v in p_fixed.items()},
                "q_fixed": {str(b): float(v) for b, v in q_fixed.items()},
                "offers": {d: encode_curve(c) for d, c in self._offers.items()},
            }

    def _admm_round(self, got: dict[str, Any]) -> float:
        """Return the DSO's proposal (MW) for the TSO's new price and schedule (iterative)."""
        price, target = first_value(got, "admm_price")[self._lda.name]
        known = len(self._admm.failures)
        p_mw = self._admm.next_round(price, target)
        self._infeasible += [f"offer: {f}; {SOFT}" for f in self._admm.failures[known:]]
        return p_mw

    def _firm_exchange_mw(self, der_mw: dict[str, float] | None = None) -> float:
        """Forecast interface export (MW) of the uncontrolled load and generation.

        ``der_mw`` (device id -> MW) adds devices at fixed injections (passive: their
        self-schedules); the linear power flow gives the export including losses.
        """
        p_fixed, q_fixed = self._fixed
        p = p_fixed.copy()
        for dev, p_mw in (der_mw or {}).items():
            bus = self._core.devices[dev]
            p.loc[bus] = p.get(bus, 0.0) + p_mw
        return float(self._core.feeder.solve_power_flow(p, q_fixed).interface_p_mw)

    def _screen_inputs(self) -> DSOBadCoefficientError | None:
        """Check the interval's forecast injections; bad entries become 0 MW (module notes).

        Returns the fault (naming the balance rows the bad values would have entered)
        or ``None``; one vectorised comparison per Series.
        """
        p, q = self._fixed
        if not (len(bad_values(p.to_numpy(float))) or len(bad_values(q.to_numpy(float)))):
            return None  # the usual case: the DSO core (under Total TSO unused) is not built
        try:
            check_fixed_injections(self._core.feeder, p, q)  # names the rows
        except DSOBadCoefficientError as exc:
            self._fixed = (
                p.where(p.abs() <= MAX_ABS_VALUE, 0.0),
                q.where(q.abs() <= MAX_ABS_VALUE, 0.0),
            )
            return exc
        return None

    def _record(self, phase: str, exc: BaseException, ending: str) -> None:
        """Record a failure of the DSO's problem and the fallback used (``ending``)."""
        message = f"{phase}: {exc}; {ending}"
        kind = fault_kind(exc)
        if kind == DSO_INFEASIBLE:
            self._infeasible.append(message)  # dso_interval.infeasible, a dso_infeasible event
        else:  # bad_coefficient, solver_time_limit: an event of that kind
            self._faults.append({"kind": kind, "message": message})

    def _note_soft(self, phase: str, result: Any) -> None:
        """Record a soft-limit fallback of the DSO core (``result.slack`` set), if any."""
        slack = getattr(result, "slack", None)
        if slack is None:
            return
        reason = getattr(result, "hard_limit_failure", None) or "DSO optimisation failed"
        self._infeasible.append(f"{phase}: {reason}; {SOFT}")
        self._slack[phase] = slack

    def _blind_resource(self) -> BidCurve:
        """Network-blind virtual resource: firm exchange plus the merged device offers."""
        if self._nested:  # the sub-areas' resources count as devices (docs/layers.md)
            self._core  # noqa: B018 - builds the area tree
            return blind_resource(self._node, *self._fixed, self._offers, self._area_offers, 10)
        firm = self._firm_exchange_mw()
        lo = sum(c.p_min_mw for c in self._offers.values())
        hi = sum(c.p_max_mw for c in self._offers.values())
        curve, _ = interface_curve(
            self._offers, dict.fromkeys(self._offers, 1.0), (firm + lo, firm + hi), (lo, hi), 10
        )
        return curve

    def _blind_split(self, award_mw: float) -> dict[str, float]:
        """Merit-order split of ``award_mw`` minus the firm exchange among devices (MW)."""
        curves = list(self._offers.values())
        lo, hi = sum(c.p_min_mw for c in curves), sum(c.p_max_mw for c in curves)
        total = min(max(award_mw - self._firm_exchange_mw(), lo), hi)
        return dict(zip(self._offers, split_award(curves, total), strict=True))

    def _settle(self, got: dict[str, Any], blind: bool = False) -> None:
        """Set the interval's final set-points and the DSO's report (see the module notes).

        After a network-blind offer, Total DSO still disaggregates the award with the
        feeder model (soft limits if needed); ``blind`` (that failed too) splits it in
        merit order and passes Minimal DSO's proposal unchanged.
        """
        name = self._lda.name
        price = float(first_value(got, "interface_LMP")[name])
        report = {
            "redispatch_cost_usd_per_h": 0.0,
            "violations_predicted": 0,
            "dlmp_min": None,
            "dlmp_mean": None,
            "dlmp_max": None,
            "values_exchanged": 0,
        }
        if self._paradigm == "iterative":  # ADMM rounds first, then as Total DSO
            self._admm.settled(price, float(first_value(got, "awards")[f"dso:{name}"]))
        if self._paradigm in ("total_dso", "iterative"):
            award = float(first_value(got, "awards")[f"dso:{name}"])
            if blind and self._nested:  # the sub-areas still get their awards
                setpoints, self._out["area_award"] = blind_split(
                    self._node, *self._fixed, self._offers, self._area_offers, award, price
                )
            elif blind:
                setpoints = self._blind_split(award)
            else:
                result = self._core.disaggregate(award, price)
                self._note_soft("settle", result)
                setpoints = result.setpoints_mw
                report.update(_dlmp_stats(result.dlmp_usd_per_mwh))
                if self._nested:  # pseudo-devices' set-points: the sub-areas' awards
                    setpoints, self._out["area_award"] = child_awards(self._node, result, price)
                    report["values_exchanged"] = interface_values(self._node, self._view)
        elif self._paradigm == "passive":
            setpoints = {d: c.p_min_mw for d, c in self._offers.items()}
        elif self._paradigm == "minimal_dso" and blind:
            setpoints = _merge(got.get("proposed[MW]"))
        elif self._paradigm == "minimal_dso":
            proposed = _merge(got.get("proposed[MW]"))
            p_fixed, q_fixed = self._fixed
            result = self._core.redispatch(proposed, p_fixed, q_fixed, self._offers, price)
            self._note_soft("settle", result)
            setpoints = result.setpoints_mw
            report["redispatch_cost_usd_per_h"] = result.redispatch_cost_usd_per_h
            report["violations_predicted"] = result.violations_predicted
        else:  # total_tso: the TSO decided every device
            setpoints = first_value(got, "tso_setpoints")[name]
        self._out["setpoints[MW]"] = {d: float(p) for d, p in setpoints.items()}
        # values inside the LDA this interval: device offers up, set-points down
        report["values_exchanged"] += len(setpoints) + sum(
            1 + 2 * len(c.blocks) for c in self._offers.values()
        )
        if self._probe and not self._nested:  # sub-areas: not measured (docs/layers.md)
            report.update(self._flexibility_probe(self._out["setpoints[MW]"]))
        self._out["dso_report"] = report

    def _flexibility_probe(self, setpoints: dict[str, float]) -> dict[str, float | None]:
        """Measure the interface range the LDA's batteries and flexible loads still have.

        ``flex_offered_mw``: sum of their offered ranges (MW). ``flex_usable_mw``: width of
        the feasible interface export range (MW) within the feeder's limits with every
        other device held at its final set-point (at most the offered range). If that
        point is outside the limits whatever the flexible DER do (the feeder is congested
        by the rest), the core's soft-limit fallback measures the range reachable with the
        least limit slack instead (flexible DER needed to limit the violation count as not
        usable); both are ``None`` only if even that fails (no information).
        Batteries and flexible loads are what the planner's
        LDA flexibility stands for (:mod:`gridlayers.loop.measure`).
        """
        flexible = {d: c for d, c in self._offers.items() if d in self._flexible}
        offered = sum(c.p_max_mw - c.p_min_mw for c in flexible.values())
        probe = {
            d: flexible.get(d, BidCurve.fixed(float(setpoints.get(d, 0.0)))) for d in self._offers
        }
        p_fixed, q_fixed = self._fixed
        try:
            p_lo, p_hi = self._core.interface_range(p_fixed, q_fixed, probe)
        except InfeasibleDSOError:  # not even the soft-limit problem solved: no information
            return {"flex_offered_mw": None, "flex_usable_mw": None}
        return {"flex_offered_mw": offered, "flex_usable_mw": min(offered, max(p_hi - p_lo, 0.0))}


def _dlmp_stats(dlmp: pd.Series) -> dict[str, float | None]:
    values = dlmp.dropna()
    if values.empty:
        return {"dlmp_min": None, "dlmp_mean": None, "dlmp_max": None}
    return {
        "dlmp_min": float(values.min()),
        "dlmp_mean": float(values.mean()),
        "dlmp_max": float(values.max()),
    }
