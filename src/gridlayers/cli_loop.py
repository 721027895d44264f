"""Commands ``gridlayers loop`` and ``gridlayers validate-plan`` (registered on the CLI app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from gridlayers.cli import OutOption, ScenarioArg, _load_resolved, _quiet_libraries, app, err, out

ParadigmOption = Annotated[
    str, typer.Option("--paradigm", help="total_tso, minimal_dso or total_dso.")
]


def _loop_scenario(path: Path) -> Any:
    sc = _load_resolved(path)
    if sc.loop is None:
        err.print(
            f"error: {path}: loop: missing; add a 'loop:' section with 'days' "
            "(planner day -> date), see docs/loop.md",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    return sc


def _check_paradigm(paradigm: str) -> None:
    from gridlayers.loop import LOOP_PARADIGMS

    if paradigm not in LOOP_PARADIGMS:
        err.print(
            f"error: --paradigm: expected one of {', '.join(LOOP_PARADIGMS)} (found {paradigm!r})",
            markup=False,
        )
        raise typer.Exit(2)


@app.command("loop")
def loop_cmd(scenario: ScenarioArg, paradigm: ParadigmOption, out_dir: OutOption = None) -> None:
    """Plan, co-simulate the plan under PARADIGM, update the LDA parameters, re-plan."""
    from gridlayers.loop import LoopError, run_loop
    from gridlayers.planner import PlannerSolveError

    _quiet_libraries()
    _check_paradigm(paradigm)
    sc = _loop_scenario(scenario)
    target = out_dir or Path("runs") / f"{sc.name}-loop-{paradigm}"
    try:
        record = run_loop(sc, paradigm, target, progress=lambda m: err.print(m, markup=False))
    except (LoopError, PlannerSolveError) as exc:
        err.print(f"error: {exc} (rounds so far: {target / 'loop.json'})", markup=False)
        raise typer.Exit(1) from None
    _print_rounds(record)
    out.print(f"results: {target / 'loop.json'}")


def _print_rounds(record: dict[str, Any]) -> None:
    table = Table(title=f"{record['scenario']} loop under {record['paradigm']}: {record['status']}")
    table.add_column("round", justify="right")
    table.add_column("objective [$bn]", justify="right")
    table.add_column("plan change [MW]", justify="right")
    for a in record["plan"]["ldas"]:
        table.add_column(escape(f"{a} PV/battery/interface [MW]"), justify="right")
    for r in record["rounds"]:
        change = r["plan_change_mw"]
        cells = [
            f"{x['der_pv_mw']:.1f} / {x['der_battery_mw']:.1f} / {x['interface_capacity_mw']:.1f}"
            for x in r["plan"]["ldas"].values()
        ]
        table.add_row(
            str(r["round"]),
            f"{r['plan']['objective_busd']:.4f}",
            "–" if change is None else f"{change:.2f}",
            *cells,
        )
    out.print(table)


@app.command("validate-plan")
def validate_plan_cmd(
    scenario: ScenarioArg,
    plan: Annotated[Path, typer.Option("--plan", help="plan_summary.json of a plan.")],
    paradigm: Annotated[
        str, typer.Option("--paradigm", help="Paradigm that operates the DER.")
    ] = "total_dso",
    out_dir: OutOption = None,
) -> None:
    """Co-simulate a plan's DER; report per LDA interface shortfalls in relied-on hours."""
    from gridlayers.loop import LoopError, PlanFileError, validate_plan

    _quiet_libraries()
    _check_paradigm(paradigm)
    sc = _loop_scenario(scenario)
    target = out_dir or Path("runs") / f"{sc.name}-validate-{paradigm}"
    try:
        report = validate_plan(sc, plan, paradigm, target)
    except PlanFileError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except LoopError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    table = Table(title=f"{sc.name}: DER plan under {paradigm}")
    for col in (
        "LDA",
        "ok",
        "interface [MW]",
        "relied hours",
        "shortfall hours",
        "max shortfall [MW]",
        "shortfall [MWh/yr]",
    ):
        table.add_column(col, justify="left" if col == "LDA" else "right")
    for a, r in report["ldas"].items():
        table.add_row(
            escape(a),
            "yes" if r["ok"] else "NO",
            f"{r['interface_capacity_mw']:.1f}",
            str(r["relied_hours"]),
            str(r["shortfall_hours"]),
            f"{r['max_shortfall_mw']:.2f}",
            f"{r['shortfall_mwh_per_yr']:,.0f}",
        )
    out.print(table)
    out.print(f"results: {target / 'validate_plan.json'}")
