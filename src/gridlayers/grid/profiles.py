"""Time series for one run: year profiles cut to the horizon and resampled to its interval.

Profiles are 15-minute year series (SimBench, profile year 2016). A horizon starting
at a given day of year and time of day reads the profile at the same position in the
profile year (wrapping at the year's end). Intervals longer than 15 minutes average
the quarter-hours they contain; shorter intervals hold the quarter-hour value.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd

from gridlayers.grid.networks import cache_dir, simbench_feeder
from gridlayers.scenarios.schema import PROFILE_RESOLUTION_MIN, FeederConfig, HorizonConfig

#: Tables of SimBench standard profiles: load profiles have "<name>_pload"/"<name>_qload".
_STANDARD_TABLES = ("load", "renewables")


def window(year: np.ndarray, horizon: HorizonConfig) -> np.ndarray:
    """Cut a 15-minute year series to the horizon and resample it to the interval.

    Parameters
    ----------
    year : ndarray, shape (T,) or (T, n)
        15-minute values over the profile year (any unit).
    horizon : HorizonConfig
        Start, number of intervals and interval length (minutes).

    Returns
    -------
    ndarray, shape (intervals,) or (intervals, n)
        One row per interval, in the unit of ``year``.

    """
    start = horizon.start
    offset = int((start - dt.datetime(start.year, 1, 1)).total_seconds() // 60)
    offset //= PROFILE_RESOLUTION_MIN
    span_min = horizon.intervals * horizon.interval_min
    steps = math.ceil(span_min / PROFILE_RESOLUTION_MIN)
    rows = year[(offset + np.arange(steps)) % year.shape[0]]
    if horizon.interval_min >= PROFILE_RESOLUTION_MIN:
        k = horizon.interval_min // PROFILE_RESOLUTION_MIN
        return rows.reshape(horizon.intervals, k, *rows.shape[1:]).mean(axis=1)
    repeat = PROFILE_RESOLUTION_MIN // horizon.interval_min
    return np.repeat(rows, repeat, axis=0)[: horizon.intervals]


@functools.cache
def standard_profile_names() -> frozenset[str]:
    """Return the names of all SimBench standard profiles (load and generation)."""
    names: set[str] = set()
    for table, frame in _all_standard_profiles().items():
        cols = [c for c in frame.columns if c != "time"]
        if table == "load":
            cols = [c.rsplit("_", 1)[0] for c in cols if c.endswith(("_pload", "_qload"))]
        names.update(cols)
    return frozenset(names)


@functools.cache
def _all_standard_profiles() -> dict[str, pd.DataFrame]:
    import simbench as sb

    profiles = sb.get_all_simbench_profiles(0)
    return {t: profiles[t] for t in _STANDARD_TABLES}


def standard_profile(column: str) -> np.ndarray:
    """Return one relative SimBench standard profile column over the profile year.

    Parameters
    ----------
    column : str
        E.g. ``"hv_mixed1_pload"`` (load, active), ``"mv_rural_qload"`` or ``"PV3"``.

    Returns
    -------
    ndarray, shape (35136,)
        Relative values (multiply by the element's rated p_mw or q_mvar).

    """
    path = cache_dir() / f"standard-{column}.npy"
    if path.is_file():
        return np.load(path)
    for frame in _all_standard_profiles().values():
        if column in frame.columns:
            values = frame[column].to_numpy(float)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, values)
            tmp.replace(path)
            return values
    msg = f"no SimBench standard profile column {column!r}"
    raise KeyError(msg)


def load_scale(profile: str, horizon: HorizonConfig) -> np.ndarray:
    """Return a per-interval load multiplier normalised to the profile's annual peak.

    Parameters
    ----------
    profile : str
        SimBench standard load profile name (e.g. ``"hv_mixed1"``), ``"flat"``, or
        ``"isone8_day<d>"``: the ISO-NE system net load (load minus existing wind and
        solar) of day ``d`` of the planner data, hour by hour, over the data's peak-hour
        load, repeated every day of the horizon
        (:func:`gridlayers.grid.isone_net.planner_day_profile`).
    horizon : HorizonConfig
        The run's horizon.

    Returns
    -------
    ndarray, shape (intervals,)
        Multipliers in [0, 1] (-); ``flat`` gives ones.

    """
    if profile == "flat":
        return np.ones(horizon.intervals)
    from gridlayers.grid.isone_net import planner_day_quarter_hours, planner_profile_day

    day = planner_profile_day(profile)
    if day is not None:  # one day of quarter-hours: window() wraps it every day
        return window(planner_day_quarter_hours(day), horizon)
    year = standard_profile(f"{profile}_pload")
    return window(year / np.max(np.abs(year)), horizon)


@dataclass(frozen=True)
class FeederProfiles:
    """Actual load and generation of one feeder over the horizon (pandapower convention).

    Attributes
    ----------
    load_p_mw, load_q_mvar : DataFrame
        One row per interval, columns indexed like ``net.load`` (load positive, MW / Mvar).
    sgen_p_mw : DataFrame
        One row per interval, columns indexed like ``net.sgen`` (generation positive, MW).

    """

    load_p_mw: pd.DataFrame
    load_q_mvar: pd.DataFrame
    sgen_p_mw: pd.DataFrame


def feeder_profiles(
    net: pp.pandapowerNet, config: FeederConfig, horizon: HorizonConfig
) -> FeederProfiles:
    """Return the feeder's actual profiles over the horizon, with the scenario's scaling.

    SimBench feeders use their own element profiles. Other feeders get the scenario's
    standard load profile on every load and its standard generation profile on every
    static generator, times each element's rated ``p_mw``/``q_mvar``.
    """
    if config.simbench:
        _, year = simbench_feeder(config.simbench)
        load_p = year[("load", "p_mw")].to_numpy()
        load_q = year[("load", "q_mvar")].to_numpy()
        sgen_p = year[("sgen", "p_mw")].to_numpy()
    else:
        rel_p = standard_profile(f"{config.load_profile}_pload")[:, None]
        rel_q = standard_profile(f"{config.load_profile}_qload")[:, None]
        rel_g = standard_profile(config.sgen_profile)[:, None]
        load_p = rel_p * net.load.p_mw.to_numpy()[None, :]
        load_q = rel_q * net.load.q_mvar.to_numpy()[None, :]
        sgen_p = rel_g * net.sgen.p_mw.to_numpy()[None, :]
    index = pd.RangeIndex(horizon.intervals, name="interval")

    def frame(values: np.ndarray, columns: pd.Index, scale: float) -> pd.DataFrame:
        return pd.DataFrame(window(values, horizon) * scale, index=index, columns=columns)

    return FeederProfiles(
        load_p_mw=frame(load_p, net.load.index, config.load_scaling),
        load_q_mvar=frame(load_q, net.load.index, config.load_scaling),
        sgen_p_mw=frame(sgen_p, net.sgen.index, config.sgen_scaling),
    )
