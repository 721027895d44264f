"""On-disk start-up cache: parsed SimBench networks and built LDA models, reused across runs.

Resolving a scenario parses feeder networks and builds every LDA's model (feeder with DER,
profiles, forecasts, devices); each simulator process would otherwise repeat that. Two
caches live under ``$GRIDLAYERS_CACHE`` (default ``~/.cache/gridlayers``):

- ``simbench-<version>/<code>.<versions>.pkl``: the parsed SimBench net (pickle), next to
  the version-independent pandapower JSON it is parsed from once
  (:mod:`gridlayers.grid.networks`);
- ``lda-models/<lda>-<key>.pkl``: :func:`gridlayers.lda.build_lda` results, keyed by
  :func:`lda_key` (every scenario input the model depends on, the library versions and a
  fingerprint of gridlayers' own source code, so an edited source file never serves a
  stale model). Horizons longer than a few weeks keep their profile tables beside it, in
  ``lda-models/<lda>-<key>.profiles/*.npy``, read in windows of rows
  (:mod:`gridlayers.profile_window`).

Files are written atomically (unique temporary file, then
:func:`os.replace`), so concurrent processes and partitions never read half a file; an
unreadable file is logged and rebuilt, never an error. Model files unused for
:data:`MAX_UNUSED_DAYS` are deleted when a model is stored. ``GRIDLAYERS_LDA_CACHE=off``
turns the LDA model cache off; do so where code that ``build_lda`` calls is patched at
run time (a monkeypatch is not in the key).

Trust: this is a local cache of files gridlayers wrote itself, and they are pickles
(unpickling runs code), so only point ``GRIDLAYERS_CACHE`` at a folder that you, and
nobody else, can write. Nothing a user supplies is ever unpickled: scenarios and plans
are read as YAML (safe loader) and JSON, network files as JSON with only pandapower's
own modules (:func:`gridlayers.grid.networks.json_network`), technology tables as CSV,
and profiles as ``.npy`` with ``allow_pickle=False`` (``tests/test_security.py``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from gridlayers.lda import LDAModel
    from gridlayers.scenarios.schema import Scenario

log = logging.getLogger(__name__)

#: Environment variable with the cache root folder.
CACHE_ENV = "GRIDLAYERS_CACHE"
#: Environment variable that turns the LDA model cache off ("off", "0", "false", "no").
LDA_CACHE_ENV = "GRIDLAYERS_LDA_CACHE"
#: Pickle protocol of every cache file (out-of-band buffers, Python >= 3.8).
PICKLE_PROTOCOL = 5
#: Bump when the layout of a cached LDA file changes (2: long profiles in ``.npy`` files).
_FORMAT = 2
#: LDA model files not read or written for this many days are deleted (days).
MAX_UNUSED_DAYS = 14
#: Top-level scenario fields that :func:`gridlayers.lda.build_lda` does not read. Every
#: other field (including fields added later) is part of the key; of ``ldas`` only the
#: LDA's own entry and its position count.
NOT_LDA_INPUTS = frozenset(
    {
        "name",
        "description",
        "transmission",
        "paradigms",
        "settlement",
        "output",
        "simulators",
        "planner",
        "loop",
    }
)


def cache_root() -> Path:
    """Return the cache root: ``$GRIDLAYERS_CACHE`` or ``~/.cache/gridlayers`` (not created)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gridlayers")


def lda_cache_enabled() -> bool:
    """Return False if ``$GRIDLAYERS_LDA_CACHE`` turns the LDA model cache off."""
    value = os.environ.get(LDA_CACHE_ENV, "").strip().lower()
    return value not in {"off", "0", "false", "no"}


def versions_tag() -> str:
    """Return the library versions a pickled pandapower net depends on, file-name safe."""
    import numpy as np
    import pandapower as pp

    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"pp{pp.__version__}-pd{pd.__version__}-np{np.__version__}-py{py}"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temporary file and :func:`os.replace`.

    Readers see the old file or the complete new one, never a partial write, even when
    several processes write the same path at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp's 0o600 would hide it from other users
            handle.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_pickle(path: Path, unpickler: type[pickle.Unpickler] = pickle.Unpickler) -> Any | None:
    """Return the unpickled content of ``path``; None (and a log line) if unreadable."""
    try:
        with path.open("rb") as handle:
            return unpickler(handle).load()
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - any unreadable cache file is a miss
        log.warning("ignoring unreadable cache file %s (%s: %s)", path, type(exc).__name__, exc)
        return None


def read_model_file(path: Path) -> Any | None:
    """Return the content of an LDA model file, or None if unreadable."""
    return read_pickle(path)


def write_pickle(path: Path, obj: Any) -> None:
    """Pickle ``obj`` atomically to ``path``; a failed write is logged, never raised."""
    try:
        atomic_write(path, pickle.dumps(obj, protocol=PICKLE_PROTOCOL))
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation only
        log.warning("cannot write cache file %s (%s: %s)", path, type(exc).__name__, exc)


