"""``gridlayers loop``: plan, co-simulate the plan, measure, update, re-plan.

The planner model is built once; each round writes the damped LDA parameters into its
mutable Params (:func:`gridlayers.planner.lda.update_operational`) and re-solves.
``DIR/loop.json`` is rewritten after every round, so a failure keeps every finished
round. Layout of ``DIR``::

    loop.json                     rounds, parameters, measurements, converged plan
    plan_summary.json             the last plan (input of ``validate-plan``)
    round<k>/day<d>/              the co-simulation of planner day d in round k
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridlayers.conventions import interval_hours
from gridlayers.loop.mapping import PlannedDER, cosim_scenario, feeder_peaks_mw
from gridlayers.loop.measure import measure
from gridlayers.loop.prices import (
    bus_weights,
    hourly_list,
    operation_prices,
    plan_prices_by_bus,
    premium_by_hour,
    price_gaps,
)
from gridlayers.loop.transmission import day_transmission
from gridlayers.loop.update import combine_days, damped_update, plan_change_mw
from gridlayers.planner import (
    PlannerSolveError,
    build_model,
    read_inputs,
    solve_model,
    summarize_model,
)
from gridlayers.planner.lda import peak_demand_mw, update_operational
from gridlayers.planner.prices import zone_prices_usd_per_mwh
from gridlayers.results.store import ResultStore
from gridlayers.runner import run_scenario
from gridlayers.scenarios.schema import Scenario

log = logging.getLogger(__name__)

#: ``on_interval(day, interval)``: a co-simulated interval of planner day ``day`` is stored.
IntervalCallback = Callable[[int, int], None]

LOOP_FILE = "loop.json"
PLAN_FILE = "plan_summary.json"
#: Paradigms with a DSO agent (the flexibility probe runs in the DSO).
LOOP_PARADIGMS = ("total_tso", "minimal_dso", "total_dso")


class LoopError(RuntimeError):
    """The loop cannot run (bad paradigm or a co-simulation failed)."""


def require_loop_paradigm(paradigm: str) -> None:
    """Raise :class:`LoopError` unless ``paradigm`` has a DSO to run the probe."""
    if paradigm not in LOOP_PARADIGMS:
        msg = f"loop paradigm must be one of {LOOP_PARADIGMS}, found {paradigm!r}"
        raise LoopError(msg)


class PlanningLoop:
    """The planner model and the feeder mapping of one loop scenario, built once.

    Parameters
    ----------
    scenario : Scenario
        Validated scenario with ``planner.lda`` and ``loop`` sections.

    """

    def __init__(self, scenario: Scenario) -> None:
        if scenario.planner is None or scenario.planner.lda is None or scenario.loop is None:
            msg = f"{scenario.name}: the loop needs 'planner.lda' and 'loop' sections"
            raise LoopError(msg)
        self.scenario = scenario
        self.config = scenario.loop
        self.planner_config = scenario.planner
        started = time.perf_counter()
        self.inputs = read_inputs(self.planner_config)
        self.model = build_model(self.inputs, self.planner_config)
        self.build_seconds = time.perf_counter() - started
        self.params = {a.name: a.operational for a in scenario.planner.lda.ldas}
        cosim = {lda.name: lda for lda in scenario.ldas}
        self.peaks_mw = {a: feeder_peaks_mw(cosim[a]) for a in self.params}
        lda_peak = peak_demand_mw(self.model)
        self.scales = {a: sum(self.peaks_mw[a].values()) / lda_peak[a] for a in self.params}
        self.lda_peak_mw = lda_peak
        self.interfaces = {a: cosim[a].interface_bus for a in self.params}
        #: Planner zonal prices of the last plan, {(zone, day, hour): $/MWh} (price feedback).
        self.zone_prices: dict | None = None
        #: Prices of the last co-simulated round per planner day (:meth:`cosimulate`).
        self.prices_by_day: dict[int, dict] = {}

    def solve(self) -> dict[str, Any]:
        """Solve the plan with the current parameters; return its summary ($bn, MW)."""
        update_operational(self.model, self.params)
        result = solve_model(
            self.model,
            mip_gap=self.planner_config.mip_gap,
            time_limit_s=self.planner_config.time_limit_s,
            threads=self.planner_config.threads,
            method=self.planner_config.solve_method,
        )
        summary = summarize_model(self.model, self.inputs, self.planner_config)
        summary.update(
            solve_seconds=result.solve_seconds,
            mip_gap=result.mip_gap,
            termination=result.termination,
        )
        if self.config.price_feedback:
            try:
                obj_scale = self.planner_config.obj_scale
                self.zone_prices = zone_prices_usd_per_mwh(self.model, obj_scale)
            except PlannerSolveError as exc:  # no gap this round; the adders stay
                log.warning("no planner zonal prices this round: %s", exc)
                self.zone_prices = None
        return summary

    def day_prices(self, store: ResultStore, paradigm: str, sc: Scenario, day: int) -> dict:
        """Return the zonal prices of one co-simulated day (JSON-ready; see loop.prices).

        Per LDA: its interface bus's real-time LMP and premium by hour, and with price
        feedback the plan's premium and the gap; plus the share of congested intervals.
        """
        from gridlayers.grid.networks import transmission_network

        net = transmission_network(sc.transmission)
        loads = (net.load.p_mw * net.load.scaling).groupby(net.load.bus).sum()
        weights = bus_weights(loads.to_dict())
        op = operation_prices(store, paradigm)
        rt = op["real_time"]
        premium = premium_by_hour(rt, weights)
        out: dict[str, Any] = {
            "congested_share_by_hour": hourly_list(op["congested_share"]["share"]),
            "ldas": {
                a: {
                    "lmp_rt_by_hour": hourly_list(rt[bus]),
                    "premium_operation": hourly_list(premium[bus]),
                }
                for a, bus in self.interfaces.items()
            },
        }
        if self.zone_prices is not None:
            bus_of_zone = {str(net.bus.name.at[b]): int(b) for b in net.bus.index}
            plan = plan_prices_by_bus(self.zone_prices, day, bus_of_zone)
            for a, x in price_gaps(rt, plan, weights, self.interfaces).items():
                out["ldas"][a].update(premium_plan=x["plan"], gap=x["gap"])
        return out

    def cosimulate(
        self,
        plan: dict[str, Any],
        paradigm: str,
        out_dir: Path,
        tag: str,
        on_interval: IntervalCallback | None = None,
    ) -> tuple[dict[int, dict], dict[int, dict]]:
        """Co-simulate every planner day of ``plan``; return measurements and KPIs by day.

        ``on_interval`` is called after every stored interval of every day.

        Raises
        ------
        LoopError
            A co-simulation did not complete (its folder keeps what it computed).

        """
        planned = {a: PlannedDER.from_summary(plan["ldas"][a]) for a in self.params}
        hours = interval_hours(self.scenario.horizon.interval_min)
        price = self.scenario.settlement.imbalance_price_usd_per_mwh
        measured, kpis = {}, {}
        self.prices_by_day = {}
        for day, date in sorted(self.config.days.items()):
            name = f"{self.scenario.name}-{paradigm}-{tag}-day{day}"
            transmission = day_transmission(self.scenario, plan, day, out_dir)
            sc = cosim_scenario(
                self.scenario,
                planned,
                self.scales,
                self.peaks_mw,
                paradigm,
                date,
                name,
                transmission,
            )
            target = out_dir / f"day{day}"
            log.info("co-simulating day %d (%s) under %s into %s", day, date, paradigm, target)
            outcome = run_scenario(sc, target, day_callback(on_interval, day))
            if not outcome.ok:
                msg = f"co-simulation of day {day} failed: {outcome.summary['error']}"
                raise LoopError(msg)
            store = ResultStore(target / "results.duckdb")
            try:
                measured[day] = measure(store, paradigm, hours, self.scales, price)
                self.prices_by_day[day] = self.day_prices(store, paradigm, sc, day)
            finally:
                store.close()
            kpis[day] = outcome.summary["paradigms"][paradigm]
        return measured, kpis


def day_callback(
    on_interval: IntervalCallback | None, day: int
) -> Callable[[str, int], None] | None:
    """Return the ``on_interval(paradigm, interval)`` of a day's run that calls ``on_interval``."""
    if on_interval is None:
        return None
    return lambda _paradigm, interval: on_interval(day, interval)


