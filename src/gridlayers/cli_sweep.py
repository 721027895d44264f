"""Command ``gridlayers sweep`` (registered on the CLI app): parameter sweeps on Dask."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from gridlayers.cli import OutOption, ReportOption, app
from gridlayers.cli_output import Output, QuietOption, VerboseOption, err, setup_output
from gridlayers.scenarios.load import ScenarioError


def _fail(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command("sweep")
def sweep_cmd(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML file (docs/running-at-scale.md).")],
    out_dir: OutOption = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes of the local Dask cluster (default: the file's, 2)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Address of an existing Dask scheduler (tcp://HOST:8786) instead of a local "
            "cluster; its workers must see DIR at the same path."
        ),
    ] = None,
    dashboard: Annotated[
        str | None,
        typer.Option(help="Local cluster's dashboard address, e.g. 127.0.0.1:8787 (needs bokeh)."),
    ] = None,
    report: ReportOption = True,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
) -> None:
    """Run a base scenario over a grid of parameter values on Dask; one store, one report.

    Points already computed (completed, same scenario) are reused; a failed point is
    recorded and the others go on (exit 1 at the end).
    """
    from gridlayers.sweep import ClusterOptions, load_sweep, run_sweep

    ui = setup_output(quiet, verbose)
    if not verbose:  # the cluster's shutdown and memory notices are not errors
        logging.getLogger("distributed").setLevel(logging.ERROR)
    if workers is not None and workers < 1:
        _fail(f"--workers must be at least 1, got {workers}")
    if scheduler is not None and workers is not None:
        _fail("--workers sizes the local cluster; leave it out with --scheduler")
    try:
        sweep = load_sweep(sweep_file)
    except ScenarioError as exc:
        _fail(str(exc))
    options = ClusterOptions(workers or sweep.config.workers, scheduler, dashboard)
    target = out_dir or Path(sweep.config.out or Path("runs") / sweep.config.name)
    ui.status(
        f"{sweep.config.name}: {len(sweep.points)} points on "
        + (scheduler or f"a local Dask cluster of {options.workers} workers")
    )
    with ui.progress() as bar:
        task = bar.add_task(sweep.config.name, total=len(sweep.points))

        def on_point(record: dict[str, Any]) -> None:
            how = "reused" if record["skipped"] else record["status"]
            bar.update(task, advance=1, description=f"{record['point']} {how}")

        outcome = run_sweep(sweep, target, options, report=report, on_point=on_point)
    ui.table(_points_table(sweep.parameters, outcome.records))
    Output.path("results", outcome.store)
    Output.path("summary", outcome.summary)
    if outcome.report is not None:
        Output.path("report", outcome.report)
    if not outcome.ok:
        failed = [r["point"] for r in outcome.records if r["status"] != "completed"]
        err.print(
            f"error: {len(failed)} point(s) failed: {', '.join(failed)} (errors in "
            f"{outcome.summary} and each point's error.log; a rerun computes only these)",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _points_table(parameters: list[str], records: list[dict[str, Any]]) -> Table:
    table = Table(title="sweep points")
    table.add_column("point")
    for p in parameters:
        table.add_column(escape(p), justify="right")
    table.add_column("status")
    table.add_column("wall time [s]", justify="right")
    for r in records:
        status = "reused" if r["skipped"] else r["status"]
        secs = "–" if r.get("wall_seconds") is None else f"{r['wall_seconds']:.1f}"
        cells = [escape(str(r["parameters"].get(p, "–"))) for p in parameters]
        table.add_row(r["point"], *cells, status, secs)
    return table
