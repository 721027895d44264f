"""``gridlayers validate-plan``: whether planned DER keeps each interface within its limit.

The plan (a ``plan_summary.json`` written by ``gridlayers plan`` or ``gridlayers loop``)
gives per LDA its DER, its interface capacity and, per planner day and hour, how much it
relied on DER (``der_support_mw`` = PV + discharge - charge - load shift up, MW). Each
planner day is co-simulated with that DER under a paradigm; the realised interface flow
of each hour (mean over its intervals, AC power flow, scaled to the LDA) is compared with
the interface capacity in the hours the plan relied on DER.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gridlayers.loop.mapping import PlannedDER, cosim_scenario
from gridlayers.loop.run import (
    IntervalCallback,
    LoopError,
    PlanningLoop,
    day_callback,
    require_loop_paradigm,
)
from gridlayers.loop.transmission import day_transmission
from gridlayers.results.store import ResultStore
from gridlayers.runner import run_scenario
from gridlayers.scenarios.schema import Scenario

VALIDATION_FILE = "validate_plan.json"
#: DER support below this share of the LDA's peak demand is not "relied on" (-).
RELIANCE_SHARE = 1e-3
#: Flow above the capacity by less than this is within the limit (MW, LDA scale).
TOLERANCE_MW = 1e-6

_HOURLY = """
SELECT lda, hour(time) AS hour, avg(p_import_mw) AS import_mw FROM feeder_interval
WHERE paradigm = ? GROUP BY lda, hour(time) ORDER BY lda, hour"""


class PlanFileError(ValueError):
    """The plan file is missing, unreadable or lacks an LDA's fields (message names both)."""


#: Per-LDA fields of a plan that must be finite numbers >= 0 (MW, MWh).
PLAN_QUANTITIES = ("der_pv_mw", "der_battery_mw", "der_battery_mwh", "interface_capacity_mw")
#: Hourly series of a plan's LDA per planner day (24 finite values, MW).
PLAN_HOURLY = ("import_mw", "der_support_mw")


def _plan_error(path: Path, field: str, problem: str) -> PlanFileError:
    return PlanFileError(f"{path}: {field}: {problem}")


