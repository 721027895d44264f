"""On-disk start-up cache: pickled SimBench nets and LDA models (gridlayers.startup_cache)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from pydantic import BaseModel

from gridlayers import lda as lda_module
from gridlayers import startup_cache
from gridlayers.agents import lda_cache
from gridlayers.der.battery import Battery
from gridlayers.grid import networks
from gridlayers.lda import LDAModel, build_lda
from gridlayers.scenarios.schema import Scenario
from gridlayers.startup_cache import cached_lda, lda_cache_path, lda_key

CODE = "1-MV-rural--0-sw"  # the feeder of the default scenario's first LDA, "rural"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache root, seeded with the rural feeder's SimBench files if available.

    The SimBench files (JSON, year profiles, pickled net) only save the slow extraction
    and parsing; the LDA models start empty. The per-process parse memo of ``networks``
    is cleared, so nothing parsed from another cache root leaks in or out.
    """
    source = networks.cache_dir()
    names = [f"{CODE}.json", f"{CODE}.npz", "standard-PV3.npy"]
    names.append(networks.simbench_pickle_path(CODE).name)
    monkeypatch.setenv("GRIDLAYERS_CACHE", str(tmp_path))
    monkeypatch.delenv("GRIDLAYERS_LDA_CACHE", raising=False)
    target = networks.cache_dir()
    assert target != source
    for name in names:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    _forget_parsed()
    yield tmp_path
    _forget_parsed()


def _forget_parsed() -> None:
    """Empty the per-process memo of parsed SimBench nets (as in a new process)."""
    networks._simbench_net.cache_clear()
    networks._simbench_parsed.cache_clear()


def _scenario(data: dict, **changes: object) -> Scenario:
    return Scenario.model_validate({**copy.deepcopy(data), **changes})


@pytest.fixture
def rural(small_data: dict) -> Scenario:
    """The default scenario cut to its rural LDA and 4 intervals (fast to build)."""
    return _scenario(small_data, ldas=small_data["ldas"][:1])


