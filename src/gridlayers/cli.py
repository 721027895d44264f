"""Command line interface: ``gridlayers run|compare|report|validate|schema`` and more.

Invalid input of any kind exits with code 2 and one line on stderr naming the file,
the field, what was expected and what was found. A run that fails part-way exits
with code 1 after writing what it computed. The long commands take ``--quiet`` and
``-v/--verbose`` (:mod:`gridlayers.cli_output`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from gridlayers.cli_output import (
    Output,
    QuietOption,
    VerboseOption,
    err,
    out,
    setup_output,
    swallow_highs_banner,
)
from gridlayers.scenarios.load import ScenarioError, load_scenario
from gridlayers.scenarios.schema import Scenario

if TYPE_CHECKING:
    from gridlayers.planner import PlannerConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Co-simulate TSO/DSO/DER operating paradigms and compare them.",
)
ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file.")]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Output folder (default: runs/<scenario name>).")
]
ReportOption = Annotated[
    bool,
    typer.Option(
        "--report/--no-report", help="Write DIR/report.html and DIR/report/*.png at the end."
    ),
]
AllowImportOption = Annotated[
    bool,
    typer.Option(
        "--allow-import",
        help="Let the scenario name DSO strategies by import path ('package.module:Class'), "
        "which imports and runs that code; off by default (same as GRIDLAYERS_ALLOW_IMPORT=1).",
    ),
]


def _opt_in_import(allow: bool) -> None:
    """Allow importing user code named in scenarios, here and in the processes started."""
    if allow:
        from gridlayers.dso.strategies import ALLOW_IMPORT_ENV

        os.environ[ALLOW_IMPORT_ENV] = "1"


def _check_out_dir(out_dir: Path | None) -> None:
    """Exit 2 if ``--out`` names something that is not a folder."""
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        err.print(f"error: --out: {out_dir} exists and is not a folder", markup=False)
        raise typer.Exit(2)


def _load_resolved(path: Path) -> Scenario:
    """Load, validate and resolve a scenario, or exit 2 with a one-line message."""
    from gridlayers.scenarios.resolve import resolve_scenario

    try:
        scenario = load_scenario(path)
        resolve_scenario(scenario, path)
    except ScenarioError as exc:
        if _planning_only(path):
            fix = "it is a planning scenario (no transmission or ldas); use 'gridlayers plan'"
            exc = ScenarioError(exc.file, "", "not a co-simulation scenario", fix)
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    return scenario


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    print(json.dumps(Scenario.model_json_schema(by_alias=True), indent=2))  # noqa: T201


@app.command()
def validate(scenario: ScenarioArg, allow_import: AllowImportOption = False) -> None:
    """Check a scenario and resolve every reference in it, without running anything."""
    setup_output(quiet=False, verbose=0)
    _opt_in_import(allow_import)
    if _planning_only(scenario):
        _validate_plan_scenario(scenario)
        return
    sc = _load_resolved(scenario)
    out.print(
        f"{scenario}: valid ({len(sc.ldas)} LDAs, {sc.horizon.intervals} intervals of "
        f"{sc.horizon.interval_min} min, paradigms: {', '.join(sc.paradigms)})",
        soft_wrap=True,
    )


def _planning_only(path: Path) -> bool:
    """Whether ``path`` is a planning scenario (a ``planner`` section, no co-simulation)."""
    from gridlayers.scenarios.load import read_yaml

    try:
        data = read_yaml(path)
    except ScenarioError:
        return False  # _load_resolved reports it
    return "planner" in data and not {"transmission", "ldas", "horizon"} & set(data)


def _load_plan_resolved(path: Path) -> Any:
    """Load and resolve a planning scenario, or exit 2 with a one-line message."""
    from gridlayers.scenarios.load import load_plan_scenario
    from gridlayers.scenarios.resolve import resolve_plan_scenario

    try:
        ps = load_plan_scenario(path)
        resolve_plan_scenario(ps, path)
    except ScenarioError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    return ps


def _validate_plan_scenario(path: Path) -> None:
    """``validate`` of a planning scenario (for ``gridlayers plan``): exit 2 if invalid."""
    ps = _load_plan_resolved(path)
    ldas = len(ps.planner.lda.ldas) if ps.planner.lda else 0
    out.print(
        f"{path}: valid planning scenario ({ldas} LDAs, solve method "
        f"{ps.planner.solve_method}; run it with 'gridlayers plan')",
        soft_wrap=True,
    )


@app.command()
def run(
    scenario: ScenarioArg,
    out_dir: OutOption = None,
    report: ReportOption = True,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
    allow_import: AllowImportOption = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            metavar="RUN_DIR",
            help="Continue the run in RUN_DIR (killed or failed) after its last stored "
            "interval, from its checkpoint; results are appended to its store.",
        ),
    ] = None,
) -> None:
    """Run a scenario's co-simulation, write results and print a KPI summary."""
    ui = setup_output(quiet, verbose)
    _opt_in_import(allow_import)
    _check_out_dir(out_dir)
    if resume is not None and out_dir is not None and out_dir != resume:
        err.print("error: --resume writes into RUN_DIR; leave out --out", markup=False)
        raise typer.Exit(2)
    sc = _load_resolved(scenario)
    target = resume or out_dir or sc.output.dir or Path("runs") / sc.name
    _run_and_report(sc, target, report, ui, resume=resume is not None)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Folder written by run, compare, plan or loop.")],
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML file to write, or a folder for report.html (default: "
            "RUN_DIR/report.html); the PNGs go to the folder of its name without '.html'.",
        ),
    ] = None,
) -> None:
    """Write one self-contained HTML report of a run folder, plus every figure as PNG."""
    from gridlayers.report import write_report
    from gridlayers.results import RunFolderError

    try:
        written = write_report(run_dir, out_path)
    except RunFolderError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    skipped = f", {len(written.skipped)} skipped" if written.skipped else ""
    out.print(
        f"report: {written.html} ({len(written.figures)} figures{skipped})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _write_report(folder: Path) -> None:
    """Write ``folder/report.html`` after a command and print its path (also when quiet).

    The results are already written, so a report that fails is a warning, not an error.
    """
    from gridlayers.report import write_report

    try:
        written = write_report(folder)
    except Exception as exc:  # noqa: BLE001 - the results stand without their report
        err.print(f"warning: report not written: {type(exc).__name__}: {exc}", markup=False)
        return
    Output.path("report", written.html)


@app.command()
def serve(
    port: Annotated[
        int,
        typer.Option(
            help="Port of the partition's aggregator simulator; its DSO and feeder "
            "simulators listen on the next two ports."
        ),
    ] = 5678,
    host: Annotated[
        str,
        typer.Option(help="Address to bind; the default is reachable from this machine only."),
    ] = "127.0.0.1",
    runs: Annotated[
        int,
        typer.Option(help="mosaik worlds (one per paradigm) to serve; 0: until stopped."),
    ] = 0,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for mosaik to connect.")] = 3600,
    allow_import: AllowImportOption = False,
) -> None:
    """Serve one LDA partition's aggregator, DSO and feeder simulators (simulators.lda: connect)."""
    from gridlayers.simulators.serve import serve_partition

    for bad, message in (
        (not 0 < port < 65534, f"--port: expected a port 1-65533 (found {port})"),
        (runs < 0, f"--runs: expected 0 (until stopped) or more (found {runs})"),
        (timeout <= 0, f"--timeout: expected a positive number of seconds (found {timeout})"),
        (not host.strip(), f"--host: expected an address to bind (found {host!r})"),
    ):
        if bad:
            err.print(f"error: {message}", markup=False)
            raise typer.Exit(2)
    _opt_in_import(allow_import)
    if not is_loopback(host):
        err.print(
            f"warning: binding to {host}: other machines can reach these simulators, which "
            "have no authentication; use a trusted network only",
            markup=False,
        )
    out.print(f"serving an LDA partition on {host}:{port}-{port + 2}", soft_wrap=True)
    raise typer.Exit(serve_partition(host, port, timeout, runs))


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, ``127.x.x.x``, ``::1``)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


