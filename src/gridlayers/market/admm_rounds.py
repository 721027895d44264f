"""The TSO's side of the iterative paradigm's ADMM rounds across intervals (no mosaik).

:class:`TsoRounds` runs one round per call (:meth:`TsoRounds.round`): the TSO's subproblem
(:class:`~gridlayers.market.admm.TsoSubproblem`) on the DSOs' proposals, then the price
update and stopping rule (:class:`~gridlayers.coordination.admm.Consensus`). When the
rounds stop, converged or at ``max_rounds``, the interval's schedule is the DSOs' last
proposals (the last schedule each DSO found feasible); the caller clears the forward
stage with those as fixed interchanges and reports the cleared LMPs back
(:meth:`TsoRounds.cleared`), which warm-start the next interval on both sides.

The rounds' subproblem prices generation with the exact quadratic costs (a QP; 13 ms per
round on the congested scenario's ACTIVSg200 net), not with the forward clearing's secant
segments (``transmission.cost_segments``): HiGHS's QP solver needed 1.9 s per round on
the segmented LP plus the proximal terms. The final forward clearing uses the segments,
as under every paradigm, so its interface LMP differs from the converged price by at
most the secant error of the marginal unit's cost slope (``docs/paradigms.md``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gridlayers.coordination.admm import AdmmSettings, Consensus
from gridlayers.market.admm import TsoSubproblem
from gridlayers.market.clearing import ClearingError

#: ``event.kind`` of an interval whose rounds stopped at ``max_rounds`` unconverged.
NOT_CONVERGED = "admm_not_converged"


@dataclass(frozen=True)
class RoundStep:
    """What the TSO does after a round.

    Attributes
    ----------
    done : bool
        The rounds stop (converged or at the round limit).
    prices : dict of str to list of float
        Not done: ``[lambda ($/MWh), p^T (MW)]`` per LDA for the next round.
    schedule_mw : dict of str to float
        Done: the interchange to clear per LDA, the DSOs' last proposals (MW, injection
        positive).
    record : dict
        Done: per LDA ``rounds``, ``converged``, ``primal_residual_mw`` and
        ``dual_residual_usd_per_mwh`` (the interval's), ``price_usd_per_mwh`` (final
        lambda), ``tso_schedule_mw``, ``dso_schedule_mw``, ``seconds`` (TSO side).
    values_exchanged : int
        Values crossing the T-D interfaces in the rounds so far: one proposal up per LDA
        and round, a price and a schedule down per LDA and continued round.
    events : list of dict
        Done: ``{"kind", "message"}`` of the numerical faults of the interval's round
        clears (stage ``admm round r``) and ``admm_not_converged`` when stopped
        unconverged.

    """

    done: bool
    prices: dict[str, list[float]] = field(default_factory=dict)
    schedule_mw: dict[str, float] = field(default_factory=dict)
    record: dict[str, dict[str, Any]] = field(default_factory=dict)
    values_exchanged: int = 0
    events: list[dict[str, str]] = field(default_factory=list)


class TsoRounds:
    """The TSO's ADMM rounds (see the module).

    Parameters
    ----------
    net : pandapowerNet
        Transmission network.
    interfaces : mapping of str to int
        LDA name -> pandapower interface bus.
    coordination : CoordinationConfig
        The scenario's ``coordination`` section (penalty, tolerance, round limit).

    Notes
    -----
    The rounds use exact quadratic generator costs whatever the forward clearing's
    ``transmission.cost_segments`` (module notes).

    """

    def __init__(
        self,
        net: Any,
        interfaces: Mapping[str, int],
        coordination: Any,
    ) -> None:
        self.settings = AdmmSettings(
            rho=coordination.penalty_usd_per_mwh_per_mw,
            tolerance_mw=coordination.tolerance_mw,
            max_rounds=coordination.max_rounds,
        )
        # exact quadratic generator costs in the rounds (module notes), whatever the
        # forward clearing's segments
        self.subproblem = TsoSubproblem(net, interfaces, self.settings.rho, None)
        self.consensus = Consensus(self.settings)
        self._ldas = sorted(interfaces)
        self._interval: int | None = None
        self._warm: tuple[dict[str, float] | None, dict[str, float] | None] = (None, None)
        self._values = 0
        self._seconds = 0.0
        self._faults: list[dict[str, str]] = []

    def round(self, k: int, load_p_mw: pd.Series, proposals_mw: Mapping[str, float]) -> RoundStep:
        """Run one round of interval ``k``.

        Parameters
        ----------
        k : int
            Market interval.
        load_p_mw : pandas.Series
            Forecast bulk withdrawal per ``net.load`` row (MW).
        proposals_mw : mapping of str to float
            Every DSO's proposal ``p^D`` (MW, injection positive).

        """
        missing = sorted(set(self._ldas) - set(proposals_mw))
        if missing:
            msg = f"interval {k}: no ADMM proposal from the DSOs of {missing}"
            raise RuntimeError(msg)
        if k != self._interval:
            self._interval, self._values, self._seconds, self._faults = k, 0, 0.0, []
            self.consensus.start_interval(*self._warm)
        start = time.perf_counter()
        prices = {lda: self.consensus.price(lda) for lda in self._ldas}
        stage = f"admm round {self.consensus.round + 1}"
        try:
            tso = self.subproblem.solve(load_p_mw, prices, proposals_mw)
        except ClearingError as exc:
            return self._stopped_by_failure(stage, exc, proposals_mw, start)
        self._faults += [
            {"kind": f["kind"], "message": f"{stage}: {f['message']}"}
            for f in self.subproblem.market.last_faults
        ]
        out = self.consensus.update(tso, {lda: proposals_mw[lda] for lda in self._ldas})
        self._seconds += time.perf_counter() - start
        self._values += len(self._ldas)  # a proposal up from each DSO
        if not out.done:
            self._values += 2 * len(self._ldas)  # a price and a schedule down to each
            return RoundStep(
                done=False,
                prices={a: [out.prices_usd_per_mwh[a], out.tso_mw[a]] for a in self._ldas},
                values_exchanged=self._values,
            )
        record = {
            a: {
                "rounds": out.round,
                "converged": out.converged,
                "primal_residual_mw": out.primal_residual_mw,
                "dual_residual_usd_per_mwh": out.dual_residual_usd_per_mwh,
                "price_usd_per_mwh": out.prices_usd_per_mwh[a],
                "tso_schedule_mw": out.tso_mw[a],
                "dso_schedule_mw": out.dso_mw[a],
                "seconds": self._seconds,
            }
            for a in self._ldas
        }
        events = list(self._faults)
        if not out.converged:
            message = (
                f"ADMM stopped at the round limit ({out.round}) unconverged: primal residual "
                f"{out.primal_residual_mw:.4g} MW, dual residual "
                f"{out.dual_residual_usd_per_mwh:.4g} $/MWh; the DSOs' last proposals cleared"
            )
            events.append({"kind": NOT_CONVERGED, "message": message})
        return RoundStep(
            done=True,
            schedule_mw=dict(out.dso_mw),
            record=record,
            values_exchanged=self._values,
            events=events,
        )

    def _stopped_by_failure(
        self,
        stage: str,
        error: ClearingError,
        proposals_mw: Mapping[str, float],
        start: float,
    ) -> RoundStep:
        """Stop after a failed TSO round problem; clear this round's DSO proposals (MW).

        Recorded as an event of the error's kind (``tso_infeasible``,
        ``solver_time_limit``, ``bad_coefficient``) and as an unconverged interval with
        unknown residuals, like one stopped at the round limit; the run goes on.
        """
        self._seconds += time.perf_counter() - start
        self._values += len(self._ldas)  # the proposals did arrive
        message = (
            f"{stage}: the TSO's round problem failed ({error}); the rounds stop and "
            "the DSOs' proposals of this round are cleared"
        )
        self._faults.append({"kind": error.kind, "message": message})
        rounds = self.consensus.round + 1
        record = {
            a: {
                "rounds": rounds,
                "converged": False,
                "primal_residual_mw": None,
                "dual_residual_usd_per_mwh": None,
                "price_usd_per_mwh": self.consensus.price(a),
                "tso_schedule_mw": self.consensus.tso_mw.get(a),
                "dso_schedule_mw": float(proposals_mw[a]),
                "seconds": self._seconds,
            }
            for a in self._ldas
        }
        return RoundStep(
            done=True,
            schedule_mw={a: float(proposals_mw[a]) for a in self._ldas},
            record=record,
            values_exchanged=self._values,
            events=list(self._faults),
        )

    def cleared(
        self, lmp_usd_per_mwh: Mapping[str, float], schedule_mw: Mapping[str, float]
    ) -> None:
        """Keep the forward interface LMPs ($/MWh) and cleared schedules (MW): next warm start."""
        self._warm = (dict(lmp_usd_per_mwh), dict(schedule_mw))
