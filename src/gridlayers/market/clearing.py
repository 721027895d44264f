"""TSO market clearing: DC-OPF economic dispatch with LMPs, built once, cleared many times.

The model is built once per :class:`TransmissionMarket` (see
:mod:`gridlayers.market.model`); :meth:`TransmissionMarket.clear` only writes mutable
Params and re-solves with persistent HiGHS (``pyomo.contrib.solver.solvers.highs.Highs``,
which passes quadratic objectives to HiGHS's QP solver and returns row duals). pyomo
builds the HiGHS model on the first clear; later clears push the changed numbers
(:class:`~gridlayers.highs_params.ParamUpdater`), run HiGHS directly
(:func:`gridlayers.highs.run`) and read the result from HiGHS's solution arrays by index
(:class:`~gridlayers.market.result.SolutionReader`): the same HiGHS model, solve and
numbers as through pyomo's ``solve`` and results object, in a fraction of the time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.common.util import NoDualsError

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.highs import (
    freeze_structure,
    persistent_highs,
    pyomo_solve,
    row,
    run,
    termination_condition,
)
from gridlayers.highs_params import ParamUpdater, store_floats
from gridlayers.market.faults import clear_infeasible, reject_bad_bids
from gridlayers.market.model import MarketExtension, build_market_model
from gridlayers.market.network import extract_dc_network
from gridlayers.market.result import ClearingResult, SolutionReader
from gridlayers.numerics import (
    BAD_COEFFICIENT,
    SOLVER_TIME_LIMIT,
    TSO_INFEASIBLE,
    BadCoefficientError,
    bad_values,
)

#: Default value of lost load for the unserved-load slack ($/MWh).
DEFAULT_VOLL_USD_PER_MWH = 10_000.0
#: HiGHS ``qp_regularization_value``. The default (1e-7) adds ``1e-7 * x`` to every
#: reduced cost of the active-set QP, i.e. ~1e-5 $/MWh LMP errors at 100 MW; 1e-10 keeps
#: the LMPs exact to ~1e-9 relative while keeping the safeguard for singular Hessians.
QP_REGULARIZATION = 1e-10
#: Used for one retry if HiGHS reports a solve error (its default value).
FALLBACK_QP_REGULARIZATION = 1e-7
#: After hitting the time limit the clear is repeated once from scratch with this many
#: times the limit (bounded: a clear never hangs).
TIME_LIMIT_RETRY_FACTOR = 10.0
_INFEASIBLE = frozenset(
    {
        TerminationCondition.provenInfeasible,
        TerminationCondition.infeasibleOrUnbounded,
        TerminationCondition.unbounded,
    }
)


class ClearingError(RuntimeError):
    """The market could not be cleared (solver failure, infeasible even with balance slack).

    Attributes
    ----------
    kind : str
        The fault's ``event.kind``: ``tso_infeasible``, ``solver_time_limit`` or
        ``bad_coefficient`` (:data:`gridlayers.numerics.FAULT_KINDS`).

    """

    def __init__(self, message: str, kind: str = TSO_INFEASIBLE) -> None:
        super().__init__(message)
        self.kind = kind


class TransmissionMarket:
    """DC-OPF market clearing on a pandapower transmission net, built once.

    Parameters
    ----------
    net : pandapowerNet
        Transmission network; costs from ``net.poly_cost``, limits from ``min_p_mw``/
        ``max_p_mw`` and ``max_loading_percent``, exactly as ``pandapower.rundcopp`` reads them.
    participants : mapping of str to int, optional
        Participant name -> pandapower bus index where its ``BidCurve`` injects.
    max_blocks : int
        Bid block slots per participant (a ``BidCurve`` may have at most this many blocks).
    extensions : sequence of MarketExtension
        Extra pyomo blocks embedded in the problem (e.g. feeder models for "Total TSO").
    voll_usd_per_mwh : float
        Value of lost load ($/MWh) pricing the per-bus load-shedding slack.
    time_limit_s : float
        HiGHS time limit per clear (s); hitting it repeats the clear once from scratch
        with ``TIME_LIMIT_RETRY_FACTOR`` times the limit, then raises
        :class:`ClearingError` (``kind="solver_time_limit"``).
    cost_segments : int, optional
        ``None`` (default): quadratic generator costs exactly (a QP, what ``rundcopp``
        solves). An integer: secant segments per quadratic cost curve, making every clear
        a pure LP; use it with embedded feeder models, where HiGHS's QP solver is fragile.

    Attributes
    ----------
    last_faults : list of dict
        Numerical faults the last :meth:`clear` survived, ``{"kind", "message"}`` each
        (``tso_infeasible``: cleared with power-balance slack; ``solver_time_limit``:
        re-solved from scratch; ``bad_coefficient``: a participant's bid rejected).

    Notes
    -----
    See :mod:`gridlayers.market.model` for the maths. LMPs are the duals of the nodal
    balance, ``d(total cost)/d(withdrawal at bus)`` in $/MWh. Numerical faults:
    :mod:`gridlayers.market.faults` and ``docs/market.md``.

    """

    def __init__(
        self,
        net,
        *,
        participants: Mapping[str, int] | None = None,
        max_blocks: int = 10,
        extensions: Sequence[MarketExtension] = (),
        voll_usd_per_mwh: float = DEFAULT_VOLL_USD_PER_MWH,
        time_limit_s: float = 60.0,
        cost_segments: int | None = None,
    ) -> None:
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be >= 1, got {max_blocks}")
        self._net = net
        self._dc = extract_dc_network(net)
        self.max_blocks = max_blocks
        participants = dict(participants) if participants is not None else {}
        part_nodes = [
            self._model_bus(bus, f"participant {name!r}") for name, bus in participants.items()
        ]
        self._participants = participants
        self._voll_usd_per_mwh = float(voll_usd_per_mwh)
        self.last_faults: list[dict[str, str]] = []
        self._balance_rows: np.ndarray | None = None  # HiGHS rows, on first use
        self._model = build_market_model(
            self._dc,
            list(participants),
            part_nodes,
            max_blocks,
            tuple(extensions),
            voll_usd_per_mwh,
            cost_segments,
        )
        self._solver = persistent_highs()
        self._solver.config.time_limit = float(time_limit_s)
        self._solver.config.solver_options["qp_regularization_value"] = QP_REGULARIZATION
        self._updater: ParamUpdater | None = None  # set after the first solve
        self._reader: SolutionReader | None = None  # set after the first solve
        self._unserved_bus = self._first_net_bus_per_node()
        self._active_loads = list(self._model.LOAD)  # net.load index of each model load
        self._load_nodes = self._dc.load_bus.reindex(self._active_loads).to_numpy(np.int64)
        self._load_rows_cache: tuple[pd.Index | None, np.ndarray | None] = (None, None)

    @property
    def model(self) -> pyo.ConcreteModel:
        """The pyomo model (built once; the same object for every clear)."""
        return self._model

    @property
    def network(self):  # noqa: ANN201 - DcNetwork
        """The DC network data the model was built from (model bus numbering)."""
        return self._dc

    @property
    def n_variables(self) -> int:
        """Number of variables in the TSO problem."""
        return self._model.nvariables()

    @property
    def n_constraints(self) -> int:
        """Number of constraints in the TSO problem."""
        return self._model.nconstraints()

    def _model_bus(self, bus: int, what: str) -> int:
        node = int(self._dc.bus_lookup.get(bus, -1))
        if node < 0:
            raise ValueError(f"{what}: bus {bus} is not an in-service bus of the net")
        return node

    def _first_net_bus_per_node(self) -> dict[int, int]:
        """Model bus -> lowest net bus mapped to it (where unserved load is reported)."""
        out: dict[int, int] = {}
        for bus, node in self._dc.bus_lookup.items():
            if node >= 0 and (node not in out or bus < out[node]):
                out[int(node)] = bus
        return out

    def clear(
        self,
        *,
        load_p_mw: pd.Series | None = None,
        extra_load_mw: Mapping[int, float] | None = None,
        bids: Mapping[str, BidCurve] | None = None,
    ) -> ClearingResult:
        """Clear the market for one interval (updates Params in place and re-solves).

        Parameters
        ----------
        load_p_mw : pd.Series, optional
            Withdrawal per ``net.load`` row (MW, load-positive), used as given (no
            ``scaling``). ``None``: ``net.load.p_mw * net.load.scaling`` at call time.
        extra_load_mw : mapping of int to float, optional
            Additional withdrawal (MW) at pandapower buses, e.g. an LDA's interface import.
        bids : mapping of str to BidCurve, optional
            Participant -> offer curve for this interval. Absent participants are fixed at 0 MW.

        Returns
        -------
        ClearingResult
            Prices, dispatch, flows and costs.

        Raises
        ------
        ValueError
            Unknown participant or bus, missing loads, or a bid with more than
            ``max_blocks`` blocks.
        ClearingError
            If the solver does not find an optimum.

        """
        self.last_faults = []
        self._set_loads(load_p_mw)
        self._set_extra_loads(extra_load_mw)
        self._set_bids(bids)
        self._set_unserved_bounds()
        return self._solve()

    def _set_unserved_bounds(self) -> None:
        """Cap load shedding per bus at its withdrawal; keep the bulk part for the result."""
        withdrawal = self._dc.fixed_withdrawal_mw.copy()
        np.add.at(withdrawal, self._load_nodes, self._load_mw)
        self._bulk_withdrawal_mw = withdrawal  # MW per model bus, before shedding
        total = withdrawal + self._extra_mw
        cap = np.where(total > 0.0, total, 0.0)  # max(0.0, total), also for -0.0 and NaN
        store_floats(self._model.unserved_max_mw, dict(enumerate(cap.tolist())))

    def _set_loads(self, load_p_mw: pd.Series | None) -> None:
        net_load = self._net.load
        index = net_load.index
        if load_p_mw is None:
            values = net_load.p_mw * net_load.scaling
        elif isinstance(load_p_mw, pd.Series) and _same_labels(load_p_mw.index, index):
            values = load_p_mw  # reindexing to its own labels would change nothing
        else:
            values = pd.Series(load_p_mw, dtype=float).reindex(index)
        active = self._active_loads
        rows = self._load_rows(index)
        if rows is None:  # an in-service load of the model is no longer in net.load
            vals = values.reindex(active).to_numpy(dtype=float)
        else:
            vals = values.to_numpy(dtype=float)[rows]
        if np.isnan(vals).any():
            missing = [i for i, v in zip(active, vals, strict=True) if np.isnan(v)]
            raise ValueError(f"load_p_mw has no value for in-service loads {missing[:10]}")
        if (bad := bad_values(vals)).size:  # also before the first solve (pyomo's path)
            loads = [(active[i], float(vals[i])) for i in bad[:5]]
            msg = f"non-finite or extreme load(s) (load index, MW): {loads}"
            raise ClearingError(msg, kind=BAD_COEFFICIENT)
        self._load_mw = vals  # MW per model load (m.LOAD order)
        store_floats(self._model.load_p_mw, dict(zip(active, vals.tolist(), strict=True)))

    def _load_rows(self, index: pd.Index) -> np.ndarray | None:
        """Position of each model load in ``index`` (net.load's), None if one is missing."""
        if self._load_rows_cache[0] is not index:
            rows = index.get_indexer(self._active_loads) if index.is_unique else None
            if rows is not None and (rows < 0).any():
                rows = None
            self._load_rows_cache = (index, rows)
        return self._load_rows_cache[1]

    def _set_extra_loads(self, extra_load_mw: Mapping[int, float] | None) -> None:
        totals = np.zeros(self._dc.n_bus)
        for bus, p_mw in (extra_load_mw or {}).items():
            totals[self._model_bus(bus, "extra_load_mw")] += float(p_mw)
        if (bad := bad_values(totals)).size:
            msg = f"non-finite or extreme extra load(s) at model bus(es) {bad[:5].tolist()}"
            raise ClearingError(msg, kind=BAD_COEFFICIENT)
        self._extra_mw = totals  # MW per model bus
        store_floats(self._model.extra_load_mw, dict(enumerate(totals.tolist())))

    def _set_bids(self, bids: Mapping[str, BidCurve] | None) -> None:
        bids = bids or {}
        unknown = set(bids) - set(self._participants)
        if unknown:
            raise ValueError(
                f"bids from unknown participants {sorted(unknown)}; "
                f"declare them in TransmissionMarket(participants=...)"
            )
        m = self._model
        p_min, quantity, price = {}, {}, {}
        bids = reject_bad_bids(bids, self.last_faults)
        for name in self._participants:
            curve = bids.get(name, BidCurve.fixed(0.0))
            if len(curve.blocks) > self.max_blocks:
                raise ValueError(
                    f"bid of participant {name!r} has {len(curve.blocks)} blocks, "
                    f"more than max_blocks={self.max_blocks}"
                )
            p_min[name] = float(curve.p_min_mw)
            for k in range(self.max_blocks):
                block = curve.blocks[k] if k < len(curve.blocks) else None
                quantity[name, k] = float(block.quantity_mw) if block else 0.0
                price[name, k] = float(block.price_usd_per_mwh) if block else 0.0
        store_floats(m.part_p_min_mw, p_min)
        store_floats(m.bid_quantity_mw, quantity)
        store_floats(m.bid_price_usd_per_mwh, price)

    def _solve(self) -> ClearingResult:
        """Solve (pyomo builds the HiGHS model the first time, then HiGHS directly)."""
        start = time.perf_counter()
        if self._updater is None:
            res = self._solver.solve(
                self._model, load_solutions=False, raise_exception_on_nonoptimal_result=False
            )
            condition = res.termination_condition
        else:
            try:
                self._updater.push()
            except BadCoefficientError as exc:  # HiGHS still holds the previous clear's model
                raise ClearingError(str(exc), kind=BAD_COEFFICIENT) from exc
            condition = termination_condition(run(self._solver))
        if condition == TerminationCondition.error:
            condition = self._retry_with_default_regularization()
        if self._updater is None:  # structure is fixed from now on: only push Param changes
            self._updater = freeze_structure(self._solver)
            self._reader = SolutionReader(self._model, self._dc, self._solver)
        if condition == TerminationCondition.maxTimeLimit:
            condition = self._retry_after_time_limit()
        status, objective = condition.name, None
        if condition in _INFEASIBLE:
            status, objective = self._clear_with_slack(condition)
        elif condition != TerminationCondition.convergenceCriteriaSatisfied:
            kind = SOLVER_TIME_LIMIT if condition == TerminationCondition.maxTimeLimit else None
            raise ClearingError(
                f"market clearing failed: {condition.name}", kind=kind or TSO_INFEASIBLE
            )
        seconds = time.perf_counter() - start
        self._updater.load_vars()  # the model's Vars hold the solution (extensions read them)
        solution = self._solver._sol  # noqa: SLF001 - stored by pyomo's solve or run()
        if not solution.dual_valid:
            raise NoDualsError
        withdrawal = (self._bulk_withdrawal_mw, self._extra_mw, self._unserved_bus)
        if objective is None:
            info = self._solver._solver_model.getInfo()  # noqa: SLF001
            objective = float(info.objective_function_value)  # $/h, as pyomo's results
        return self._reader.read(self._net, solution, objective, status, seconds, withdrawal)

    def _retry_after_time_limit(self) -> TerminationCondition:
        """Repeat a timed-out clear once from scratch with a longer limit; record it."""
        limit = self._solver.config.time_limit
        self._solver._solver_model.clearSolver()  # noqa: SLF001 - drop the (warm) basis
        self._solver.config.time_limit = limit * TIME_LIMIT_RETRY_FACTOR
        try:
            condition = termination_condition(run(self._solver))
        finally:
            self._solver.config.time_limit = limit
        message = (
            f"HiGHS hit the time limit ({limit:g} s); re-solved from scratch with "
            f"{limit * TIME_LIMIT_RETRY_FACTOR:g} s: {condition.name}"
        )
        self.last_faults.append({"kind": SOLVER_TIME_LIMIT, "message": message})
        return condition

    def _clear_with_slack(self, condition: TerminationCondition) -> tuple[str, float]:
        """Name what makes the clear infeasible, clear with power-balance slack at VOLL.

        Returns the status (``<condition>+balanceSlack``) and the objective ($/h, incl.
        the penalty); the solution is left where :meth:`_solve` reads it.
        """
        if self._balance_rows is None:
            bal = self._model.Balance
            self._balance_rows = np.array([row(self._solver, bal[n]) for n in self._model.BUS])
        status, objective, fault = clear_infeasible(
            self._solver, condition.name, self._balance_rows, self._voll_usd_per_mwh,
            self._unserved_bus,
        )  # fmt: skip
        if fault is None:
            raise ClearingError(status, kind=TSO_INFEASIBLE)
        self.last_faults.append(fault)
        return status, objective

    def _retry_with_default_regularization(self) -> TerminationCondition:
        """Re-solve once with HiGHS's default QP regularisation (more robust, LMPs ~1e-7 off).

        Returns the termination condition. HiGHS is left with :data:`QP_REGULARIZATION`
        for the next clear, as pyomo's ``solve`` would set it.
        """
        options = self._solver.config.solver_options
        options["qp_regularization_value"] = FALLBACK_QP_REGULARIZATION
        try:
            res = pyomo_solve(self._solver, self._model)
        finally:
            options["qp_regularization_value"] = QP_REGULARIZATION
            highs = self._solver._solver_model  # noqa: SLF001
            if highs is not None:
                highs.setOptionValue("qp_regularization_value", QP_REGULARIZATION)
        return res.termination_condition


def _same_labels(a: pd.Index, b: pd.Index) -> bool:
    """Whether ``a`` has exactly the unique labels of ``b`` in the same order."""
    return (a is b or a.equals(b)) and b.is_unique


def clear_pandapower(net, **kwargs) -> ClearingResult:
    """Clear ``net`` as it stands (build a :class:`TransmissionMarket`, clear once).

    Parameters
    ----------
    net : pandapowerNet
        Transmission network with ``poly_cost``; loads as in ``net.load`` (MW).
    **kwargs
        Passed to :class:`TransmissionMarket` (e.g. ``voll_usd_per_mwh``).

    Returns
    -------
    ClearingResult
        LMPs ($/MWh), dispatch (MW), flows (MW) and cost ($/h).

    """
    return TransmissionMarket(net, **kwargs).clear()