def _finite(value: object) -> bool:
    import math

    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _found(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_lda_plan(path: Path, name: str, got: object, days: list[int]) -> None:
    """Raise :class:`PlanFileError` for the first missing or malformed field of one LDA."""
    base = f"ldas.{name}"
    if not isinstance(got, dict):
        raise _plan_error(path, base, f"expected an object, found {_found(got)}")
    for key in (*PLAN_QUANTITIES, "hourly"):
        if key not in got:
            msg = f"{base}.{key} missing; re-plan with this gridlayers version"
            raise PlanFileError(f"{path}: {msg}")
    for key in PLAN_QUANTITIES:
        if not (_finite(got[key]) and got[key] >= 0):
            problem = f"expected a finite number >= 0, found {_found(got[key])}"
            raise _plan_error(path, f"{base}.{key}", problem)
    hourly = got["hourly"]
    if not isinstance(hourly, dict):
        raise _plan_error(path, f"{base}.hourly", f"expected an object, found {_found(hourly)}")
    for day in days:
        series = hourly.get(str(day))
        if not isinstance(series, dict):
            problem = f"expected the hours of planner day {day}, found {_found(series)}"
            raise _plan_error(path, f"{base}.hourly.{day}", problem)
        for key in PLAN_HOURLY:
            values = series.get(key)
            if not (isinstance(values, list) and len(values) == 24 and all(map(_finite, values))):
                problem = f"expected 24 finite numbers (MW), found {_found(values)}"
                raise _plan_error(path, f"{base}.hourly.{day}.{key}", problem)


def read_plan(path: Path, ldas: list[str], days: list[int] | None = None) -> dict[str, Any]:
    """Read a ``plan_summary.json`` and check it has every LDA's DER and hourly data.

    Parameters
    ----------
    path : pathlib.Path
        The plan file.
    ldas : list of str
        Planner LDAs whose DER (finite, >= 0 MW/MWh) the plan must give.
    days : list of int, optional
        Planner days whose 24 hourly values (``import_mw``, ``der_support_mw``) each LDA
        must have; None checks none.

    Raises
    ------
    PlanFileError
        With the file, the field path, what was expected and what was found.

    """
    try:
        text = Path(path).read_text(encoding="utf-8")
        plan = json.loads(text, parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = f"{path}: cannot read the plan ({exc}); pass a plan_summary.json"
        raise PlanFileError(msg) from None
    if not isinstance(plan, dict):
        msg = f"expected a JSON object (a plan_summary.json), found {type(plan).__name__}"
        raise PlanFileError(f"{path}: {msg}")
    if "rounds" in plan:
        msg = f"{path}: this is a loop.json; pass the plan_summary.json next to it"
        raise PlanFileError(msg)
    planned = plan.get("ldas") or {}
    if not isinstance(planned, dict):
        raise _plan_error(path, "ldas", f"expected an object, found {_found(planned)}")
    for a in ldas:
        if a not in planned:
            msg = f"{path}: ldas.{a} missing; plan with the scenario's planner.lda section"
            raise PlanFileError(msg)
        _check_lda_plan(path, a, planned[a], days or [])
    return plan


def _reject_constant(name: str) -> float:
    """``json.loads`` hook: NaN and Infinity are not numbers of a plan."""
    msg = f"non-finite number {name} in the plan"
    raise ValueError(msg)


def check_lda(
    realised_mw: list[float],
    plan_day: dict[str, list[float]],
    capacity_mw: float,
    peak_mw: float,
) -> list[dict[str, float]]:
    """Return the hours of one day where the plan relied on DER, with their shortfall.

    Parameters
    ----------
    realised_mw : list of float
        Realised interface import per hour (24 values, MW at LDA scale, export < 0).
    plan_day : dict
        The plan's ``hourly`` entry of the day (``import_mw``, ``der_support_mw``; MW).
    capacity_mw : float
        Interface capacity of the plan (MW).
    peak_mw : float
        The LDA's peak demand (MW), scale of the reliance threshold.

    Returns
    -------
    list of dict
        One row per relied-on hour: ``hour``, ``der_support_mw``, ``planned_import_mw``,
        ``realised_import_mw``, ``shortfall_mw`` (``|realised| - capacity`` if positive, MW).

    """
    rows = []
    for h, support in enumerate(plan_day["der_support_mw"]):
        if support <= RELIANCE_SHARE * peak_mw:
            continue
        flow = realised_mw[h]
        excess = abs(flow) - capacity_mw
        rows.append(
            {
                "hour": h,
                "der_support_mw": support,
                "planned_import_mw": plan_day["import_mw"][h],
                "realised_import_mw": flow,
                "shortfall_mw": excess if excess > TOLERANCE_MW else 0.0,
            }
        )
    return rows


def validate_plan(
    scenario: Scenario,
    plan_file: Path,
    paradigm: str,
    out_dir: Path,
    on_interval: IntervalCallback | None = None,
) -> dict[str, Any]:
    """Co-simulate a plan's DER and report interface shortfalls per LDA.

    Parameters
    ----------
    scenario : Scenario
        Validated scenario with ``planner.lda`` and ``loop`` sections.
    plan_file : pathlib.Path
        ``plan_summary.json`` of a plan of this scenario.
    paradigm : str
        Paradigm that operates the DER (one of ``total_tso``, ``minimal_dso``, ``total_dso``).
    out_dir : pathlib.Path
        Output folder: ``validate_plan.json`` and one co-simulation folder per day.
    on_interval : callable, optional
        Called after every co-simulated interval with the planner day and the interval.

    Returns
    -------
    dict
        ``ldas``: per LDA ``ok`` (no shortfall), ``interface_capacity_mw``,
        ``relied_hours``, ``shortfall_hours``, ``max_shortfall_mw``, ``shortfall_mwh_per_yr``
        (day-weighted, MWh/yr) and ``hours`` (rows of :func:`check_lda` by day).

    """
    require_loop_paradigm(paradigm)
    started = time.perf_counter()
    loop = PlanningLoop(scenario)
    plan = read_plan(plan_file, list(loop.params), sorted(loop.config.days))
    planned = {a: PlannedDER.from_summary(plan["ldas"][a]) for a in loop.params}
    report: dict[str, Any] = {
        "scenario": scenario.name,
        "paradigm": paradigm,
        "plan": str(plan_file),
    }
    rows: dict[str, dict[str, list]] = {a: {} for a in loop.params}
    for day, date in sorted(loop.config.days.items()):
        name = f"{scenario.name}-{paradigm}-validate-day{day}"
        transmission = day_transmission(scenario, plan, day, out_dir)
        sc = cosim_scenario(
            scenario, planned, loop.scales, loop.peaks_mw, paradigm, date, name, transmission
        )
        target = out_dir / f"day{day}"
        outcome = run_scenario(sc, target, day_callback(on_interval, day))
        if not outcome.ok:
            msg = f"co-simulation of day {day} failed: {outcome.summary['error']}"
            raise LoopError(msg)
        store = ResultStore(target / "results.duckdb")
        try:
            hourly = store.query(_HOURLY, [paradigm])
        finally:
            store.close()
        for a in loop.params:
            series = hourly[hourly["lda"] == a].set_index("hour")["import_mw"] / loop.scales[a]
            realised = [float(series.get(h, 0.0)) for h in range(24)]
            rows[a][str(day)] = check_lda(
                realised,
                plan["ldas"][a]["hourly"][str(day)],
                float(plan["ldas"][a]["interface_capacity_mw"]),
                loop.lda_peak_mw[a],
            )
    weights = loop.inputs.day_weight
    report["ldas"] = {}
    for a, by_day in rows.items():
        relied = [r for day_rows in by_day.values() for r in day_rows]
        short = [r for r in relied if r["shortfall_mw"] > 0]
        report["ldas"][a] = {
            "ok": not short,
            "interface_capacity_mw": float(plan["ldas"][a]["interface_capacity_mw"]),
            "relied_hours": len(relied),
            "shortfall_hours": len(short),
            "max_shortfall_mw": max((r["shortfall_mw"] for r in short), default=0.0),
            "shortfall_mwh_per_yr": 8760.0
            / 24.0
            * sum(weights[int(d)] * r["shortfall_mw"] for d, rs in by_day.items() for r in rs),
            "hours": by_day,
        }
    report["wall_seconds"] = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / VALIDATION_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report
