"""Commands ``gridlayers loop`` and ``gridlayers validate-plan`` (registered on the CLI app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from gridlayers.cli import (
    AllowImportOption,
    OutOption,
    ReportOption,
    ScenarioArg,
    _check_out_dir,
    _load_resolved,
    _opt_in_import,
    _write_report,
    app,
)
from gridlayers.cli_output import (
    Output,
    QuietOption,
    VerboseOption,
    err,
    setup_output,
    swallow_highs_banner,
)


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
def loop_cmd(
    scenario: ScenarioArg,
    paradigm: Annotated[
        list[str],
        typer.Option(
            "--paradigm",
            help="total_tso, minimal_dso or total_dso; repeat it to run several side by side.",
        ),
    ],
    out_dir: OutOption = None,
    report: ReportOption = True,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
    allow_import: AllowImportOption = False,
) -> None:
    """Plan, co-simulate the plan under PARADIGM, update the LDA parameters, re-plan."""
    from gridlayers.loop import LoopError
    from gridlayers.planner import PlannerSolveError

    ui = setup_output(quiet, verbose)
    _opt_in_import(allow_import)
    _check_out_dir(out_dir)
    for p in paradigm:
        _check_paradigm(p)
    sc = _loop_scenario(scenario)
    swallow_highs_banner()
    several = len(paradigm) > 1
    base = out_dir or Path("runs") / f"{sc.name}-loop"
    records = {}
    for p in paradigm:
        target = base / p if several else (out_dir or base.with_name(f"{base.name}-{p}"))
        try:
            records[p] = _run_loop(sc, p, target, ui)
        except (LoopError, PlannerSolveError) as exc:
            err.print(f"error: {p}: {exc} (rounds so far: {target / 'loop.json'})", markup=False)
            raise typer.Exit(1) from None
        ui.table(_rounds_table(records[p]))
        Output.path("results", target / "loop.json")
        if report:
            _write_report(target)
    if several:
        ui.table(_side_by_side_table(records))
        if report:  # the plans side by side
            _write_report(base)


def _run_loop(sc: Any, paradigm: str, target: Path, ui: Output) -> dict[str, Any]:
    """Run one paradigm's loop under a bar of rounds and one of co-simulated intervals."""
    from gridlayers.loop import run_loop
    from gridlayers.loop.mapping import day_intervals

    with ui.progress() as bar:
        rounds = bar.add_task(f"{paradigm}: round 1", total=sc.loop.max_iterations)
        cosim = bar.add_task("", total=len(sc.loop.days) * day_intervals(sc), visible=False)

        def progress(k: int, message: str) -> None:
            ui.status(f"{paradigm}: {message}")
            bar.update(rounds, completed=k - 1, description=f"{paradigm}: {message}")
            bar.reset(cosim, visible=False)

        def on_interval(day: int, interval: int) -> None:
            description = f"  day {day}, interval {interval + 1}"
            bar.update(cosim, advance=1, visible=True, description=description)

        record = run_loop(sc, paradigm, target, progress=progress, on_interval=on_interval)
        done = len(record["rounds"])
        bar.update(
            rounds, total=done, completed=done, description=f"{paradigm}: {record['status']}"
        )
        bar.update(cosim, visible=False)
    return record


def _side_by_side_table(records: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="last plan per paradigm")
    table.add_column("quantity")
    for p in records:
        table.add_column(p, justify="right")
    rows = [("status", lambda r: r["status"]), ("rounds", lambda r: str(len(r["rounds"])))]
    rows.append(("objective [$bn]", lambda r: f"{r['plan']['objective_busd']:.4f}"))
    for a in next(iter(records.values()))["plan"]["ldas"]:
        for key, label in (
            ("der_pv_mw", "DER PV"),
            ("der_battery_mw", "DER battery"),
            ("interface_capacity_mw", "interface"),
        ):
            rows.append(
                (f"{a} {label} [MW]", lambda r, a=a, key=key: f"{r['plan']['ldas'][a][key]:.1f}")
            )
        rows.append((f"{a} loss factor", lambda r, a=a: f"{r['parameters'][a]['loss_factor']:.4f}"))
    for label, cell in rows:
        table.add_row(escape(label), *[cell(r) for r in records.values()])
    return table


def _rounds_table(record: dict[str, Any]) -> Table:
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
    return table


@app.command("validate-plan")
def validate_plan_cmd(
    scenario: ScenarioArg,
    plan: Annotated[Path, typer.Option("--plan", help="plan_summary.json of a plan.")],
    paradigm: Annotated[
        str, typer.Option("--paradigm", help="Paradigm that operates the DER.")
    ] = "total_dso",
    out_dir: OutOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
    allow_import: AllowImportOption = False,
) -> None:
    """Co-simulate a plan's DER; report per LDA interface shortfalls in relied-on hours."""
    from gridlayers.loop import LoopError, PlanFileError, validate_plan
    from gridlayers.loop.mapping import day_intervals
    from gridlayers.loop.validate import read_plan

    ui = setup_output(quiet, verbose)
    _opt_in_import(allow_import)
    _check_out_dir(out_dir)
    _check_paradigm(paradigm)
    sc = _loop_scenario(scenario)
    try:  # check the plan file before co-simulating anything
        read_plan(plan, [a.name for a in sc.planner.lda.ldas], sorted(sc.loop.days))
    except PlanFileError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    target = out_dir or Path("runs") / f"{sc.name}-validate-{paradigm}"
    try:
        with ui.progress() as bar:
            task = bar.add_task(paradigm, total=len(sc.loop.days) * day_intervals(sc))

            def on_interval(day: int, interval: int) -> None:
                description = f"{paradigm}: day {day}, interval {interval + 1}"
                bar.update(task, advance=1, description=description)

            report = validate_plan(sc, plan, paradigm, target, on_interval)
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
    ui.table(table)
    Output.path("results", target / "validate_plan.json")
