"""Forecasts: decisions use forecasts, the physics layer uses actuals.

A forecast is the actual value times ``1 + e`` with ``e ~ N(0, std)`` drawn
independently per element and interval, with one standard deviation per profile
type (load, PV, wind) from the scenario. Draws come from
``numpy.random.default_rng([seed, lda_index, stream])``, so a scenario's forecasts
are identical under every paradigm and reproducible from its seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridlayers.grid.profiles import FeederProfiles

#: Independent random streams per profile type.
STREAMS = {"load": 1, "sgen": 2, "pv_device": 3}


def _noisy(frame: pd.DataFrame, std: np.ndarray | float, rng: np.random.Generator) -> pd.DataFrame:
    factor = 1.0 + rng.standard_normal(frame.shape) * std
    return frame * factor


def sgen_error_std(net_sgen: pd.DataFrame, pv_std: float, wind_std: float) -> np.ndarray:
    """Return the forecast error std. dev. per static generator (-): wind or PV-like.

    A generator counts as wind if its ``type`` mentions wind or its SimBench ``profile``
    starts with ``WP``; every other generator (PV, mixed LV renewables) uses the PV error.
    """
    kind = net_sgen.get("type", pd.Series("", index=net_sgen.index)).fillna("").astype(str)
    prof = net_sgen.get("profile", pd.Series("", index=net_sgen.index)).fillna("").astype(str)
    wind = kind.str.lower().str.contains("wind") | prof.str.startswith("WP")
    return np.where(wind.to_numpy(), wind_std, pv_std)


def forecast_profiles(
    actual: FeederProfiles,
    sgen_std: np.ndarray,
    load_std: float,
    seed: int,
    lda_index: int,
) -> FeederProfiles:
    """Return forecasts of a feeder's profiles.

    Parameters
    ----------
    actual : FeederProfiles
        Actual load (MW, Mvar) and generation (MW) per interval.
    sgen_std : ndarray
        Relative error std. dev. per static generator (-).
    load_std : float
        Relative error std. dev. of every load (-); P and Q share the draw.
    seed, lda_index : int
        Scenario seed and the LDA's position in the scenario.

    Returns
    -------
    FeederProfiles
        Forecast values; generation is clipped at 0 MW.

    """
    rng_load = np.random.default_rng([seed, lda_index, STREAMS["load"]])
    factor = 1.0 + rng_load.standard_normal(actual.load_p_mw.shape) * load_std
    rng_sgen = np.random.default_rng([seed, lda_index, STREAMS["sgen"]])
    sgen = _noisy(actual.sgen_p_mw, sgen_std[None, :], rng_sgen).clip(lower=0.0)
    return FeederProfiles(
        load_p_mw=actual.load_p_mw * factor,
        load_q_mvar=actual.load_q_mvar * factor,
        sgen_p_mw=sgen,
    )


def forecast_pu(
    actual_pu: np.ndarray, std: float, seed: int, lda_index: int, key: int
) -> np.ndarray:
    """Return a forecast of a per-unit availability series, clipped to [0, 1] (-)."""
    rng = np.random.default_rng([seed, lda_index, STREAMS["pv_device"], key])
    return np.clip(actual_pu * (1.0 + rng.standard_normal(actual_pu.shape) * std), 0.0, 1.0)


#: Stream of the transmission (bulk) load forecast; LDA streams use the LDA's index.
BULK_STREAM = 4
#: Position of the bulk load in the ``[seed, position, stream]`` seed sequence (no LDA uses it).
BULK_POSITION = 1_000_000


def bulk_load_forecast(actual_mw: np.ndarray, std: float, seed: int) -> np.ndarray:
    """Return the forward-stage forecast of every transmission load (MW).

    Parameters
    ----------
    actual_mw : ndarray, shape (intervals, n_loads)
        Actual withdrawal per ``net.load`` row and interval (MW, load positive).
    std : float
        Relative error std. dev. per load and interval (-).
    seed : int
        Scenario seed; draws come from ``default_rng([seed, BULK_POSITION, BULK_STREAM])``.

    Returns
    -------
    ndarray
        ``actual * (1 + e)``, same shape (MW); exactly ``actual`` when ``std`` is 0.

    """
    if std == 0.0:
        return np.array(actual_mw, dtype=float)
    rng = np.random.default_rng([seed, BULK_POSITION, BULK_STREAM])
    return actual_mw * (1.0 + rng.standard_normal(np.shape(actual_mw)) * std)
