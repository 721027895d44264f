"""Entry point: build, solve and report a plan (``gridlayers plan SCENARIO --out DIR``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.core import build_model
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.inputs_isone import read_isone_inputs
from gridlayers.planner.report import summarize_model
from gridlayers.planner.solve import IterationCallback, SolveProgress, solve_model

log = logging.getLogger(__name__)

#: Phases :func:`plan` reports to ``on_phase``, in order.
PLAN_PHASES = ("reading inputs", "building the model", "solving", "writing the summary")
#: Input adapters by ``PlannerConfig.data_format``.
INPUT_ADAPTERS: dict[str, Callable[[PlannerConfig], PlannerInputs]] = {
    "isone8": read_isone_inputs,
}
SUMMARY_FILE = "plan_summary.json"


def load_planner_config(path: Path) -> tuple[str, PlannerConfig]:
    """Read a scenario YAML file and validate its ``planner:`` section.

    Parameters
    ----------
    path : pathlib.Path
        Scenario file with ``name``, ``description`` and ``planner`` keys.

    Returns
    -------
    tuple of (str, PlannerConfig)
        Scenario name and the validated planner configuration.

    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "planner" not in data:
        msg = f"{path}: scenario has no 'planner:' section"
        raise ValueError(msg)
    return str(data.get("name", Path(path).stem)), PlannerConfig.model_validate(data["planner"])


def read_inputs(config: PlannerConfig) -> PlannerInputs:
    """Read the planner inputs with the adapter named by ``config.data_format``."""
    return INPUT_ADAPTERS[config.data_format](config)


def plan(
    config: PlannerConfig,
    out_dir: Path,
    *,
    time_limit_s: float | None = None,
    threads: int | None = None,
    on_phase: Callable[[str], None] | None = None,
    on_iteration: IterationCallback | None = None,
) -> dict:
    """Build and solve the expansion plan, write ``out_dir/plan_summary.json``.

    Parameters
    ----------
    config : PlannerConfig
        Planner configuration.
    out_dir : pathlib.Path
        Output directory (created if missing).
    time_limit_s : float, optional
        Overrides ``config.time_limit_s``, s.
    threads : int, optional
        Overrides ``config.threads``.
    on_phase : callable, optional
        Called with each of :data:`PLAN_PHASES` as it starts.
    on_iteration : callable, optional
        Receives a :class:`~gridlayers.planner.solve.SolveProgress` with incumbent
        and bound in $ billion over the horizon (as ``objective_busd``) after every
        Benders master solve, or about once a second during HiGHS's branch and bound
        (see :func:`~gridlayers.planner.solve.solve_model`).

    Returns
    -------
    dict
        The plan summary (see :func:`gridlayers.planner.report.summarize_model`)
        plus ``build_seconds``, ``solve_seconds``, ``mip_gap``, ``termination``,
        ``solver_message`` (handled solver failures, empty if none),
        ``benders_rejected_cuts``, ``time_limit_s`` (the limit applied, None = none),
        ``objective_scaled``/``bound_scaled`` (solver units),
        ``objective_bound_busd`` (proven lower bound of ``objective_busd``) and
        ``data_set`` (name and SHA-256 of the input files, no paths); $ figures in
        billions over the horizon.

    """
    phase = on_phase or (lambda _name: None)
    start = time.perf_counter()
    phase(PLAN_PHASES[0])
    inputs = read_inputs(config)
    log.info("read %s inputs in %.1f s", config.data_format, time.perf_counter() - start)
    phase(PLAN_PHASES[1])
    model = build_model(inputs, config)
    build_s = time.perf_counter() - start
    log.info("built the model in %.1f s (inputs included)", build_s)
    phase(PLAN_PHASES[2])
    limit = time_limit_s if time_limit_s is not None else config.time_limit_s
    log.info(
        "solving (%s, MIP gap %.0e, time limit %s)",
        config.solve_method,
        config.mip_gap,
        "none" if limit is None else f"{limit:g} s",
    )
    result = solve_model(
        model,
        mip_gap=config.mip_gap,
        time_limit_s=limit,
        threads=threads if threads is not None else config.threads,
        method=config.solve_method,
        on_iteration=None if on_iteration is None else _in_busd(on_iteration, config),
    )
    phase(PLAN_PHASES[3])
    summary = summarize_model(model, inputs, config)
    summary.update(
        build_seconds=build_s,
        solve_seconds=result.solve_seconds,
        mip_gap=result.mip_gap,
        termination=result.termination,
        solve_method=result.method,
        benders_iterations=result.iterations,
        solver_message=result.message,
        benders_rejected_cuts=result.rejected_cuts,
        time_limit_s=limit,
        objective_scaled=result.objective,
        bound_scaled=result.bound,
        objective_bound_busd=to_busd(result.bound, config),
        multi_objective=config.multi_objective,
        data_set=None if inputs.data_set is None else dataclasses.asdict(inputs.data_set),
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    log.info("wrote %s", out / SUMMARY_FILE)
    return summary


def to_busd(value: float, config: PlannerConfig) -> float:
    """Convert a model objective value (scaled $ per epoch year) to $ billion over the horizon."""
    return config.epoch_years * value / config.obj_scale / 1e9


def _in_busd(on_iteration: IterationCallback, config: PlannerConfig) -> IterationCallback:
    """Wrap ``on_iteration`` so that it receives incumbent and bound in $ billion."""

    def report(progress: SolveProgress) -> None:
        objective, bound = progress.objective, progress.bound
        on_iteration(
            dataclasses.replace(
                progress,
                objective=None if objective is None else to_busd(objective, config),
                bound=None if bound is None else to_busd(bound, config),
            )
        )

    return report
