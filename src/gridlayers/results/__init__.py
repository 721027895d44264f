"""Results: the embedded store and the KPIs computed from it."""

from gridlayers.results.store import ResultStore

__all__ = ["ResultStore"]
