r"""ADMM bookkeeping of one market interval: interface prices, residuals, stopping rule.

Consensus ADMM on each LDA ``l``'s interface injection (MW, injection positive = the LDA
exports to transmission), between the TSO's copy :math:`p^T_l` and the DSO's
:math:`p^D_l`. Round ``r``:

1. each DSO solves :math:`\min f_D(p^D) - \lambda_l p^D + \tfrac{\rho}{2}(p^D - p^T_l)^2`
   (:mod:`gridlayers.dso.admm`) and sends :math:`p^D_l`;
2. the TSO solves :math:`\min C(\text{gen}) + \sum_l [\lambda_l p^T_l +
   \tfrac{\rho}{2}(p^T_l - p^D_l)^2]` (:mod:`gridlayers.market.admm`);
3. :class:`Consensus` (this module) updates :math:`\lambda_l \mathrel{+}= \rho (p^T_l -
   p^D_l)` and stops when the primal residual :math:`\max_l |p^T_l - p^D_l|` and the
   TSO's move :math:`\max_l |p^T_l(r) - p^T_l(r-1)|` are both within ``tolerance_mw``
   (dual residual :math:`\rho` times the move, $/MWh), or at ``max_rounds``.

After step 2 :math:`\lambda_l + \rho(p^T_l - p^D_l)` is the TSO subproblem's LMP at the
interface (its stationarity condition), so the updated :math:`\lambda_l` *is* that LMP.
Pure Python: no solver, no mosaik.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AdmmSettings:
    """ADMM parameters (the scenario's ``coordination`` section).

    Attributes
    ----------
    rho : float
        Penalty on the interface mismatch (($/MWh) per MW).
    tolerance_mw : float
        Primal tolerance and tolerance on the TSO's move between rounds (MW).
    max_rounds : int
        Most rounds per interval.

    """

    rho: float
    tolerance_mw: float
    max_rounds: int

    def __post_init__(self) -> None:
        if not (self.rho > 0 and self.tolerance_mw > 0 and self.max_rounds >= 1):
            msg = f"need rho > 0, tolerance_mw > 0, max_rounds >= 1; got {self}"
            raise ValueError(msg)


@dataclass(frozen=True)
class RoundOutcome:
    r"""Result of one round's update (all per LDA name).

    Attributes
    ----------
    round : int
        Round number in the interval (1-based).
    prices_usd_per_mwh : dict of str to float
        Updated :math:`\lambda_l` ($/MWh).
    tso_mw, dso_mw : dict of str to float
        :math:`p^T_l`, :math:`p^D_l` of the round (MW, injection positive).
    primal_residual_mw : float
        :math:`\max_l |p^T_l - p^D_l|` (MW).
    dual_residual_usd_per_mwh : float
        :math:`\rho \max_l |p^T_l(r) - p^T_l(r-1)|` ($/MWh); ``inf`` in the first round
        without a previous TSO schedule.
    converged : bool
        Both residuals within tolerance.
    done : bool
        Converged or ``max_rounds`` reached.

    """

    round: int
    prices_usd_per_mwh: dict[str, float]
    tso_mw: dict[str, float]
    dso_mw: dict[str, float]
    primal_residual_mw: float
    dual_residual_usd_per_mwh: float
    converged: bool
    done: bool


@dataclass
class Consensus:
    """The TSO's ADMM state across rounds and intervals (prices, last TSO schedule).

    ``prices_usd_per_mwh`` and ``tso_mw`` carry over from one interval to the next as the
    warm start (see :meth:`start_interval`).
    """

    settings: AdmmSettings
    prices_usd_per_mwh: dict[str, float] = field(default_factory=dict)
    tso_mw: dict[str, float] = field(default_factory=dict)
    round: int = 0

    def start_interval(
        self,
        prices_usd_per_mwh: Mapping[str, float] | None = None,
        schedule_mw: Mapping[str, float] | None = None,
    ) -> None:
        """Begin an interval; warm start from the previous interval's cleared result.

        Parameters
        ----------
        prices_usd_per_mwh : mapping, optional
            Interface LMP per LDA of the previous forward clearing ($/MWh); the DSOs start
            from the same values. ``None``: keep the current prices (0 at the start).
        schedule_mw : mapping, optional
            Cleared interface schedule per LDA of the previous interval (MW): the TSO's
            previous schedule for the first round's dual residual. ``None``: none.

        """
        if prices_usd_per_mwh is not None:
            self.prices_usd_per_mwh = {k: float(v) for k, v in prices_usd_per_mwh.items()}
        self.tso_mw = {k: float(v) for k, v in (schedule_mw or {}).items()}
        self.round = 0

    def price(self, lda: str) -> float:
        r"""Return the current :math:`\lambda_l` ($/MWh); 0 before any round."""
        return self.prices_usd_per_mwh.get(lda, 0.0)

    def update(self, tso_mw: Mapping[str, float], dso_mw: Mapping[str, float]) -> RoundOutcome:
        """Apply one round's schedules (MW per LDA): price update, residuals, stopping rule."""
        if set(tso_mw) != set(dso_mw):
            msg = f"TSO and DSO schedules name different LDAs: {sorted(tso_mw)} vs {sorted(dso_mw)}"
            raise ValueError(msg)
        s = self.settings
        self.round += 1
        gaps = {a: float(tso_mw[a]) - float(dso_mw[a]) for a in tso_mw}
        for lda, gap in gaps.items():
            self.prices_usd_per_mwh[lda] = self.price(lda) + s.rho * gap
        primal = max((abs(g) for g in gaps.values()), default=0.0)
        if set(self.tso_mw) >= set(tso_mw):
            move = max((abs(float(tso_mw[a]) - self.tso_mw[a]) for a in tso_mw), default=0.0)
        else:
            move = math.inf
        self.tso_mw = {a: float(v) for a, v in tso_mw.items()}
        converged = primal <= s.tolerance_mw and move <= s.tolerance_mw
        return RoundOutcome(
            round=self.round,
            prices_usd_per_mwh={a: self.prices_usd_per_mwh[a] for a in tso_mw},
            tso_mw=dict(self.tso_mw),
            dso_mw={a: float(v) for a, v in dso_mw.items()},
            primal_residual_mw=primal,
            dual_residual_usd_per_mwh=s.rho * move,
            converged=converged,
            done=converged or self.round >= s.max_rounds,
        )
