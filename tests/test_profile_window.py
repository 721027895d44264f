"""Long profile tables on disk, read in windows (gridlayers.profile_window)."""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_scenario
from gridlayers.lda import build_lda
from gridlayers.profile_window import (
    MIN_EXTERNAL_ROWS,
    WINDOW_ROWS,
    WindowedFrame,
    _windowed,
)
from gridlayers.scenarios import load_scenario
from gridlayers.startup_cache import cached_lda, lda_cache_path, profiles_folder
from test_startup_cache import cache  # noqa: F401 - fixture: an empty cache root

TABLES = [("actual", "load_p_mw"), ("actual", "load_q_mvar"), ("actual", "sgen_p_mw")]
TABLES += [("forecast", t) for _, t in TABLES[:3]]
TABLES += [(None, "bus_load_actual_mw"), (None, "bus_load_forecast_mw")]


def _table(model: object, which: str | None, name: str) -> object:
    return getattr(model if which is None else getattr(model, which), name)


def test_rows_equal_the_in_memory_table_across_windows(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    index = pd.date_range("2016-01-01", periods=MIN_EXTERNAL_ROWS + 500, freq="15min")
    frame = pd.DataFrame(rng.normal(size=(len(index), 5)), index=index, columns=[3, 1, 4, 5, 9])
    windowed = _windowed(frame, tmp_path / "t.npy")
    assert isinstance(windowed, WindowedFrame)
    assert windowed.shape == frame.shape
    assert len(windowed) == len(frame)
    for k in (0, 1, WINDOW_ROWS - 1, WINDOW_ROWS, 17, len(frame) - 1, -1, 2 * WINDOW_ROWS + 3):
        pd.testing.assert_series_equal(windowed.iloc[k], frame.iloc[k], check_exact=True)
    assert len(windowed._rows) <= WINDOW_ROWS  # noqa: SLF001 - one window held, not the table
    row = windowed.iloc[5]
    row[:] = 0.0  # a copy: the table is unchanged
    pd.testing.assert_series_equal(windowed.iloc[5], frame.iloc[5], check_exact=True)
    with pytest.raises(IndexError, match="outside"):
        windowed.iloc[len(frame)]
    with pytest.raises(TypeError, match="one row at a time"):
        windowed.iloc[2:5]
    clone = pickle.loads(pickle.dumps(windowed))  # noqa: S301 - our own object
    assert len(clone._rows) == 0  # noqa: SLF001 - the window is not pickled
    pd.testing.assert_series_equal(clone.iloc[-2], frame.iloc[-2], check_exact=True)


def test_short_tables_stay_in_memory(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.ones((MIN_EXTERNAL_ROWS, 2)))
    assert _windowed(frame, tmp_path / "t.npy") is frame
    assert not (tmp_path / "t.npy").exists()


@pytest.fixture
def long_rural(tmp_path: Path, default_data: dict) -> object:
    """The default scenario's rural LDA over 62.5 days (6,000 quarter-hours) of winter."""
    data = {**default_data, "ldas": default_data["ldas"][:1]}
    data["horizon"] = {"start": "2016-01-01 00:00", "intervals": 6000, "interval_min": 15}
    return load_scenario(write_scenario(tmp_path, data, "long.yaml"))


def test_long_horizon_models_read_the_same_values_in_windows(
    cache: Path,  # noqa: F811 - the fixture imported above
    long_rural: object,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    built = cached_lda(long_rural, "rural")  # miss: built, tables written, model stored
    loaded = cached_lda(long_rural, "rural")  # hit
    monkeypatch.setenv("GRIDLAYERS_LDA_CACHE", "off")
    fresh = build_lda(long_rural, "rural")  # in memory
    folder = profiles_folder(lda_cache_path(long_rural, "rural"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{w}.{n}.npy" if w else f"{n}.npy" for w, n in TABLES
    )
    rows = [0, WINDOW_ROWS - 1, WINDOW_ROWS, 4000, 5999]
    for which, name in TABLES:
        table = _table(fresh, which, name)
        assert isinstance(table, pd.DataFrame)
        for model in (built, loaded):
            windowed = _table(model, which, name)
            assert isinstance(windowed, WindowedFrame), name
            pd.testing.assert_index_equal(windowed.columns, table.columns)
            for k in rows:
                pd.testing.assert_series_equal(windowed.iloc[k], table.iloc[k], check_exact=True)
    for k in rows:  # what the simulators read, interval by interval
        for which in ("forecast", "actual"):
            for got, want in zip(
                loaded.fixed_injections(k, which), fresh.fixed_injections(k, which), strict=True
            ):
                pd.testing.assert_series_equal(got, want, check_exact=True)
            assert loaded.conditions(k, which) == fresh.conditions(k, which)
        np.testing.assert_array_equal(loaded.sgen_p_mw(k, {}), fresh.sgen_p_mw(k, {}))
    monkeypatch.delenv("GRIDLAYERS_LDA_CACHE")

    moved = cache.parent / "moved-cache"  # a moved cache folder still serves its models
    shutil.copytree(cache, moved)
    monkeypatch.setenv("GRIDLAYERS_CACHE", str(moved))
    relocated = cached_lda(long_rural, "rural")
    assert relocated.actual.load_p_mw.path.parent == profiles_folder(
        lda_cache_path(long_rural, "rural")
    )
    pd.testing.assert_series_equal(
        relocated.actual.load_p_mw.iloc[4000], fresh.actual.load_p_mw.iloc[4000], check_exact=True
    )
    missing = profiles_folder(lda_cache_path(long_rural, "rural")) / "actual.load_p_mw.npy"
    missing.unlink()  # a lost table: the model is rebuilt, not served half
    with caplog.at_level(logging.WARNING, logger="gridlayers.startup_cache"):
        rebuilt = cached_lda(long_rural, "rural")
    assert "profile files are missing" in caplog.text
    assert missing.is_file()
    pd.testing.assert_series_equal(
        rebuilt.actual.load_p_mw.iloc[10], fresh.actual.load_p_mw.iloc[10], check_exact=True
    )
