"""Iterative TSO-DSO coordination (paradigm ``iterative``): the ADMM bookkeeping.

:mod:`gridlayers.coordination.admm` holds the pure, solver-free part (prices, residuals,
stopping rule); the subproblems are :mod:`gridlayers.market.admm` (TSO) and
:mod:`gridlayers.dso.admm` (DSO).
"""

from gridlayers.coordination.admm import AdmmSettings, Consensus, RoundOutcome

__all__ = ["AdmmSettings", "Consensus", "RoundOutcome"]
