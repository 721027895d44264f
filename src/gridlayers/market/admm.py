r"""The TSO's ADMM subproblem: the forward clearing with a free, penalised interface copy.

:class:`InterfaceCopies` is a :class:`~gridlayers.market.model.MarketExtension` adding, for
each LDA ``l``, a free variable :math:`p^T_l` (MW, injection positive) at its interface
bus and the cost

.. math::

    \sum_l \left[\lambda_l p^T_l + \tfrac{\rho}{2} (p^T_l - p^D_l)^2\right] \quad (\$/h)

with :math:`\lambda_l` ($/MWh) and :math:`p^D_l` (MW, the DSO's last proposal) mutable
Params and :math:`\rho` (($/MWh)/MW) a constant: the Hessian never changes, only linear
costs and the objective offset are pushed between rounds. :class:`TsoSubproblem` wraps a
:class:`~gridlayers.market.TransmissionMarket` built once with it (HiGHS QP through
pyomo's persistent ``Highs``, as the market's own clears).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyomo.environ as pyo

from gridlayers.market.clearing import TransmissionMarket

#: HiGHS ``primal_feasibility_tolerance`` of the round clears (MW, pu; default 1e-7), as
#: for the DSO's ADMM QPs (:data:`gridlayers.dso.admm.QP_OPTIONS`): on the congested
#: scenario's ACTIVSg200 net HiGHS's active-set QP "claims optimality" with primal
#: infeasibilities up to 9.4e-5 and reports a solve error (interval 2 of the day, round
#: 6), which stopped the run. The subproblem's market serves only the rounds; the final
#: forward clearing keeps the default.
ROUND_PRIMAL_FEASIBILITY_TOL = 1e-4


class InterfaceCopies:
    """Market extension: the TSO's copy of every LDA's interface injection (see module).

    Parameters
    ----------
    interfaces : mapping of str to int
        LDA name -> pandapower bus of its interface.
    rho : float
        ADMM penalty (($/MWh) per MW), fixed for the model's life.

    """

    def __init__(self, interfaces: Mapping[str, int], rho: float) -> None:
        self.interfaces = dict(interfaces)
        self.rho = float(rho)
        self.block: Any = None

    def add_to_model(self, model: pyo.ConcreteModel) -> tuple[dict[int, Any], Any]:
        """Add block ``admm`` (Vars ``P``, Params ``price``, ``proposal``); see module."""
        b = pyo.Block()
        model.admm = b
        b.LDA = pyo.Set(initialize=list(self.interfaces), ordered=True, doc="LDA name")
        b.P = pyo.Var(b.LDA, doc="TSO copy of the interface injection (MW)")
        b.price = pyo.Param(
            b.LDA, mutable=True, initialize=0.0, doc="ADMM interface price lambda ($/MWh)"
        )
        b.proposal = pyo.Param(
            b.LDA, mutable=True, initialize=0.0, doc="DSO's proposed injection p^D (MW)"
        )
        injections: dict[int, Any] = {}
        for lda, bus in self.interfaces.items():
            injections[bus] = injections.get(bus, 0) + b.P[lda]
        cost = sum(
            b.price[lda] * b.P[lda] + 0.5 * self.rho * (b.P[lda] - b.proposal[lda]) ** 2
            for lda in b.LDA
        )
        self.block = b
        return injections, cost


class TsoSubproblem:
    """The TSO's ADMM round: forward clearing on the forecast bulk load plus the copies.

    Parameters
    ----------
    net : pandapowerNet
        Transmission network (as for :class:`~gridlayers.market.TransmissionMarket`).
    interfaces : mapping of str to int
        LDA name -> pandapower interface bus.
    rho : float
        ADMM penalty (($/MWh) per MW).
    cost_segments : int, optional
        As :class:`~gridlayers.market.TransmissionMarket` (``None``: quadratic costs).

    """

    def __init__(
        self,
        net: Any,
        interfaces: Mapping[str, int],
        rho: float,
        cost_segments: int | None = None,
    ) -> None:
        self.copies = InterfaceCopies(interfaces, rho)
        self.market = TransmissionMarket(net, extensions=[self.copies], cost_segments=cost_segments)
        options = self.market._solver.config.solver_options  # noqa: SLF001 - its own HiGHS
        options["primal_feasibility_tolerance"] = ROUND_PRIMAL_FEASIBILITY_TOL
        self.last_lmp_usd_per_mwh: dict[str, float] = {}

    def solve(
        self,
        load_p_mw: pd.Series,
        prices_usd_per_mwh: Mapping[str, float],
        proposals_mw: Mapping[str, float],
    ) -> dict[str, float]:
        r"""Solve one round; return :math:`p^T_l` per LDA (MW, injection positive).

        Parameters
        ----------
        load_p_mw : pandas.Series
            Forecast bulk withdrawal per ``net.load`` row (MW).
        prices_usd_per_mwh : mapping of str to float
            :math:`\lambda_l` per LDA ($/MWh).
        proposals_mw : mapping of str to float
            The DSOs' proposals :math:`p^D_l` (MW, injection positive).

        Notes
        -----
        The subproblem's interface LMPs ($/MWh) are kept in ``last_lmp_usd_per_mwh``.

        """
        b = self.copies.block
        for lda in b.LDA:
            b.price[lda].set_value(float(prices_usd_per_mwh.get(lda, 0.0)))
            b.proposal[lda].set_value(float(proposals_mw[lda]))
        result = self.market.clear(load_p_mw=load_p_mw)
        lmp = result.lmp_usd_per_mwh
        self.last_lmp_usd_per_mwh = {
            lda: float(lmp.at[bus]) for lda, bus in self.copies.interfaces.items()
        }
        return {lda: float(pyo.value(b.P[lda])) for lda in b.LDA}
