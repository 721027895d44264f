r"""Two-settlement payments between the parties of the transmission market.

A market interval is cleared twice (DESIGN.md, "One market interval"):

* the **forward** stage on forecasts gives quantities :math:`q^F` at prices :math:`\lambda^F`;
* the **real-time** stage re-dispatches on what physically happened (realised LDA
  interface flows, actual bulk load) and gives :math:`q^R` at :math:`\lambda^R`.

Every quantity is settled as :math:`\lambda^F q^F + \lambda^R (q^R - q^F)` at its own bus:
forward schedules at forward prices, deviations from them at real-time prices.

Notes
-----
Parties and signs ($/h, positive = the party receives money):

* generators: :math:`\sum_g \lambda_{n(g)} P_g`;
* bulk loads: :math:`-\sum_n \lambda_n W_n` with :math:`W_n` the served bulk withdrawal
  (loads plus fixed withdrawal, minus shed load);
* LDAs: :math:`\lambda_{n(i)} X_i` with :math:`X_i` the LDA's net injection at its interface;
* the TSO's congestion rent, computed from the branch flows:
  :math:`\sum_l F_l (\lambda_{t(l)} - \lambda_{f(l)})`.

For any price vector, summing the nodal balances
:math:`\text{injection}_n - \text{withdrawal}_n = \sum_{l: f(l)=n} F_l - \sum_{l: t(l)=n} F_l`
weighted by :math:`\lambda_n` shows that the four parties net to zero exactly when the
quantities satisfy the network's balance. The rent is computed from flows, not as the
residual, so a non-zero net exposes quantities that do not balance.

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gridlayers.market.network import DcNetwork


@dataclass(frozen=True)
class StageQuantities:
    """What one market stage dispatched, in model-bus numbering (MW).

    Attributes
    ----------
    unit_p_mw : np.ndarray
        Injection per dispatchable unit (``DcNetwork.gen_element`` order).
    bulk_withdrawal_mw : np.ndarray
        Served bulk withdrawal per model bus.
    lda_injection_mw : dict of str to float
        Net injection of each LDA at its interface (injection positive).
    branch_flow_mw : np.ndarray
        Flow per model branch (from side).

    """

    unit_p_mw: np.ndarray
    bulk_withdrawal_mw: np.ndarray
    lda_injection_mw: dict[str, float]
    branch_flow_mw: np.ndarray

    def minus(self, other: StageQuantities) -> StageQuantities:
        """Return ``self - other`` (the real-time deviation from the forward schedule)."""
        return StageQuantities(
            self.unit_p_mw - other.unit_p_mw,
            self.bulk_withdrawal_mw - other.bulk_withdrawal_mw,
            {k: v - other.lda_injection_mw.get(k, 0.0) for k, v in self.lda_injection_mw.items()},
            self.branch_flow_mw - other.branch_flow_mw,
        )


@dataclass(frozen=True)
class Payments:
    """Payments of one stage or interval ($/h; positive = the party receives)."""

    generators: float = 0.0
    bulk_loads: float = 0.0
    ldas: dict[str, float] = field(default_factory=dict)
    congestion_rent: float = 0.0

    @property
    def net(self) -> float:
        """Sum over all parties ($/h); zero up to solver tolerance."""
        return self.generators + self.bulk_loads + sum(self.ldas.values()) + self.congestion_rent

    def plus(self, other: Payments) -> Payments:
        """Return the sum of two payment sets (e.g. forward plus real-time)."""
        keys = set(self.ldas) | set(other.ldas)
        return Payments(
            self.generators + other.generators,
            self.bulk_loads + other.bulk_loads,
            {k: self.ldas.get(k, 0.0) + other.ldas.get(k, 0.0) for k in keys},
            self.congestion_rent + other.congestion_rent,
        )


def stage_payments(
    dc: DcNetwork,
    lmp_usd_per_mwh: np.ndarray,
    quantities: StageQuantities,
    interface_node: Mapping[str, int],
) -> Payments:
    """Settle ``quantities`` at ``lmp_usd_per_mwh`` (one price per model bus).

    Parameters
    ----------
    dc : DcNetwork
        The network (unit buses, branch ends).
    lmp_usd_per_mwh : np.ndarray
        Price per model bus ($/MWh).
    quantities : StageQuantities
        Quantities (MW) settled at those prices: a stage's schedule, or the real-time
        deviation from the forward schedule.
    interface_node : mapping of str to int
        LDA name -> model bus of its interface.

    Returns
    -------
    Payments
        $/h per party (see module notes).

    """
    lam = np.asarray(lmp_usd_per_mwh, dtype=float)
    q = quantities
    rent = float(np.sum(q.branch_flow_mw * (lam[dc.br_to] - lam[dc.br_from])))
    return Payments(
        generators=float(np.sum(lam[dc.gen_bus] * q.unit_p_mw)),
        bulk_loads=-float(np.sum(lam * q.bulk_withdrawal_mw)),
        ldas={lda: float(lam[interface_node[lda]] * x) for lda, x in q.lda_injection_mw.items()},
        congestion_rent=rent,
    )


def two_settlement(
    dc: DcNetwork,
    forward: tuple[np.ndarray, StageQuantities],
    real_time: tuple[np.ndarray, StageQuantities],
    interface_node: Mapping[str, int],
) -> tuple[Payments, Payments]:
    """Return (forward payments, real-time deviation payments) of one interval ($/h).

    Parameters
    ----------
    dc : DcNetwork
        The network.
    forward, real_time : tuple of (np.ndarray, StageQuantities)
        Prices per model bus ($/MWh) and quantities (MW) of each stage.
    interface_node : mapping of str to int
        LDA name -> model bus of its interface.

    """
    lam_f, q_f = forward
    lam_r, q_r = real_time
    return (
        stage_payments(dc, lam_f, q_f, interface_node),
        stage_payments(dc, lam_r, q_r.minus(q_f), interface_node),
    )
