"""docker/Dockerfile and docker/compose.yaml, checked without a container runtime.

Every ``gridlayers`` (and ``dask``) command in them is parsed by the real CLI, every
COPY source exists and survives the build's ignore file, and the compose services agree
with each other and with ``gridlayers serve``'s port scheme (aggregator, DSO, feeder on
PORT, PORT+1, PORT+2). The compose entry points themselves run without containers in
``tests/test_partitions.py::test_served_partitions_reached_with_connect_equal_the_in_process_run``
(``gridlayers serve`` + ``simulators.lda: connect``) and below (``gridlayers sweep
--scheduler`` on a ``dask scheduler`` and ``dask worker`` started as the compose file does).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import typer.main
import yaml

from gridlayers.cli import app
from gridlayers.scenarios.load import load_scenario
from gridlayers.simulators.serve import KINDS
from gridlayers.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
WORKDIR = "/app"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _argv(arguments: str) -> list[str]:
    """Exec form (JSON array) or shell form, as an argument list."""
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def _check_cli(group: click.Group, argv: list[str]) -> click.Context:
    """Parse ``argv`` with the real command (unknown command or option: fails)."""
    assert argv, "empty command"
    assert argv[0] in group.commands, f"{argv[0]!r} is not a command of {group.name}"
    command = group.commands[argv[0]]
    return command.make_context(argv[0], list(argv[1:]))


GRIDLAYERS = typer.main.get_command(app)


def _dask() -> click.Group:
    from distributed.cli.dask_scheduler import main as scheduler
    from distributed.cli.dask_worker import main as worker

    return click.Group("dask", commands={"scheduler": scheduler, "worker": worker})


# ------------------------------------------------------------------ Dockerfile


def test_dockerfile_copies_existing_sources_the_ignore_file_keeps() -> None:
    steps = _instructions(DOCKER / "Dockerfile")
    ignore = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [_argv(args) for kind, args in steps if kind == "COPY"]
    assert copies
    for *sources, _target in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            kept = False  # last matching ignore pattern wins, '!' re-includes
            for pattern in ignore:
                negate = pattern.startswith("!")
                if fnmatch.fnmatch(source.rstrip("/"), pattern.lstrip("!")):
                    kept = negate
            assert kept, f"COPY {source}: excluded by Dockerfile.dockerignore"
    assert ("pyproject.toml", "README.md", "./") in {tuple(c) for c in copies}


def test_both_ignore_files_keep_the_same_build_context() -> None:
    """BuildKit reads docker/Dockerfile.dockerignore, the legacy builder the root one."""

    def rules(path: Path) -> list[str]:
        lines = path.read_text().splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    assert rules(ROOT / ".dockerignore") == rules(DOCKER / "Dockerfile.dockerignore")


def test_dockerfile_commands_are_real_cli_commands() -> None:
    steps = dict(_instructions(DOCKER / "Dockerfile"))
    assert _argv(steps["ENTRYPOINT"]) == ["gridlayers"]
    _check_cli(GRIDLAYERS, _argv(steps["CMD"]))
    runs = [args for kind, args in _instructions(DOCKER / "Dockerfile") if kind == "RUN"]
    called = [
        shlex.split(part.strip())[1:]
        for args in runs
        for part in args.split("&&")
        if part.strip().startswith("gridlayers ")
    ]
    assert called  # the image validates the bundled scenario at build time
    for argv in called:
        _check_cli(GRIDLAYERS, argv)
    assert steps["USER"] != "root"


def test_dockerfile_base_is_a_build_argument_with_a_default() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert "ARG BASE=python:3.11-slim" in text
    assert "FROM ${BASE}" in text


# ------------------------------------------------------------------ compose


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())  # resolves the << merges


def _full_argv(service: dict) -> tuple[click.Group, list[str]]:
    entry = service.get("entrypoint", ["gridlayers"])
    group = {"gridlayers": GRIDLAYERS, "dask": _dask()}[entry[0]]
    return group, [*entry[1:], *service["command"]]


def test_compose_commands_are_real_cli_commands(compose: dict) -> None:
    services = compose["services"]
    assert {"tso", "lda-0", "lda-1", "scheduler", "worker", "sweep"} <= set(services)
    for name, service in services.items():
        group, argv = _full_argv(service)
        _check_cli(group, argv)
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert (DOCKER / service["build"]["context"] / "docker/Dockerfile").is_file()


def test_compose_tso_reaches_every_served_partition(compose: dict) -> None:
    services = compose["services"]
    tso = services["tso"]
    run = _check_cli(GRIDLAYERS, tso["command"])
    scenario_in_container = f"{WORKDIR}/{run.params['scenario']}"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in tso["volumes"]}
    source = DOCKER / mounts[scenario_in_container]
    scenario = load_scenario(source)
    assert scenario.simulators.lda == "connect"
    partitions = sorted(n for n in services if n.startswith("lda-"))
    expected = []
    for name in partitions:
        service = services[name]
        serve = _check_cli(GRIDLAYERS, service["command"]).params
        assert serve["host"] == "0.0.0.0"  # reachable from the tso container
        assert serve["runs"] == 0  # serves every paradigm of the run
        ports = [serve["port"] + offset for _, offset in KINDS.values()]
        assert sorted(int(p) for p in service["expose"]) == ports
        health = service["healthcheck"]["test"][-1]
        assert all(f"{p}" in health for p in ports)
        assert tso["depends_on"][name] == {"condition": "service_healthy"}
        expected.append(f"{name}:{serve['port']}")
    assert scenario.simulators.addresses == expected
    assert scenario.simulators.partition_count(len(scenario.ldas)) == len(partitions)


def test_partitioned_scenario_is_the_default_system(compose: dict) -> None:
    ours = yaml.safe_load((DOCKER / "scenario-partitioned.yaml").read_text())
    default = yaml.safe_load((ROOT / "scenarios/default.yaml").read_text())
    changed = {"name", "description", "horizon", "paradigms", "simulators", "output", "forecast"}
    for key in set(default) | set(ours):
        if key not in changed:
            assert ours.get(key) == default.get(key), key


def test_compose_sweep_uses_the_scheduler_service(compose: dict) -> None:
    services = compose["services"]
    scheduler = _check_cli(_dask(), services["scheduler"]["command"]).params
    sweep = _check_cli(GRIDLAYERS, services["sweep"]["command"]).params
    assert sweep["scheduler"] == f"tcp://scheduler:{scheduler['port']}"
    worker = _check_cli(_dask(), services["worker"]["command"]).params
    assert worker["scheduler"] == sweep["scheduler"]
    assert worker["nthreads"] == 1
    assert load_sweep(ROOT / sweep["sweep_file"]).points  # a bundled, valid sweep file
    assert str(sweep["sweep_file"]).startswith("scenarios/")  # copied into the image
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port  # published on loopback only
        assert "../runs:/app/runs" in service["volumes"]


# ------------------------------------------------------------------ entry points, no containers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sweep_on_an_existing_dask_scheduler(tmp_path: Path) -> None:
    """The compose file's sweep path: ``dask scheduler``, ``dask worker``, ``--scheduler``."""
    dask = str(Path(sys.executable).with_name("dask"))
    gridlayers = str(Path(sys.executable).with_name("gridlayers"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(  # noqa: S603
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        procs.append(
            subprocess.Popen(  # noqa: S603
                [
                    dask,
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp_path,
            )
        )
        sweep = tmp_path / "sweep.yaml"
        sweep.write_text(
            yaml.safe_dump(
                {
                    "name": "remote",
                    "scenario": str(ROOT / "scenarios/default.yaml"),
                    "paradigms": ["minimal_dso"],
                    "set": {"horizon.intervals": 1, "output.bus_voltages": False},
                    "grid": {"seed": [1]},
                }
            )
        )
        time.sleep(2)
        result = subprocess.run(  # noqa: S603
            [
                gridlayers,
                "sweep",
                str(sweep),
                "--scheduler",
                address,
                "--out",
                str(tmp_path / "o"),
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert summary["metadata"]["cluster"] == address
    assert [p["status"] for p in summary["points"]] == ["completed"]
    assert summary["points"][0]["paradigms"]["minimal_dso"]["intervals"] == 1
    assert f"results: {tmp_path / 'o' / 'sweep.duckdb'}" in result.stdout


# ------------------------------------------------------------------ the image itself (opt-in)


def _docker_ready() -> bool:
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)  # noqa: S607
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("GRIDLAYERS_DOCKER_TEST") != "1" or not _docker_ready(),
    reason="set GRIDLAYERS_DOCKER_TEST=1 with a running Docker daemon (builds the image)",
)
def test_image_builds_and_runs_the_cli(tmp_path: Path) -> None:
    """Build docker/Dockerfile from the files it copies, then run the CLI in the image.

    ``GRIDLAYERS_DOCKER_BASE`` names the base image (default ``python:3.11-slim``; e.g. a
    debootstrap image without Docker Hub, docs/running-at-scale.md).
    """
    context = tmp_path / "context"
    for name in ("pyproject.toml", "README.md", "src", "scenarios", "docker"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy(source, context / name)
    base = os.environ.get("GRIDLAYERS_DOCKER_BASE", "python:3.11-slim")
    tag = "gridlayers:test-docker-files"
    build = [
        "docker", "build", "--network", "host", "--build-arg", f"BASE={base}",
        "-f", str(context / "docker/Dockerfile"), "-t", tag, str(context),
    ]  # fmt: skip
    built = subprocess.run(build, capture_output=True, text=True, timeout=1800, check=False)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    run = ["docker", "run", "--rm", "--network", "none", tag]
    for argv in (["sweep", "--help"], ["validate", "scenarios/default.yaml"]):
        result = subprocess.run(
            [*run, *argv], capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stderr
    dask = ["docker", "run", "--rm", "--network", "none", "--entrypoint", "dask", tag]
    workers = subprocess.run(
        [*dask, "worker", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert workers.returncode == 0, workers.stderr
