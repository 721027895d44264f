"""The files a scenario names, by content: what the resume and sweep fingerprints add.

A scenario's values name networks (pandapower JSON), technology tables and profiles by
path. Two runs of the same values over different file contents are different runs, so
:func:`gridlayers.results.checkpoint.fingerprint` (``run --resume``) and the sweep's
"point already done" check (:func:`gridlayers.sweep.execute.is_done`) compare these
contents too, not only the paths.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

#: Suffixes of the data files a scenario can name.
DATA_SUFFIXES = frozenset({".json", ".csv", ".yaml", ".yml", ".parquet", ".xlsx", ".zip"})


def referenced_files(data: Any) -> dict[str, str]:
    """Return path -> SHA-256 (hex) of every data file a JSON-ready scenario names.

    Every string value anywhere in ``data`` with a suffix in :data:`DATA_SUFFIXES` that
    names an existing file counts (validated scenarios hold paths resolved against the
    scenario file's folder: absolute, or relative to the working directory, as the run
    reads them); names of bundled data sets and SimBench codes are not paths.
    """
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node not in found:
            path = Path(node)
            if path.suffix.lower() in DATA_SUFFIXES and path.is_file():
                found[node] = hashlib.sha256(path.read_bytes()).hexdigest()

    walk(data)
    return dict(sorted(found.items()))