@functools.cache
def code_fingerprint() -> str:
    """Return a SHA-256 over the path and bytes of every ``.py`` file of gridlayers.

    Computed once per process; any source edit changes it, so a development change never
    serves an LDA model built by other code.
    """
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _library_versions() -> dict[str, str]:
    import numpy as np
    import pandapower as pp
    import pydantic
    import simbench

    import gridlayers

    return {
        "gridlayers": gridlayers.__version__,
        "pandapower": pp.__version__,
        "simbench": simbench.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pydantic": pydantic.VERSION,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def _file_digest(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None  # build_lda reports the missing file


def lda_inputs(scenario: Scenario, lda_name: str) -> dict[str, Any]:
    """Return every input that determines ``build_lda(scenario, lda_name)``, JSON-ready.

    The validated scenario without :data:`NOT_LDA_INPUTS`, with ``ldas`` reduced to this
    LDA's entry and position (its forecast-error streams depend on it); the content of a
    JSON feeder file; library versions; and :func:`code_fingerprint`.

    Raises
    ------
    StopIteration
        If the scenario has no LDA ``lda_name``.

    """
    data = scenario.model_dump(mode="json", by_alias=True)
    index = next(i for i, lda in enumerate(scenario.ldas) if lda.name == lda_name)
    for field in NOT_LDA_INPUTS:
        data.pop(field, None)
    lda = data.pop("ldas")[index]
    return {
        "format": _FORMAT,
        "scenario": data,
        "lda": lda,
        "lda_index": index,
        "feeder_json_sha256": _file_digest(lda["feeder"].get("json")),
        "versions": _library_versions(),
        "code": code_fingerprint(),
    }


def lda_key(scenario: Scenario, lda_name: str) -> str:
    """Return the SHA-256 hex key of :func:`lda_inputs`."""
    text = json.dumps(lda_inputs(scenario, lda_name), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def lda_cache_path(scenario: Scenario, lda_name: str) -> Path:
    """Return the cache file of an LDA model (it may not exist)."""
    return cache_root() / "lda-models" / f"{lda_name}-{lda_key(scenario, lda_name)}.pkl"


def cached_lda(scenario: Scenario, lda_name: str) -> LDAModel:
    """Return ``build_lda(scenario, lda_name)``, from the on-disk cache when possible.

    Each call returns an independent object in its initial state (unpickled per call, or
    freshly built and then stored), so callers may change device state freely. With
    ``GRIDLAYERS_LDA_CACHE=off`` it simply builds.
    """
    from gridlayers.lda import LDAModel, build_lda
    from gridlayers.profile_window import externalise, reattach

    if not lda_cache_enabled():
        return build_lda(scenario, lda_name)
    key = lda_key(scenario, lda_name)
    path = cache_root() / "lda-models" / f"{lda_name}-{key}.pkl"
    profiles = profiles_folder(path)
    payload = read_model_file(path)
    if payload is not None:
        model = payload.get("model") if isinstance(payload, dict) else None
        if isinstance(model, LDAModel) and payload.get("key") == key:
            if reattach(model, profiles):
                _touch(path)
                return model
            log.warning("ignoring cache file %s: its profile files are missing", path)
        else:
            log.warning("ignoring cache file %s: not an LDA model for its key", path)
    model = externalise(build_lda(scenario, lda_name), profiles)
    write_pickle(path, {"key": key, "model": model})
    _prune(path.parent)
    return model


def profiles_folder(model_file: Path) -> Path:
    """Return the folder of a cached LDA model's long profile tables (``.npy`` files).

    Long horizons keep their profile tables there and read them in windows
    (:mod:`gridlayers.profile_window`); the model file holds only the file names.
    """
    return model_file.with_suffix(".profiles")


def _touch(path: Path) -> None:
    """Mark a cache file as used now (pruning deletes files unused for long)."""
    with contextlib.suppress(OSError):  # a read-only cache still serves hits
        os.utime(path)


_PRUNED: set[Path] = set()


def _prune(folder: Path) -> None:
    """Delete model files unused for :data:`MAX_UNUSED_DAYS` (once per process and folder).

    Also deletes temporary files older than a day (left by killed writers). Deleting a
    file another process is about to read only makes it rebuild that model.
    """
    if folder in _PRUNED:
        return
    _PRUNED.add(folder)
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    names = {entry.name for entry in entries}
    for entry in entries:
        try:
            age_days = (now - entry.stat().st_mtime) / 86400.0
            old_model = entry.name.endswith(".pkl") and age_days > MAX_UNUSED_DAYS
            if old_model or (entry.name.endswith(".tmp") and age_days > 1.0):
                Path(entry.path).unlink()
                if old_model:
                    shutil.rmtree(profiles_folder(Path(entry.path)), ignore_errors=True)
            elif (
                entry.name.endswith(".profiles")
                and age_days > 1.0
                and entry.name.removesuffix(".profiles") + ".pkl" not in names  # orphaned
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue
