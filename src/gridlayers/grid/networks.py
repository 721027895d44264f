"""Loading transmission and feeder networks from their scenario sources.

SimBench networks take several seconds to extract from the SimBench CSV data, so
each code is cached once as pandapower JSON plus its absolute year profiles
(``$GRIDLAYERS_CACHE`` or ``~/.cache/gridlayers``), keyed by the simbench version.
Parsing that JSON takes about a second per network, so the parsed net is also
pickled next to it, keyed by the pandapower, pandas, numpy and Python versions
(:mod:`gridlayers.startup_cache`); later processes load it in milliseconds. Networks of
``pandapower.networks`` (parsed from pandapower's own JSON files) are pickled the same
way under ``pandapower/``.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd

from gridlayers.grid.calibration import calibrate_transmission
from gridlayers.startup_cache import (
    atomic_write,
    cache_root,
    read_pickle,
    versions_tag,
    write_pickle,
)

log = logging.getLogger(__name__)

#: Element tables whose SimBench year profiles gridlayers uses: (table, column).
PROFILE_KEYS: tuple[tuple[str, str], ...] = (
    ("load", "p_mw"),
    ("load", "q_mvar"),
    ("sgen", "p_mw"),
)


def cache_dir() -> Path:
    """Return the folder for cached SimBench extracts (created on demand)."""
    import simbench

    path = cache_root() / f"simbench-{simbench.__version__}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def simbench_codes() -> frozenset[str]:
    """Return every valid SimBench code (fast; does not load any network)."""
    import simbench as sb

    return frozenset(sb.collect_all_simbench_codes())


def _simbench_extracted(code: str) -> tuple[Path, Path]:
    """Return the JSON net and npz profile files of ``code``, extracting them if missing."""
    folder = cache_dir()
    net_file = folder / f"{code}.json"
    prof_file = folder / f"{code}.npz"
    if not (net_file.is_file() and prof_file.is_file()):
        import simbench as sb

        net = sb.get_simbench_net(code)
        absolute = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
        arrays = {f"{t}.{c}": absolute[(t, c)].to_numpy(float) for t, c in PROFILE_KEYS}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(prof_file, buffer.getvalue())
        atomic_write(net_file, pp.to_json(net).encode("utf-8"))
    return net_file, prof_file


def simbench_pickle_path(code: str) -> Path:
    """Return the file of the pickled, parsed SimBench net ``code`` (it may not exist)."""
    return cache_dir() / f"{code}.{versions_tag()}.pkl"


@functools.cache
def _simbench_net(code: str) -> pp.pandapowerNet:
    net_file, _ = _simbench_extracted(code)
    pickled = simbench_pickle_path(code)
    net = read_pickle(pickled)
    if not isinstance(net, pp.pandapowerNet):
        if net is not None:
            log.warning("ignoring cache file %s: not a pandapower net", pickled)
        net = pp.from_json_string(net_file.read_text(encoding="utf-8"))
        write_pickle(pickled, net)
    return net


@functools.cache
def _simbench_parsed(code: str) -> tuple[pp.pandapowerNet, dict[tuple[str, str], pd.DataFrame]]:
    net = _simbench_net(code)
    _, prof_file = _simbench_extracted(code)
    with np.load(prof_file) as data:
        arrays = {(t, c): data[f"{t}.{c}"] for t, c in PROFILE_KEYS}
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
    Parsing a SimBench net takes about a second, so each code is parsed once (then
    loaded from its pickle in the on-disk cache), read once per process, and every
    call returns a deep copy of it.

    """
    net, profiles = _simbench_parsed(code)
    return copy.deepcopy(net), profiles


def pandapower_pickle_path(name: str) -> Path:
    """Return the file of the pickled ``pandapower.networks.<name>()`` (it may not exist)."""
    return cache_root() / "pandapower" / f"{name}.{versions_tag()}.pkl"