def _plan_record(plan: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "objective_busd",
        "hard_cost_busd",
        "investment_busd",
        "operation_busd",
        "capacity_mw",
        "capacity_by_zone_mw",
        "upgrades",
        "solve_seconds",
        "mip_gap",
        "termination",
    )
    ldas = {
        a: {k: v for k, v in x.items() if k != "hourly"} for a, x in plan.get("ldas", {}).items()
    }
    return {**{k: plan.get(k) for k in keys}, "ldas": ldas}


_KPI_KEYS = (
    "total_cost",
    "redispatch_cost",
    "imbalance_mwh",
    "deviation_settlement",
    "losses_mwh",
    "der_curtailed_mwh",
    "voltage_violations",
    "thermal_violations",
    "max_voltage_pu",
    "nonconverged_powerflows",
    "wall_seconds",
)


def run_loop(
    scenario: Scenario,
    paradigm: str,
    out_dir: Path,
    progress: Callable[[int, str], None] | None = None,
    on_interval: IntervalCallback | None = None,
) -> dict[str, Any]:
    """Run the operations-to-planning loop for one paradigm; write ``out_dir/loop.json``.

    Parameters
    ----------
    scenario : Scenario
        Validated scenario with ``planner.lda`` and ``loop`` sections.
    paradigm : str
        One of :data:`LOOP_PARADIGMS`.
    out_dir : pathlib.Path
        Output folder (created).
    progress : callable, optional
        Called with the round number (from 1) and a one-line status message per step.
    on_interval : callable, optional
        Called after every co-simulated interval (see :data:`IntervalCallback`).

    Returns
    -------
    dict
        The content of ``loop.json``: ``status`` (``converged``, ``max_iterations`` or
        ``failed``), ``rounds`` (each with its plan, LDA parameters used, measurements
        per day, combined measurement, co-simulation KPIs and ``plan_change_mw``),
        ``plan`` (the last plan) and ``parameters`` (the last LDA parameters).

    """
    require_loop_paradigm(paradigm)

    def say(k: int, message: str) -> None:
        log.info("%s: %s", paradigm, message)
        if progress is not None:
            progress(k, message)

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    loop = PlanningLoop(scenario)
    cfg = loop.config
    record: dict[str, Any] = {
        "scenario": scenario.name,
        "paradigm": paradigm,
        "status": "running",
        "error": None,
        "settings": cfg.model_dump(mode="json"),
        "scales": loop.scales,
        "lda_peak_mw": loop.lda_peak_mw,
        "planner_build_seconds": loop.build_seconds,
        "rounds": [],
    }

    def write() -> None:
        record["wall_seconds"] = time.perf_counter() - started
        (out_dir / LOOP_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")

    previous = None
    for k in range(1, cfg.max_iterations + 1):
        say(k, f"round {k}: planning")
        params_used = {a: p.model_dump() for a, p in loop.params.items()}
        try:
            plan = loop.solve()
        except PlannerSolveError as exc:
            record["status"], record["error"] = "failed", f"round {k}: planner: {exc}"
            write()
            raise
        (out_dir / PLAN_FILE).write_text(json.dumps(plan, indent=2, default=str) + "\n")
        change = plan_change_mw(previous["ldas"], plan["ldas"]) if previous else None
        entry = {
            "round": k,
            "parameters": params_used,
            "plan": _plan_record(plan),
            "plan_change_mw": change,
        }
        record["rounds"].append(entry)
        record["plan"] = _plan_record(plan)
        record["parameters"] = params_used
        if change is not None and change <= cfg.tolerance_mw:
            record["status"] = "converged"
            say(k, f"round {k}: plan moved {change:.3f} MW <= {cfg.tolerance_mw} MW: converged")
            break
        if k == cfg.max_iterations:
            record["status"] = "max_iterations"
            break
        say(k, f"round {k}: co-simulating {len(cfg.days)} day(s) under {paradigm}")
        try:
            by_day, kpis = loop.cosimulate(
                plan, paradigm, out_dir / f"round{k}", f"r{k}", on_interval
            )
        except LoopError as exc:
            record["status"], record["error"] = "failed", str(exc)
            write()
            raise
        combined = combine_days(by_day, loop.inputs.day_weight)
        entry["prices"] = {str(d): x for d, x in loop.prices_by_day.items()}
        if cfg.price_feedback:
            for a in combined:
                combined[a]["price_gap_usd_per_mwh"] = {
                    d: x["ldas"][a]["gap"]
                    for d, x in loop.prices_by_day.items()
                    if "gap" in x["ldas"][a]
                }
        entry["measured"] = {
            str(d): {a: m.as_dict() for a, m in x.items()} for d, x in by_day.items()
        }
        entry["combined"] = combined
        entry["cosim"] = {str(d): {key: v.get(key) for key in _KPI_KEYS} for d, v in kpis.items()}
        loop.params = {a: damped_update(p, combined[a], cfg) for a, p in loop.params.items()}
        previous = plan
        write()
    write()
    return record
