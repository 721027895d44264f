"""Results: the embedded store, the KPIs computed from it and :func:`load` to read a run."""

from gridlayers.results.load import RunFolderError, RunResults, load
from gridlayers.results.store import ResultStore

__all__ = ["ResultStore", "RunFolderError", "RunResults", "load"]