@functools.cache
def _pandapower_case(name: str) -> pp.pandapowerNet:
    factory = getattr(pn, name, None)
    if not callable(factory):
        msg = f"pandapower.networks has no network function {name!r}"
        raise ValueError(msg)
    pickled = pandapower_pickle_path(name)
    net = read_pickle(pickled)
    if not isinstance(net, pp.pandapowerNet):
        if net is not None:
            log.warning("ignoring cache file %s: not a pandapower net", pickled)
        net = factory()
        write_pickle(pickled, net)
    return net


def pandapower_network(name: str) -> pp.pandapowerNet:
    """Return a fresh copy of ``pandapower.networks.<name>()``.

    Raises
    ------
    ValueError
        If pandapower.networks has no such function.

    """
    return copy.deepcopy(_pandapower_case(name))


#: Modules a pandapower JSON network may name in ``"_module"``: pandapower's own types and
#: the pandas, numpy, networkx and geometry types it serialises. pandapower's reader
#: imports whatever module a file names there (running its code), so :func:`json_network`
#: refuses any other module before pandapower sees the file. Nothing is unpickled.
SAFE_JSON_MODULES = ("pandapower", "pandas", "numpy", "networkx", "shapely", "geopandas", "geojson")


def _named_modules(document: Any) -> set[str]:
    """Return every ``"_module"`` named in a parsed JSON document.

    Also looks inside string values that are JSON themselves (pandapower stores tables
    as JSON strings and decodes them with the same hook).
    """
    found: set[str] = set()
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "_module" in item:
                found.add(str(item["_module"]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item.lstrip()[:1] in ("{", "["):  # as json.loads
            try:
                stack.append(json.loads(item))
            except (ValueError, RecursionError):
                continue
    return found


def _safe_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in SAFE_JSON_MODULES)


def json_network(path: Path) -> pp.pandapowerNet:
    """Read a pandapower JSON network file (as written by ``pandapower.to_json``).

    The file is checked before pandapower parses it: UTF-8 JSON, a ``pandapowerNet``
    object at top level, and only the modules of :data:`SAFE_JSON_MODULES`.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file (pandapower would try to parse the path as JSON text).
    ValueError
        If the file is not valid JSON, not a pandapower network, names another module,
        or pandapower cannot read it; the message names the file.

    """
    if not Path(path).is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        msg = f"{path}: not a UTF-8 text file (expected a pandapower JSON network)"
        raise ValueError(msg) from None
    except json.JSONDecodeError as exc:
        msg = f"{path}: not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ValueError(msg) from None
    except RecursionError:
        msg = f"{path}: JSON nested too deeply to be a pandapower network"
        raise ValueError(msg) from None
    if not (isinstance(document, dict) and document.get("_class") == "pandapowerNet"):
        found = type(document).__name__
        if isinstance(document, dict):
            found = f"an object with _class {document.get('_class')!r}"
        msg = (
            f"{path}: not a pandapower network: expected a JSON object with "
            f'"_class": "pandapowerNet" (as written by pandapower.to_json), found {found}'
        )
        raise ValueError(msg)
    unsafe = sorted(m for m in _named_modules(document) if not _safe_module(m))
    if unsafe:
        msg = (
            f"{path}: names the Python modules {unsafe[:5]}, which reading it would import; "
            f"a network file may only use {', '.join(SAFE_JSON_MODULES)}"
        )
        raise ValueError(msg)
    try:
        net = pp.from_json_string(text)
    except Exception as exc:  # noqa: BLE001 - pandapower fails in many ways on bad tables
        msg = f"{path}: pandapower cannot read this network: {type(exc).__name__}: {exc}"
        raise ValueError(msg) from None
    if not isinstance(net, pp.pandapowerNet) or "bus" not in net or net.bus.empty:
        msg = f"{path}: not a usable pandapower network: it has no buses"
        raise ValueError(msg)
    return net


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
