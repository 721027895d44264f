"""Benchmark the Total DSO's per-interval cost on the default scenario's LDAs.

For each LDA of ``scenarios/default.yaml`` (rural, semi-urban, urban; one summer day,
96 quarter-hours) the DSO core is built as the mosaik agent builds it
(:func:`gridlayers.agents.dso_setup.build_dso`) and driven through the Total DSO flow of
``agents/dso.py``: forecast fixed injections and the devices' offers
-> ``virtual_resource`` -> an award (the virtual resource's midpoint, at a 23 $/MWh
interface price) -> ``disaggregate``; then the devices are dispatched at the set-points
(untimed) so their state evolves as in a run.

Printed per LDA-interval (the first interval of each LDA, which loads the models into
HiGHS, is reported separately), in ms: the wall time of ``virtual_resource +
disaggregate`` (total); inside highspy's ``Highs.run`` (the LP solves); inside the other
highspy calls (model updates such as ``changeCoeff``, the solution copy; each timed
through a Python wrapper, which adds ~0.2 us per call); inside the linear power flows
(``solve_linear_branch_flow``); the rest (the framework: parameter updates, result
extraction, Python). The issue-12 target is "rest <= 1x the time inside HiGHS and the
power-flow solver" (last column).

Run: ``.venv/bin/python benchmarks/bench_dso.py [n_intervals]`` (default 96 per LDA).

Measured on the 2-core development machine shared with other jobs (load average
1-2), 285 timed LDA-intervals, two alternating runs each:

==================================  =========  =========  =======  =======  =========
ms per LDA-interval                 total      HiGHS      updates  flow     rest
==================================  =========  =========  =======  =======  =========
before (pyomo ``solve`` wrapper)    62-67      20.1-20.6  3.3-3.4  3.6-3.9  35-39
after (direct ``Highs.run``)        38.5-39.7  19.0-19.3  3.1      3.5-3.7  12.9-13.6
==================================  =========  =========  =======  =======  =========

rest/other: 1.3-1.4 before, 0.50-0.52 after.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import highspy
import numpy as np

import gridlayers.dso.lindistflow
from gridlayers.agents.dso_setup import build_dso
from gridlayers.lda import build_lda
from gridlayers.scenarios.load import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"
N_INTERVALS = int(sys.argv[1]) if len(sys.argv) > 1 else 96
PRICE_USD_PER_MWH = 23.0
#: highspy calls that change the model or read the solution (timed as "HiGHS updates").
HIGHS_UPDATES = (
    "changeCoeff",
    "changeRowsBounds",
    "changeColsBounds",
    "changeColsCost",
    "changeColsIntegrality",
    "changeObjectiveOffset",
    "changeObjectiveSense",
    "clearSolver",
    "getSolution",
)

COLUMNS = ("total", "HiGHS", "updates", "flow", "rest")
CLOCK = dict.fromkeys(("solve", "updates", "flow"), 0.0)  # seconds since the last reset


def _timed(fn: Callable, bucket: str) -> Callable:
    def timed(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            CLOCK[bucket] += time.perf_counter() - start

    return timed


highspy.Highs.run = _timed(highspy.Highs.run, "solve")  # every LP solve passes here
for _name in HIGHS_UPDATES:
    setattr(highspy.Highs, _name, _timed(getattr(highspy.Highs, _name), "updates"))
gridlayers.dso.lindistflow.solve_linear_branch_flow = _timed(
    gridlayers.dso.lindistflow.solve_linear_branch_flow, "flow"
)


def bench_lda(scenario: object, name: str) -> tuple[np.ndarray, float, str]:
    """Drive one LDA's DSO; return per-interval seconds (total and CLOCK), first, size."""
    lda = build_lda(scenario, name)
    dso = build_dso(lda, max_blocks=10)
    rows, first = [], 0.0
    for k in range(min(N_INTERVALS, len(lda.bus_load_forecast_mw))):
        iv, forecast = lda.interval(k), lda.conditions(k, "forecast")
        offers = {d.device_id: d.offer(iv, forecast[d.device_id]) for d in lda.devices}
        p_fixed, q_fixed = lda.fixed_injections(k, "forecast")
        for bucket in CLOCK:
            CLOCK[bucket] = 0.0
        start = time.perf_counter()
        vr = dso.virtual_resource(p_fixed, q_fixed, offers)
        award = 0.5 * (vr.p_min_mw + vr.p_max_mw)
        result = dso.disaggregate(award, PRICE_USD_PER_MWH)
        seconds = time.perf_counter() - start
        if k == 0:
            first = seconds
        else:
            rows.append((seconds, *CLOCK.values()))
        actual = lda.conditions(k, "actual")
        for dev in lda.devices:  # untimed: evolve the device states as a run does
            offer = offers[dev.device_id]
            p_set = min(max(result.setpoints_mw[dev.device_id], offer.p_min_mw), offer.p_max_mw)
            dev.dispatch(p_set, iv, actual[dev.device_id], forecast[dev.device_id])
    size = (
        f"{len(dso.feeder.buses)} buses, {len(dso.devices)} devices, "
        f"{dso.n_variables} vars / {dso.n_constraints} rows"
    )
    return np.array(rows), first, size


def _line(label: str, rows: np.ndarray, extra: str = "") -> str:
    total, solve, updates, flow = 1e3 * rows.mean(axis=0)
    rest = total - solve - updates - flow
    ratio = rest / (solve + updates + flow)
    return (
        f"{label:<10} {total:7.2f} {solve:7.2f} {updates:7.2f} {flow:7.2f} {rest:7.2f}"
        f" {ratio:9.2f}  {extra}"
    )


def main() -> None:
    warnings.simplefilter("ignore")
    scenario = load_scenario(SCENARIO)
    print(f"Total DSO, ms per LDA-interval, {N_INTERVALS} intervals per LDA (first one apart)")
    print(f"{'LDA':<10} " + " ".join(f"{c:>7}" for c in COLUMNS) + " rest/other")
    every = []
    for lda in scenario.ldas:
        rows, first, size = bench_lda(scenario, lda.name)
        print(_line(lda.name, rows, f"first {1e3 * first:.0f} ms; {size}"))
        every.append(rows)
    rows = np.concatenate(every)
    print(_line("all", rows))
    total, solve = rows[:, 0].sum(), rows[:, 1].sum()
    print(
        f"{len(rows)} LDA-intervals; HiGHS solves {solve / total:.0%} of the time. HiGHS: "
        "inside Highs.run; updates: other highspy calls (model changes, solution copy); "
        "flow: linear power flows (solve_linear_branch_flow); rest: the framework"
    )


if __name__ == "__main__":
    main()
