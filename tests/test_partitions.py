"""LDA partitions in processes of their own give the in-process results, bit for bit.

The default scenario (3 LDAs, every paradigm the comparison runs, every per-element
table stored) over three midday quarter-hours, once in-process, then with each
partition's aggregator, DSO and feeder simulators as mosaik subprocesses (``cmd``) in 1
and 2 partitions, then served by ``gridlayers serve`` and reached with mosaik's
``connect``. Every stored value except wall-clock timings must be equal.
"""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import stored_tables, write_scenario
from gridlayers.cosim import partitions
from gridlayers.results.store import TABLES
from gridlayers.runner import run_scenario
from gridlayers.scenarios import ScenarioError, load_scenario

PARADIGMS = ["total_tso", "minimal_dso", "total_dso"]


def _scenario(data: dict, tmp: Path, name: str, **simulators) -> object:
    data = {**data, "name": name, "paradigms": PARADIGMS}
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 3, "interval_min": 15}
    data["simulators"] = {"feeder": "python", "market": "python", **simulators}
    # every per-element table crosses the process boundaries too
    data["output"] = {"bus_voltages": True, "device_dispatch": True, "branch_loading": True}
    return load_scenario(write_scenario(tmp, data, f"{name}.yaml"))


def _run(scenario, folder: Path) -> dict[str, pd.DataFrame]:
    outcome = run_scenario(scenario, folder)
    assert outcome.summary["status"] == "completed", outcome.summary["error"]
    return stored_tables(folder)


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        pd.testing.assert_frame_equal(a[table], b[table], check_exact=True, obj=table)
    assert len(a["feeder_interval"]) == 3 * 3 * len(PARADIGMS)
    assert len(a["device_interval"]) > len(a["aggregator_interval"]) > 0
    assert len(a["branch_interval"]) > len(a["feeder_interval"])


def _free_port() -> int:
    """A port whose next two are free as well (the partition's three simulators)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and all(_free(port + i) for i in (1, 2)):
            return port
    raise RuntimeError("no three consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    import yaml

    from conftest import DEFAULT

    data = yaml.safe_load(DEFAULT.read_text())
    tmp = tmp_path_factory.mktemp("partitions")
    return data, _run(_scenario(data, tmp, "inproc"), tmp / "inproc")


@pytest.mark.parametrize("n", [1, 2])
def test_partitions_in_subprocesses_equal_the_in_process_run(
    in_process: tuple[dict, dict], tmp_path: Path, n: int
) -> None:
    data, reference = in_process
    scenario = _scenario(data, tmp_path, f"cmd{n}", lda="cmd", partitions=n)
    assert partitions(scenario) == ([["rural", "semiurban", "urban"]] if n == 1 else
                                    [["rural", "urban"], ["semiurban"]])  # fmt: skip
    _assert_same(_run(scenario, tmp_path / "out"), reference)


def test_served_partitions_reached_with_connect_equal_the_in_process_run(
    in_process: tuple[dict, dict], tmp_path: Path
) -> None:
    data, reference = in_process
    ports = [_free_port()]
    ports.append(next(p for p in range(ports[0] + 3, 65000) if all(_free(p + i) for i in range(3))))
    servers = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gridlayers.cli",
                "serve",
                "--port",
                str(port),
                "--runs",
                str(len(PARADIGMS)),
                "--timeout",
                "300",
            ]
        )  # fmt: skip
        for port in ports
    ]
    try:
        addresses = [f"127.0.0.1:{port}" for port in ports]
        scenario = _scenario(data, tmp_path, "connect", lda="connect", addresses=addresses)
        assert len(partitions(scenario)) == 2
        _assert_same(_run(scenario, tmp_path / "out"), reference)
        assert [s.wait(timeout=120) for s in servers] == [0, 0]  # served every paradigm
    finally:
        for s in servers:
            s.kill()


@pytest.mark.parametrize(
    ("simulators", "words"),
    [
        ({"lda": "connect"}, "needs 'addresses'"),
        ({"lda": "cmd", "addresses": ["127.0.0.1:5678"]}, "only used with lda 'connect'"),
        ({"lda": "connect", "addresses": ["localhost"]}, "is not 'host:port'"),
        ({"lda": "connect", "addresses": ["a:1", "b:1"], "partitions": 3}, "one address per"),
        ({"partitions": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_partition_settings_name_the_field(
    default_data: dict, tmp_path: Path, simulators: dict, words: str
) -> None:
    default_data["simulators"] = simulators
    with pytest.raises(ScenarioError, match="simulators") as info:
        load_scenario(write_scenario(tmp_path, default_data))
    assert words in str(info.value)


def test_a_process_serving_one_kind_keeps_only_the_profiles_it_reads(
    in_process: tuple[dict, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feeder, DSO and aggregator processes drop the others' year-long profiles; the main
    process of a partitioned run wires without keeping any LDA model."""
    from gridlayers.agents import lda_cache

    data, _ = in_process
    scenario = _scenario(data, tmp_path, "roles", lda="cmd", partitions=2)
    full = lda_cache.lda_model("full", scenario, "rural")
    for role, reads in lda_cache.ROLE_READS.items():
        monkeypatch.setattr(lda_cache, "PROCESS_ROLE", role)
        model = lda_cache.lda_model(f"role-{role}", scenario, "rural")
        assert {n for n in lda_cache.PROFILES if getattr(model, n) is not None} == reads
        for name in reads:
            kept, ref = getattr(model, name), getattr(full, name)
            assert type(kept) is type(ref)
            assert pickle.dumps(kept) == pickle.dumps(ref)
        lda_cache.release(f"role-{role}")
    monkeypatch.setattr(lda_cache, "PROCESS_ROLE", None)
    facts = lda_cache.wiring_facts("wire", scenario, "rural", in_process=False)
    assert facts.aggregators == tuple(full.aggregators)
    assert facts.has_der
    assert not [k for k in lda_cache._CACHE if k[0] == "wire"]  # noqa: SLF001
    lda_cache.release("full")
