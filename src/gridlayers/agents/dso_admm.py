"""The DSO side of the iterative paradigm's ADMM rounds (one LDA; no mosaik inside).

:class:`DsoRounds` keeps what a DSO knows between rounds and intervals: the TSO's last
price and schedule. The first round of an interval starts from the previous interval's
forward interface LMP and cleared schedule, which the TSO uses too (both sides know them
without a further message); the run's first interval starts at price 0 without a
proximal term. See :mod:`gridlayers.dso.admm` for the subproblem.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gridlayers.domain import BidCurve
from gridlayers.dso.admm import attach
from gridlayers.dso.offer_blocks import InfeasibleDSOError


class DsoRounds:
    """ADMM rounds of one LDA's DSO (see the module).

    Parameters
    ----------
    operator : DSOOperator
        The LDA's DSO core, not yet solved.
    rho : float
        ADMM penalty (($/MWh) per MW).

    Attributes
    ----------
    rounds : int
        Proposals sent in the current interval.
    failures : list of str
        Rounds of the current interval whose hard-limit problem was infeasible, or
        whose solve failed altogether (then the previous proposal is held).
    solve_seconds : float
        Wall time of the current interval's round solves (s).

    """

    def __init__(self, operator: Any, rho: float) -> None:
        self._sub = attach(operator, rho)
        self._price_usd_per_mwh = 0.0
        self._target_mw: float | None = None
        self.rounds = 0
        self.failures: list[str] = []
        self.solve_seconds = 0.0
        self._held_mw: float | None = None
        self._last_mw: float | None = None

    def hold(self, p_mw: float) -> float:
        """Propose ``p_mw`` (MW) in every round of this interval (no usable model); return it."""
        self._held_mw = float(p_mw)
        return self._held_mw

    def start(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> float:
        """First round of an interval (forecast injections MW/Mvar, offers); return p^D (MW)."""
        self.rounds, self.failures, self._held_mw, self._last_mw = 0, [], None, None
        self.solve_seconds = 0.0
        self._sub.set_interval(p_fixed_mw, q_fixed_mvar, offers)
        return self._propose()

    def next_round(self, price_usd_per_mwh: float, target_mw: float) -> float:
        """Solve a round at the TSO's new price ($/MWh) and schedule (MW); return p^D (MW)."""
        self._price_usd_per_mwh, self._target_mw = float(price_usd_per_mwh), float(target_mw)
        return self._propose()

    def settled(self, lmp_usd_per_mwh: float, schedule_mw: float) -> None:
        """Keep the interval's forward interface LMP ($/MWh) and cleared schedule (MW)."""
        self._price_usd_per_mwh, self._target_mw = float(lmp_usd_per_mwh), float(schedule_mw)

    def _propose(self) -> float:
        """Solve this round; a failure after the first round holds the last proposal.

        The first round's failure propagates (the agent then holds the firm exchange,
        recorded as a blind offer); a later one (e.g. not even the least-slack range
        found, or HiGHS out of time) is recorded in :attr:`failures` and the previous
        proposal is sent again, so the round loop and the interval go on.
        """
        self.rounds += 1
        if self._held_mw is not None:
            return self._held_mw
        start = time.perf_counter()
        try:
            p_mw, failure = self._sub.propose(self._price_usd_per_mwh, self._target_mw)
        except InfeasibleDSOError as exc:
            if self._last_mw is None:
                raise
            p_mw, failure = self._last_mw, f"{exc}; held the previous proposal"
            self._held_mw = p_mw
        finally:
            self.solve_seconds += time.perf_counter() - start
        if failure is not None:
            self.failures.append(f"round {self.rounds}: {failure}")
        self._last_mw = p_mw
        return p_mw
