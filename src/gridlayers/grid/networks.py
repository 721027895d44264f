"""Loading transmission and feeder networks from their scenario sources.

SimBench networks take several seconds to extract from the SimBench CSV data, so
each code is cached once as pandapower JSON plus its absolute year profiles
(``$GRIDLAYERS_CACHE`` or ``~/.cache/gridlayers``), keyed by the simbench version.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd

from gridlayers.grid.calibration import calibrate_transmission

#: Element tables whose SimBench year profiles gridlayers uses: (table, column).
PROFILE_KEYS: tuple[tuple[str, str], ...] = (
    ("load", "p_mw"),
    ("load", "q_mvar"),
    ("sgen", "p_mw"),
)


def cache_dir() -> Path:
    """Return the folder for cached SimBench extracts (created on demand)."""
    root = Path(os.environ.get("GRIDLAYERS_CACHE", Path.home() / ".cache" / "gridlayers"))
    import simbench

    path = root / f"simbench-{simbench.__version__}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def simbench_codes() -> frozenset[str]:
    """Return every valid SimBench code (fast; does not load any network)."""
    import simbench as sb

    return frozenset(sb.collect_all_simbench_codes())


@functools.cache
def _simbench_cached(code: str) -> tuple[str, dict[tuple[str, str], np.ndarray]]:
    folder = cache_dir()
    net_file = folder / f"{code}.json"
    prof_file = folder / f"{code}.npz"
    if not (net_file.is_file() and prof_file.is_file()):
        import simbench as sb

        net = sb.get_simbench_net(code)
        absolute = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
        arrays = {f"{t}.{c}": absolute[(t, c)].to_numpy(float) for t, c in PROFILE_KEYS}
        tmp = prof_file.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(prof_file)
        pp.to_json(net, str(net_file.with_suffix(".tmp")))
        net_file.with_suffix(".tmp").replace(net_file)
    with np.load(prof_file) as data:
        arrays = {(t, c): data[f"{t}.{c}"] for t, c in PROFILE_KEYS}
    return net_file.read_text(encoding="utf-8"), arrays


@functools.cache
def _simbench_parsed(code: str) -> tuple[pp.pandapowerNet, dict[tuple[str, str], pd.DataFrame]]:
    text, arrays = _simbench_cached(code)
    net = pp.from_json_string(text)
    profiles = {(t, c): pd.DataFrame(arr, columns=net[t].index) for (t, c), arr in arrays.items()}
    return net, profiles


def simbench_feeder(code: str) -> tuple[pp.pandapowerNet, dict[tuple[str, str], pd.DataFrame]]:
    """Return a SimBench network and its absolute year profiles.

    Parameters
    ----------
    code : str
        SimBench code, e.g. ``"1-MV-rural--0-sw"``.

    Returns
    -------
    net : pandapowerNet
        A fresh copy of the network (safe to modify).
    profiles : dict
        ``{("load", "p_mw"): DataFrame, ("load", "q_mvar"): ..., ("sgen", "p_mw"): ...}``, one
        row per 15 minutes of the profile year (MW / Mvar, pandapower's load-positive
        convention), columns indexed like the element table. Shared between callers:
        read them, do not modify them.

    Notes
    -----
    Parsing a SimBench net takes seconds, so each code is parsed once per process
    (from the on-disk cache) and every call returns a deep copy of it.

    """
    net, profiles = _simbench_parsed(code)
    return copy.deepcopy(net), profiles


@functools.cache
def _pandapower_case(name: str) -> pp.pandapowerNet:
    factory = getattr(pn, name, None)
    if not callable(factory):
        msg = f"pandapower.networks has no network function {name!r}"
        raise ValueError(msg)
    return factory()


def pandapower_network(name: str) -> pp.pandapowerNet:
    """Return a fresh copy of ``pandapower.networks.<name>()``.

    Raises
    ------
    ValueError
        If pandapower.networks has no such function.

    """
    return copy.deepcopy(_pandapower_case(name))


def json_network(path: Path) -> pp.pandapowerNet:
    """Read a pandapower JSON network file.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file (pandapower would try to parse the path as JSON text).

    """
    if not Path(path).is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    return pp.from_json(str(path))


def transmission_network(config: Any) -> pp.pandapowerNet:
    """Return the transmission net of a TransmissionConfig, prepared for market clearing.

    With ``min_generation: dispatchable`` the minimum output of every generator
    (``gen``, ``sgen``, ``ext_grid``) is set to 0 MW, because the DC-OPF has no unit
    commitment and must-run minimums make low-load intervals infeasible. Then the
    calibration options of the config (load scaling, generator availability and
    marginal costs, meshed-branch ratings) are applied to the net by
    :func:`gridlayers.grid.calibration.calibrate_transmission`.
    """
    net = network_from_source(config)
    if config.min_generation == "dispatchable":
        for table in ("gen", "sgen", "ext_grid"):
            if "min_p_mw" in net[table]:
                net[table]["min_p_mw"] = np.minimum(net[table]["min_p_mw"].fillna(0.0), 0.0)
    return calibrate_transmission(net, config)


def network_from_source(source: Any) -> pp.pandapowerNet:
    """Return the network named by a Transmission- or FeederConfig (without profiles)."""
    if getattr(source, "simbench", None):
        return simbench_feeder(source.simbench)[0]
    if getattr(source, "json_path", None) is not None:
        return json_network(source.json_path)
    name = getattr(source, "case", None) or source.pandapower
    return pandapower_network(name)