def _forbid_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any call of build_lda fail, so a model can only come from the disk cache."""

    def fail(*_: object) -> LDAModel:
        raise AssertionError("build_lda called: expected a cache hit")

    monkeypatch.setattr(lda_module, "build_lda", fail)


def assert_same(a: object, b: object, where: str = "model", seen: set | None = None) -> None:
    """Assert ``a`` and ``b`` are equal all the way down (frames, arrays, objects)."""
    seen = set() if seen is None else seen
    if (id(a), id(b)) in seen:
        return
    seen.add((id(a), id(b)))
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, obj=where)
    elif isinstance(a, pd.Index):
        pd.testing.assert_index_equal(a, b, obj=where)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, BaseModel):
        assert a == b, where
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys differ"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]", seen)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]", seen)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}", seen)
    elif hasattr(a, "__dict__") and not isinstance(a, type) and not callable(a):
        assert_same(vars(a), vars(b), where, seen)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _assert_models_equal(a: LDAModel, b: LDAModel) -> None:
    """Explicit checks of the parts every simulator reads, then everything else."""
    assert set(a.net.keys()) == set(b.net.keys())
    for table in ("bus", "line", "trafo", "load", "sgen", "ext_grid"):
        pd.testing.assert_frame_equal(a.net[table], b.net[table], obj=f"net.{table}")
    for which in ("actual", "forecast"):
        for attr in ("load_p_mw", "load_q_mvar", "sgen_p_mw"):
            x, y = getattr(getattr(a, which), attr), getattr(getattr(b, which), attr)
            pd.testing.assert_frame_equal(x, y, obj=f"{which}.{attr}")
    assert a.pv_pu_forecast.keys() == b.pv_pu_forecast.keys()
    for name in a.pv_pu_forecast:
        np.testing.assert_array_equal(a.pv_pu_forecast[name], b.pv_pu_forecast[name])
    assert a.der_sgen == b.der_sgen
    assert list(a.aggregators) == list(b.aggregators)
    for name, agg in a.aggregators.items():
        other = b.aggregators[name]
        assert [d.device_id for d in agg.devices] == [d.device_id for d in other.devices]
        for x, y in zip(agg.devices, other.devices, strict=True):
            assert type(x) is type(y)
            assert (x.bus, x.params, x.strategy) == (y.bus, y.params, y.strategy)
    assert_same(a, b)


# ---------------------------------------------------------------- SimBench networks


def test_simbench_net_is_pickled_and_reloaded(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pickled = networks.simbench_pickle_path(CODE)
    pickled.unlink(missing_ok=True)
    net, profiles = networks.simbench_feeder(CODE)  # parsed from JSON, then pickled
    assert pickled.is_file()
    assert pickled.parent == cache / pickled.parent.name
    assert pp.__version__ in pickled.name
    from_json = pp.from_json_string((pickled.parent / f"{CODE}.json").read_text("utf-8"))

    _forget_parsed()  # as in a new process
    monkeypatch.setattr(pp, "from_json_string", _no_json)
    again, profiles_again = networks.simbench_feeder(CODE)
    assert pp.toolbox.nets_equal(again, from_json, check_only_results=False)
    assert_same(again, net, "net")
    for key, frame in profiles.items():
        pd.testing.assert_frame_equal(profiles_again[key], frame)

    # every call is a fresh copy
    other, _ = networks.simbench_feeder(CODE)
    again.load.loc[again.load.index[0], "p_mw"] = 123.0
    assert other.load.p_mw.iloc[0] != 123.0


def _no_json(*_: object) -> None:
    raise AssertionError("parsed the JSON: expected the pickle")


def test_corrupt_simbench_pickle_is_rebuilt(cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    reference, _ = networks.simbench_feeder(CODE)
    pickled = networks.simbench_pickle_path(CODE)
    pickled.write_bytes(pickled.read_bytes()[:1000])  # a truncated file
    _forget_parsed()
    with caplog.at_level(logging.WARNING):
        net, _ = networks.simbench_feeder(CODE)
    assert "ignoring unreadable cache file" in caplog.text
    assert str(pickled) in caplog.text
    assert pp.toolbox.nets_equal(net, reference, check_only_results=False)
    assert isinstance(pickle.loads(pickled.read_bytes()), pp.pandapowerNet)  # rewritten


# ---------------------------------------------------------------- LDA models


def test_cached_model_equals_fresh_build(
    cache: Path, rural: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = cached_lda(rural, "rural")  # miss: built and stored
    path = lda_cache_path(rural, "rural")
    assert path.is_file()
    assert path.parent == cache / "lda-models"
    with monkeypatch.context() as m:
        _forbid_build(m)
        loaded = cached_lda(rural, "rural")  # hit: unpickled
    fresh = build_lda(rural, "rural")
    assert len(fresh.devices) > 50
    assert {d.kind for d in fresh.devices} == {"pv", "battery", "flexible_load", "ev_fleet"}
    _assert_models_equal(loaded, fresh)
    _assert_models_equal(built, fresh)


def test_model_nets_carry_no_simbench_year_tables(cache: Path, rural: Scenario) -> None:
    """SimBench's relative year tables (~12 MB per net) are unused: not in models or files."""
    built = cached_lda(rural, "rural")
    raw, _ = networks.simbench_feeder(CODE)
    assert len(pickle.dumps(raw["profiles"])) / 1e6 > 5.0
    assert "profiles" not in built.net
    assert lda_cache_path(rural, "rural").stat().st_size / 1e6 < 5.0


