"""Benchmark: build and solve the ISO-NE SO (and optionally MO) plan with HiGHS on 2 threads.

Usage::

    .venv/bin/python benchmarks/bench_planner_isone.py [so|mo ...] [--out DIR] [--time-limit S]
        [--threads N] [--tee] [--method monolithic|benders] [--highs-option NAME=VALUE ...]

Prints build time and solve time separately, the Benders solve's summary lines (tree
statistics, master LP retries, heuristic calls, abandoned nodes, rejected cuts), then
the plan summary. ``--timeline``
also prints the incumbent, the proven bound and the gap ($ billion, %) as they stood at
2, 5, 10 and 30 minutes of the solve (the time-to-gap table of docs/planner.md, from
one run with ``--time-limit 1800``). ``--highs-option``
overrides ``solve.DEFAULT_HIGHS_OPTIONS`` (e.g. ``simplex_scale_strategy=2`` for the
HiGHS default scaling); ``--tee`` shows the HiGHS log (root LP time and iterations).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from gridlayers.planner import build_model, load_planner_config, read_inputs, solve_model
from gridlayers.planner.report import summarize_model

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {case: ROOT / "scenarios" / f"isone8-{case}.yaml" for case in ("so", "mo")}
#: Published totals (Khanal et al. 2024, ISO-NE section, Fig. 10/14 text), $ billion / GW / MW.
PUBLISHED = {
    "so": {
        "hard_cost_busd": 64.05,
        "investment_busd": 29.57,
        "operation_busd": 34.48,
        "externalities_busd": 51.72,
        "wind_gw": 25.46,
        "battery_mw": 0.0,
    },
    "mo": {
        "hard_cost_busd": 73.41,
        "investment_busd": 50.10,
        "operation_busd": 23.31,
        "externalities_busd": 10.56,
        "wind_gw": 41.40,
        "battery_mw": 670.05,
    },
}


class _Summaries(logging.Filter):
    """Pass the Benders solve's summary lines (tree, master retries, failures) only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage().startswith(
            (
                "benders tree:",
                "benders master:",
                "benders rounding heuristic:",
                "benders node abandoned",
                "benders cut rejected",
            )
        )


def show_benders_summaries() -> None:
    """Print the planner's Benders summary lines (DEBUG/INFO log) to stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_Summaries())
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("gridlayers.planner.solve")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def parse_option(text: str) -> tuple[str, bool | int | float | str]:
    """Parse ``NAME=VALUE`` into a HiGHS option (int, float, bool or string value)."""
    name, sep, raw = text.partition("=")
    if not sep:
        msg = f"expected NAME=VALUE, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    value: bool | int | float | str
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
    return name, value


def run(
    case: str,
    out: Path,
    time_limit: float | None,
    threads: int,
    tee: bool,
    highs_options: dict[str, bool | int | float | str] | None = None,
    method: str | None = None,
    timeline: bool = False,
) -> dict:
    name, config = load_planner_config(SCENARIOS[case])
    history: list = []
    t0 = time.perf_counter()
    inputs = read_inputs(config)
    model = build_model(inputs, config)
    build_s = time.perf_counter() - t0
    print(f"[{name}] build: {build_s:.1f} s", flush=True)
    res = solve_model(
        model,
        mip_gap=config.mip_gap,
        time_limit_s=time_limit,
        threads=threads,
        tee=tee,
        highs_options=highs_options,
        method=method or config.solve_method,
        on_iteration=history.append if timeline else None,
    )
    if timeline:
        print_timeline(name, history, config.epoch_years / config.obj_scale / 1e9)
    print(
        f"[{name}] solve: {res.solve_seconds:.1f} s (of which matrix compile "
        f"{res.compile_seconds:.1f} s; {res.method}, {res.termination}, gap {res.mip_gap:.2e})",
        flush=True,
    )
    # Handled failures (abandoned Benders nodes, rejected cuts) are part of the result.
    print(
        f"[{name}] handled solver failures: {res.message or 'none'} "
        f"(rejected cuts: {res.rejected_cuts})",
        flush=True,
    )
    summary = summarize_model(model, inputs, config)
    summary.update(
        build_seconds=build_s,
        solve_seconds=res.solve_seconds,
        mip_gap=res.mip_gap,
        compile_seconds=res.compile_seconds,
        termination=res.termination,
        solver_message=res.message,
        rejected_cuts=res.rejected_cuts,
        objective_scaled=res.objective,
        bound_scaled=res.bound,
        objective_bound_busd=config.epoch_years * res.bound / config.obj_scale / 1e9,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / f"plan_summary_{case}.json").write_text(json.dumps(summary, indent=2, default=str))
    keys = (
        "objective_busd",
        "objective_bound_busd",
        "investment_busd",
        "operation_busd",
        "externalities_busd",
        "hard_cost_busd",
        "carbon_cost_busd",
        "air_quality_cost_busd",
        "co2_mt",
        "capacity_mw",
        "upgrades",
        "cables",
    )
    print(json.dumps({k: summary[k] for k in keys}, indent=1, default=str))
    pub = PUBLISHED[case]
    ours = {
        **{k: summary[k] for k in pub if k in summary},
        "wind_gw": summary["capacity_mw"]["wind"] / 1000.0,
        "battery_mw": summary["capacity_mw"].get("battery", 0.0),
    }
    for k, v in pub.items():
        print(f"  {k:20s} ours {ours[k]:10.2f}  published {v:10.2f}")
    return summary


#: Times of the time-to-gap table, s.
TIMELINE_S = (120.0, 300.0, 600.0, 1800.0)


def print_timeline(name: str, history: list, busd: float) -> None:
    """Print incumbent, bound and gap at each :data:`TIMELINE_S` (last report before it).

    ``history`` holds the solver's :class:`~gridlayers.planner.solve.SolveProgress`
    reports in solver units; ``busd`` converts them to $ billion.
    """
    print(f"[{name}] time-to-gap: time [min], incumbent [$bn], bound [$bn], gap [%]")
    for limit in TIMELINE_S:
        seen = [p for p in history if p.seconds <= limit]
        if not seen:
            print(f"  {limit / 60:5.0f}  no report yet")
            continue
        last = seen[-1]
        best = "-" if last.objective is None else f"{last.objective * busd:.3f}"
        bound = "-" if last.bound is None else f"{last.bound * busd:.3f}"
        gap = "-" if last.gap is None else f"{100 * last.gap:.2f}"
        print(f"  {limit / 60:5.0f}  {best:>9}  {bound:>9}  {gap:>6}  (at {last.seconds:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cases", nargs="*", default=["so"], choices=sorted(SCENARIOS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tee", action="store_true")
    parser.add_argument("--timeline", action="store_true", help="gap at 2, 5, 10, 30 min")
    parser.add_argument(
        "--method", choices=["monolithic", "benders"], default=None, help="default: the scenario's"
    )
    parser.add_argument(
        "--highs-option", type=parse_option, action="append", default=[], metavar="NAME=VALUE"
    )
    args = parser.parse_args()
    show_benders_summaries()
    for case in args.cases:
        run(
            case,
            args.out,
            args.time_limit,
            args.threads,
            args.tee,
            dict(args.highs_option),
            args.method,
            args.timeline,
        )


if __name__ == "__main__":
    main()