#: Paradigms ``compare`` runs, in table order.
COMPARED = ("total_tso", "minimal_dso", "total_dso")


@app.command()
def compare(
    scenario: ScenarioArg,
    out_dir: OutOption = None,
    passive: Annotated[
        bool, typer.Option(help="Also run 'passive' (self-scheduled DER) as a reference.")
    ] = False,
    iterative: Annotated[
        bool, typer.Option(help="Also run 'iterative' (TSO-DSO ADMM rounds per interval).")
    ] = False,
    report: ReportOption = True,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
    allow_import: AllowImportOption = False,
) -> None:
    """Run Total TSO, Minimal DSO and Total DSO on identical inputs; print them side by side."""
    ui = setup_output(quiet, verbose)
    _opt_in_import(allow_import)
    _check_out_dir(out_dir)
    sc = _load_resolved(scenario)
    paradigms = [*COMPARED, "passive"] if passive else list(COMPARED)
    paradigms += ["iterative"] if iterative else []
    sc = sc.model_copy(update={"paradigms": paradigms})
    target = out_dir or sc.output.dir or Path("runs") / f"{sc.name}-compare"
    _run_and_report(sc, target, report, ui)


def _run_and_report(
    sc: Scenario, target: Path, report: bool, ui: Output, resume: bool = False
) -> None:
    """Run every paradigm of ``sc`` with a progress bar, print the KPI table, exit 1 on failure.

    With ``report``, also write ``target/report.html`` (a failed run's too). With
    ``resume``, continue the run in ``target`` (exit 2 with one line if it cannot be).
    """
    from gridlayers.results.checkpoint import ResumeError, resume_plan
    from gridlayers.runner import run_scenario

    total = sc.horizon.intervals * len(sc.paradigms)
    done = 0
    if resume:
        try:
            done = sum(k for k, _ in resume_plan(target / "results.duckdb", sc).values())
        except ResumeError as exc:
            err.print(f"error: --resume: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    with ui.progress() as bar:
        task = bar.add_task(f"{sc.name}", total=total, completed=done)
        outcome = run_scenario(sc, target, on_interval=_advance(bar, task), resume=resume)
    ui.table(_summary_table(outcome.summary))
    Output.path("results", target)
    if report:
        _write_report(target)
    if not outcome.ok:
        err.print(
            f"error: run failed: {outcome.summary['error']} (see {target}/error.log; "
            "results up to the failure are kept)",
            markup=False,
        )
        raise typer.Exit(1)


@app.command()
def plan(
    scenario: ScenarioArg,
    out_dir: OutOption = None,
    time_limit: Annotated[
        float | None,
        typer.Option(
            help="Solver time limit in seconds (overrides the scenario's planner.time_limit_s); "
            "at the limit the best plan found and its proven bound are written."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Solver threads (overrides the scenario).")
    ] = None,
    report: ReportOption = True,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Solve the scenario's capacity expansion plan; write DIR/plan_summary.json."""
    from gridlayers.planner import InputDataError, PlannerSolveError

    ui = setup_output(quiet, verbose)
    if time_limit is not None and not 0 < time_limit < float("inf"):
        msg = f"error: --time-limit must be a positive number of seconds, got {time_limit}"
        err.print(msg, markup=False)
        raise typer.Exit(2)
    if threads is not None and threads < 1:
        err.print(f"error: --threads: expected 1 or more (found {threads})", markup=False)
        raise typer.Exit(2)
    _check_out_dir(out_dir)
    ps = _load_plan_resolved(scenario)
    target = out_dir or Path("runs") / f"{ps.name}-plan"
    limit = time_limit if time_limit is not None else ps.planner.time_limit_s
    ui.status(
        f"{ps.name}: solve method {ps.planner.solve_method}, MIP gap {ps.planner.mip_gap:g}, "
        + ("no time limit" if limit is None else f"time limit {limit:g} s")
        + " (change it with --time-limit SECONDS)"
    )
    swallow_highs_banner()
    try:
        summary = _solve_plan(ps.name, ps.planner, target, time_limit, threads, ui)
    except InputDataError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except PlannerSolveError as exc:
        err.print(f"error: planner did not solve: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    ui.table(_plan_table(ps.name, summary))
    Output.path("results", target / "plan_summary.json")
    if report:
        _write_report(target)


def _solve_plan(
    name: str,
    config: PlannerConfig,
    target: Path,
    time_limit: float | None,
    threads: int | None,
    ui: Output,
) -> dict[str, Any]:
    """Run :func:`gridlayers.planner.plan` under a bar of its phases and Benders iterations."""
    from gridlayers.planner import plan as solve_plan
    from gridlayers.planner.api import PLAN_PHASES
    from gridlayers.planner.solve import SolveProgress

    with ui.progress() as bar:
        task = bar.add_task(f"{name}: {PLAN_PHASES[0]}", total=len(PLAN_PHASES))

        def on_phase(phase: str) -> None:
            solver = f" ({config.solve_method})" if phase == PLAN_PHASES[2] else ""
            description = f"{name}: {phase}{solver}"
            bar.update(task, completed=PLAN_PHASES.index(phase), description=description)

        def on_iteration(progress: SolveProgress) -> None:
            bar.update(task, description=f"{name}: solving, {progress_text(progress)}")

        summary = solve_plan(
            config,
            target,
            time_limit_s=time_limit,
            threads=threads,
            on_phase=on_phase,
            on_iteration=on_iteration,
        )
        bar.update(task, completed=len(PLAN_PHASES), description=f"{name}: planned")
    return summary


def progress_text(progress: Any) -> str:
    """One line of a running plan: iteration, incumbent, proven bound and gap ($bn).

    ``progress`` is a :class:`gridlayers.planner.solve.SolveProgress` in $ billion.
    """
    step = "node" if progress.phase == "mip" else "Benders iteration"
    parts = [f"{step} {progress.iteration}"]
    plan = "no plan yet" if progress.objective is None else f"plan {progress.objective:.2f} $bn"
    parts.append(plan)
    if progress.bound is not None:
        parts.append(f"bound {progress.bound:.2f} $bn")
    if progress.gap is not None:
        parts.append(f"gap {100 * progress.gap:.2f} %")
    return ", ".join(parts)


def _plan_table(name: str, summary: dict[str, Any]) -> Table:
    table = Table(title=f"{name}: capacity expansion plan")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in ("investment_busd", "operation_busd", "externalities_busd", "hard_cost_busd"):
        if summary.get(key) is not None:
            table.add_row(escape(key.replace("_busd", " [$bn]")), f"{summary[key]:.3f}")
    for key, label in (
        ("objective_busd", "objective (best plan) [$bn]"),
        ("objective_bound_busd", "proven lower bound [$bn]"),
    ):
        if summary.get(key) is not None:
            table.add_row(escape(label), f"{summary[key]:.3f}")
    if summary.get("mip_gap") is not None:
        table.add_row("gap [%]", f"{100 * summary['mip_gap']:.3f}")
    for tech, mw in sorted((summary.get("capacity_mw") or {}).items()):
        table.add_row(escape(f"new {tech} [MW]"), f"{mw:,.0f}")
    for key, fmt in (
        ("build_seconds", "{:.1f}"),
        ("solve_seconds", "{:.1f}"),
        ("time_limit_s", "{:g}"),
    ):
        if summary.get(key) is not None:
            table.add_row(key, fmt.format(summary[key]))
    if summary.get("solve_method") == "benders":
        table.add_row("benders_iterations", str(summary.get("benders_iterations")))
        table.add_row("benders_rejected_cuts", str(summary.get("benders_rejected_cuts", 0)))
    table.add_row("termination", str(summary.get("termination")))
    if summary.get("solver_message"):
        table.add_row("solver_message", escape(str(summary["solver_message"])))
    return table


def _advance(bar: Progress, task: Any) -> Callable[[str, int], None]:
    def advance(paradigm: str, interval: int) -> None:
        bar.update(task, advance=1, description=f"{paradigm} interval {interval + 1}")

    return advance


#: (KPI key, label, format) rows of the summary table; resource costs first, then physics.
_ROWS = (
    ("intervals", "intervals", "{:.0f}"),
    ("total_cost", "total resource cost [$]", "{:,.0f}"),
    ("generation_cost", "  realised generation [$]", "{:,.0f}"),
    ("der_cost", "  DER cost [$]", "{:,.0f}"),
    ("stored_energy_value", "  minus stored energy value [$]", "{:,.0f}"),
    ("unserved_energy_mwh", "  unserved energy [MWh]", "{:.3f}"),
    ("forward_generation_cost", "forward generation cost [$]", "{:,.0f}"),
    ("imbalance_mwh", "interface deviation [MWh]", "{:.2f}"),
    ("lda_import_mwh", "LDA import [MWh]", "{:,.2f}"),
    ("losses_mwh", "feeder losses [MWh]", "{:.3f}"),
    ("der_curtailed_mwh", "DER curtailed [MWh]", "{:.3f}"),
    ("voltage_violations", "voltage violations [bus-int.]", "{:.0f}"),
    ("thermal_violations", "thermal violations [branch-int.]", "{:.0f}"),
    ("min_voltage_pu", "min voltage [pu]", "{:.4f}"),
    ("max_voltage_pu", "max voltage [pu]", "{:.4f}"),
    ("max_loading_percent", "max loading [%]", "{:.1f}"),
    ("nonconverged_powerflows", "non-converged power flows", "{:.0f}"),
    ("dso_infeasible_intervals", "DSO infeasible [LDA-int.]", "{:.0f}"),
    ("slack_intervals", "TSO feeder slack [intervals]", "{:.0f}"),
    ("tso_variables", "TSO variables", "{:.0f}"),
    ("tso_constraints", "TSO constraints", "{:.0f}"),
    ("interface_values_exchanged", "values across T-D interfaces", "{:,.0f}"),
    ("tso_solve_seconds", "TSO solve time [s]", "{:.2f}"),
    ("wall_seconds", "wall time [s]", "{:.1f}"),
)
#: Iterative paradigm's ADMM rows (shown when a paradigm has them).
_COORDINATION_ROWS = (
    ("admm_rounds_mean", "ADMM rounds per interval, mean", "{:.1f}"),
    ("admm_rounds_max", "ADMM rounds per interval, max", "{:.0f}"),
    ("admm_converged_share", "ADMM intervals converged [-]", "{:.2f}"),
)
#: Payment rows ($ over the horizon, positive = received; they net to zero).
_PAYMENTS = (
    ("generators", "paid to generators [$]"),
    ("bulk_loads", "paid to bulk loads [$]"),
    ("ldas", "paid to LDAs [$]"),
    ("aggregators", "paid to aggregators [$]"),
    ("dsos", "paid to DSOs [$]"),
    ("tso_congestion_rent", "TSO congestion rent [$]"),
    ("net", "payments net [$]"),
)


def _summary_table(summary: dict[str, Any]) -> Table:
    paradigms = summary["paradigms"]
    table = Table(title=f"{summary['scenario']} ({summary['status']})")
    table.add_column("KPI")
    for name in paradigms:
        table.add_column(name, justify="right")

    def row(label: str, cells: list[Any], fmt: str) -> None:
        table.add_row(escape(label), *["–" if c is None else fmt.format(c) for c in cells])

    for key, label, fmt in _ROWS:
        row(label, [paradigms[p].get(key) for p in paradigms], fmt)
    for key, label, fmt in _COORDINATION_ROWS:  # only with the iterative paradigm
        if any(key in k for k in paradigms.values()):
            row(label, [paradigms[p].get(key) for p in paradigms], fmt)
    for key, label in _PAYMENTS:
        cells = [(paradigms[p].get("payments") or {}).get(key) for p in paradigms]
        if any(c is not None for c in cells):
            row(label, cells, "{:,.0f}")
    lmp_ldas = {lda for k in paradigms.values() for lda in k["interface_lmp_usd_per_mwh"]}
    for lda in sorted(lmp_ldas):
        for stat, label in (("mean", "forward"), ("rt_mean", "real-time")):
            cells = [
                paradigms[p]["interface_lmp_usd_per_mwh"].get(lda, {}).get(stat) for p in paradigms
            ]
            row(f"mean {label} LMP {lda} [$/MWh]", cells, "{:.2f}")
    return table


import gridlayers.cli_loop  # noqa: E402, F401  (registers ``loop`` and ``validate-plan``)
import gridlayers.cli_sweep  # noqa: E402, F401  (registers ``sweep``)


def main() -> None:
    """Entry point of the ``gridlayers`` console script."""
    app()


if __name__ == "__main__":  # ``python -m gridlayers.cli``: use the registered module's app
    from gridlayers.cli import main as registered_main

    registered_main()