def test_loads_are_independent_initial_states(
    cache: Path, rural: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = cached_lda(rural, "rural")
    battery = next(d for d in built.devices if isinstance(d, Battery))
    initial = battery.state.energy_mwh
    # the caller runs the model: state changes after the model was stored
    battery.state = dataclasses.replace(battery.state, energy_mwh=initial * 0.5)
    built.net.sgen.loc[built.net.sgen.index[-1], "p_mw"] = 7.0

    _forbid_build(monkeypatch)
    a, b = cached_lda(rural, "rural"), cached_lda(rural, "rural")
    assert a is not b
    assert a.net is not b.net
    assert not {id(d) for d in a.devices} & {id(d) for d in b.devices}
    bat_a = next(d for d in a.devices if d.device_id == battery.device_id)
    bat_b = next(d for d in b.devices if d.device_id == battery.device_id)
    assert bat_a.state.energy_mwh == bat_b.state.energy_mwh == initial  # initial state
    assert a.net.sgen.p_mw.iloc[-1] == 0.0

    bat_a.state = dataclasses.replace(bat_a.state, energy_mwh=initial * 0.25)
    a.net.sgen.loc[a.net.sgen.index[-1], "p_mw"] = 3.0
    a.actual.load_p_mw.iloc[0, 0] = -1.0
    assert bat_b.state.energy_mwh == initial
    assert b.net.sgen.p_mw.iloc[-1] == 0.0
    assert b.actual.load_p_mw.iloc[0, 0] != -1.0


def test_key_covers_every_lda_input(default_data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _scenario(default_data)
    key = lda_key(base, "semiurban")
    assert key == lda_key(_scenario(default_data), "semiurban")  # deterministic
    assert key != lda_key(base, "rural")

    def changed(**changes: object) -> str:
        return lda_key(_scenario(default_data, **changes), "semiurban")

    ldas = default_data["ldas"]

    def with_lda(i: int, **fields: object) -> list[dict]:
        out = copy.deepcopy(ldas)
        out[i] = {**out[i], **fields}
        return out

    more_pv = copy.deepcopy(ldas[1]["der"])
    more_pv["penetration"][0]["share_of_load_buses"] = 0.5
    differs = {
        "seed": changed(seed=7),
        "DER count": changed(ldas=with_lda(1, der=more_pv)),
        "feeder": changed(ldas=with_lda(1, feeder={"simbench": CODE})),
        "feeder scaling": changed(
            ldas=with_lda(1, feeder={**ldas[1]["feeder"], "load_scaling": 2})
        ),
        "limits": changed(ldas=with_lda(1, limits={"vm_min_pu": 0.92})),
        "position": changed(ldas=[ldas[1], ldas[0], ldas[2]]),
        "horizon": changed(horizon={**default_data["horizon"], "intervals": 95}),
        "forecast": changed(forecast={**default_data["forecast"], "load_error_std": 0.031}),
    }
    for what, other in differs.items():
        assert other != key, f"{what} does not change the key"
    assert len(set(differs.values())) == len(differs)

    same = {
        "name": changed(name="other", description="other"),
        "paradigms": changed(paradigms=["passive"]),
        "output": changed(output={"bus_voltages": False}),
        "simulators": changed(simulators={"feeder": "cmd", "market": "cmd"}),
        "transmission": changed(transmission={**default_data["transmission"], "load_scaling": 1}),
        "another LDA": changed(ldas=with_lda(0, der=more_pv)),
    }
    for what, other in same.items():
        assert other == key, f"{what} changes the key"

    monkeypatch.setattr(startup_cache, "code_fingerprint", lambda: "edited source")
    assert lda_key(base, "semiurban") != key
    monkeypatch.undo()
    monkeypatch.setattr(pp, "__version__", "0.0.0")
    assert lda_key(base, "semiurban") != key


def test_key_covers_a_json_feeder_file(default_data: dict, tmp_path: Path) -> None:
    feeder = tmp_path / "feeder.json"
    data = copy.deepcopy(default_data)
    data["ldas"][0]["feeder"] = {"json": str(feeder)}
    feeder.write_text('{"a": 1}')
    key = lda_key(_scenario(data), "rural")
    feeder.write_text('{"a": 2}')
    assert lda_key(_scenario(data), "rural") != key


def test_changed_input_misses_the_cache(cache: Path, rural: Scenario) -> None:
    first = cached_lda(rural, "rural")
    other = rural.model_copy(update={"seed": rural.seed + 1})
    second = cached_lda(other, "rural")  # a miss: built from the new seed
    _assert_models_equal(second, build_lda(other, "rural"))
    with pytest.raises(AssertionError):  # (so the comparison is not vacuous)
        _assert_models_equal(second, first)
    assert len(list((cache / "lda-models").glob("rural-*.pkl"))) == 2


def test_code_change_misses_the_cache(
    cache: Path, rural: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached_lda(rural, "rural")
    calls = []
    monkeypatch.setattr(startup_cache, "code_fingerprint", lambda: "edited source")
    original = lda_module.build_lda
    monkeypatch.setattr(lda_module, "build_lda", lambda *a: calls.append(a) or original(*a))
    cached_lda(rural, "rural")
    assert len(calls) == 1


def _with_key(path: Path, key: str) -> bytes:
    """Return the bytes of a model file like ``path`` but stored under another key."""
    payload = startup_cache.read_model_file(path)
    return pickle.dumps({**payload, "key": key})


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong object", "other key"])
def test_corrupt_model_file_is_rebuilt(
    cache: Path, rural: Scenario, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    cached_lda(rural, "rural")
    path = lda_cache_path(rural, "rural")
    good = path.read_bytes()
    bad = {
        "garbage": b"not a pickle",
        "truncated": good[: len(good) // 2],
        "wrong object": pickle.dumps({"key": "x", "model": "not a model"}),
        "other key": _with_key(path, "another key"),
    }[damage]
    path.write_bytes(bad)
    with caplog.at_level(logging.WARNING, logger="gridlayers.startup_cache"):
        model = cached_lda(rural, "rural")
    assert "ignoring" in caplog.text
    assert str(path) in caplog.text
    _assert_models_equal(model, build_lda(rural, "rural"))
    payload = startup_cache.read_model_file(path)  # overwritten with a good file
    assert payload["key"] == lda_key(rural, "rural")
    assert isinstance(payload["model"], LDAModel)


@pytest.mark.parametrize("value", ["off", "FALSE"])
def test_cache_can_be_turned_off(
    cache: Path, rural: Scenario, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GRIDLAYERS_LDA_CACHE", value)
    model = cached_lda(rural, "rural")
    assert not (cache / "lda-models").exists()
    assert len(model.devices) > 0


def test_lda_model_memoises_per_run_then_uses_disk(
    cache: Path, rural: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        a = lda_cache.lda_model("run-a", rural, "rural")
        assert lda_cache.lda_model("run-a", rural, "rural") is a
        _forbid_build(monkeypatch)
        # another run (another process gets the scenario as JSON data): same key, from disk
        data = rural.model_dump(mode="json", by_alias=True)
        b = lda_cache.lda_model("run-b", data, "rural")
        assert b is not a
        _assert_models_equal(b, a)
    finally:
        lda_cache.release("run-a")
        lda_cache.release("run-b")


def test_atomic_write_leaves_old_file_or_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sub" / "file.bin"
    startup_cache.atomic_write(path, b"old")
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        startup_cache.atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]  # no temp file left
    startup_cache.write_pickle(path, {"x": 1})  # logged, not raised
    assert path.read_bytes() == b"old"


def test_unused_model_files_are_pruned(
    cache: Path, rural: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = cache / "lda-models"
    folder.mkdir()
    old_age = (startup_cache.MAX_UNUSED_DAYS + 1) * 86400.0
    now = time.time()
    files = {
        "old.pkl": old_age,
        "recent.pkl": old_age / 2,
        ".stale.pkl.abc.tmp": 2 * 86400.0,
        ".fresh.pkl.abc.tmp": 0.0,
    }
    for name, age in files.items():
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (now - age, now - age))
    monkeypatch.setattr(startup_cache, "_PRUNED", set())
    cached_lda(rural, "rural")  # a miss: stores a model, then prunes
    path = lda_cache_path(rural, "rural")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".fresh.pkl.abc.tmp", "recent.pkl", path.name]
    )
    os.utime(path, (now - old_age, now - old_age))
    cached_lda(rural, "rural")  # a hit marks the file as used
    assert path.stat().st_mtime > now - 60
