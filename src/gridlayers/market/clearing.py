"""TSO market clearing: DC-OPF economic dispatch with LMPs, built once, cleared many times.

The model is built once per :class:`TransmissionMarket` (see
:mod:`gridlayers.market.model`); :meth:`TransmissionMarket.clear` only writes mutable
Params and re-solves through pyomo's persistent HiGHS interface
(``pyomo.contrib.solver.solvers.highs.Highs``), which passes quadratic objectives to
HiGHS's QP solver and returns row duals.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import TerminationCondition

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.highs import freeze_structure, persistent_highs
from gridlayers.highs_params import ParamUpdater
from gridlayers.market.model import MarketExtension, build_market_model
from gridlayers.market.network import extract_dc_network

#: Default value of lost load for the unserved-load slack ($/MWh).
DEFAULT_VOLL_USD_PER_MWH = 10_000.0
GEN_TABLES = ("gen", "sgen", "ext_grid")
#: HiGHS ``qp_regularization_value``. The default (1e-7) adds ``1e-7 * x`` to every
#: reduced cost of the active-set QP, i.e. ~1e-5 $/MWh LMP errors at 100 MW; 1e-10 keeps
#: the LMPs exact to ~1e-9 relative while keeping the safeguard for singular Hessians.
QP_REGULARIZATION = 1e-10
#: Used for one retry if HiGHS reports a solve error (its default value).
FALLBACK_QP_REGULARIZATION = 1e-7


class ClearingError(RuntimeError):
    """The market could not be cleared (solver failure, infeasible even with load shedding)."""


@dataclass(frozen=True)
class ClearingResult:
    """Outcome of one market clearing.

    Attributes
    ----------
    lmp_usd_per_mwh : pd.Series
        Locational marginal price per net bus ($/MWh), NaN at out-of-service buses.
        Dual of the nodal balance, positive in a normal system (as ``res_bus.lam_p``).
    cost_usd_per_h : float
        Objective: generation + cleared bid blocks + extensions + unserved load ($/h).
    generation_cost_usd_per_h : float
        Generator cost from ``poly_cost`` incl. constant terms ($/h).
    gen_p_mw : dict of str to pd.Series
        Injection (MW) for keys ``'gen'``, ``'sgen'``, ``'ext_grid'``, indexed like those tables.
    line_p_mw, trafo_p_mw : pd.Series
        Active flow (MW) at the from-bus / hv-bus side, indexed like net.line / net.trafo.
    awards_mw : dict of str to float
        Participant -> cleared net injection (MW, injection positive).
    status : str
        Solver termination condition.
    solve_seconds : float
        Wall time of the solve call including parameter updates (s).
    unserved_mw : pd.Series
        Load shed per net bus (MW) at the value of lost load; normally all zero.
    node_lmp_usd_per_mwh : np.ndarray
        LMP per model bus ($/MWh), model (ppci) numbering of :attr:`TransmissionMarket.network`.
    unit_p_mw : np.ndarray
        Injection per dispatchable unit (MW), in ``network.gen_element`` order.
    node_bulk_withdrawal_mw : np.ndarray
        Served bulk withdrawal per model bus (MW): ``net.load`` rows plus fixed withdrawal
        (shunts, non-dispatchable generators with negative sign) minus unserved load.
    node_extra_withdrawal_mw : np.ndarray
        The ``extra_load_mw`` of the clear per model bus (MW), e.g. realised LDA imports.
    branch_flow_mw : np.ndarray
        Flow per in-service model branch, from side (MW).

    """

    lmp_usd_per_mwh: pd.Series
    cost_usd_per_h: float
    generation_cost_usd_per_h: float
    gen_p_mw: dict[str, pd.Series]
    line_p_mw: pd.Series
    trafo_p_mw: pd.Series
    awards_mw: dict[str, float]
    status: str
    solve_seconds: float
    unserved_mw: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    node_lmp_usd_per_mwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    unit_p_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    node_bulk_withdrawal_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    node_extra_withdrawal_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    branch_flow_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def lmp(self) -> pd.Series:
        """Alias of :attr:`lmp_usd_per_mwh` ($/MWh)."""
        return self.lmp_usd_per_mwh

    @property
    def cost(self) -> float:
        """Alias of :attr:`cost_usd_per_h` ($/h)."""
        return self.cost_usd_per_h


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
        HiGHS time limit per clear (s); hitting it raises :class:`ClearingError`.
    cost_segments : int, optional
        ``None`` (default): quadratic generator costs exactly (a QP, what ``rundcopp``
        solves). An integer: secant segments per quadratic cost curve, making every clear
        a pure LP; use it with embedded feeder models, where HiGHS's QP solver is fragile.

    Notes
    -----
    See :mod:`gridlayers.market.model` for the maths. LMPs are the duals of the nodal
    balance, ``d(total cost)/d(withdrawal at bus)`` in $/MWh.

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
        self._unserved_bus = self._first_net_bus_per_node()
        self._load_nodes = self._dc.load_bus.reindex(list(self._model.LOAD)).to_numpy(np.int64)

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
        self._set_loads(load_p_mw)
        self._set_extra_loads(extra_load_mw)
        self._set_bids(bids)
        self._set_unserved_bounds()
        return self._solve()

    def _set_unserved_bounds(self) -> None:
        """Cap load shedding per bus at its withdrawal; keep the bulk part for the result."""
        m, dc = self._model, self._dc
        withdrawal = dc.fixed_withdrawal_mw.copy()
        load_mw = np.array([pyo.value(m.load_p_mw[d]) for d in m.LOAD])
        np.add.at(withdrawal, self._load_nodes, load_mw)
        self._bulk_withdrawal_mw = withdrawal  # MW per model bus, before shedding
        for n in m.BUS:
            m.unserved_max_mw[n] = max(0.0, float(withdrawal[n]) + self._extra_mw[n])

    def _set_loads(self, load_p_mw: pd.Series | None) -> None:
        net_load = self._net.load
        if load_p_mw is None:
            values = net_load.p_mw * net_load.scaling
        else:
            values = pd.Series(load_p_mw, dtype=float).reindex(net_load.index)
        active = list(self._model.LOAD)
        vals = values.reindex(active).to_numpy(dtype=float)
        if np.isnan(vals).any():
            missing = [i for i, v in zip(active, vals, strict=True) if np.isnan(v)]
            raise ValueError(f"load_p_mw has no value for in-service loads {missing[:10]}")
        param = self._model.load_p_mw
        for d, v in zip(active, vals, strict=True):
            param[d] = float(v)

    def _set_extra_loads(self, extra_load_mw: Mapping[int, float] | None) -> None:
        totals = np.zeros(self._dc.n_bus)
        for bus, p_mw in (extra_load_mw or {}).items():
            totals[self._model_bus(bus, "extra_load_mw")] += float(p_mw)
        self._extra_mw = totals  # MW per model bus
        param = self._model.extra_load_mw
        for n in range(self._dc.n_bus):
            param[n] = float(totals[n])

    def _set_bids(self, bids: Mapping[str, BidCurve] | None) -> None:
        bids = bids or {}
        unknown = set(bids) - set(self._participants)
        if unknown:
            raise ValueError(
                f"bids from unknown participants {sorted(unknown)}; "
                f"declare them in TransmissionMarket(participants=...)"
            )
        m = self._model
        for name in self._participants:
            curve = bids.get(name, BidCurve.fixed(0.0))
            if len(curve.blocks) > self.max_blocks:
                raise ValueError(
                    f"bid of participant {name!r} has {len(curve.blocks)} blocks, "
                    f"more than max_blocks={self.max_blocks}"
                )
            m.part_p_min_mw[name] = float(curve.p_min_mw)
            for k in range(self.max_blocks):
                block = curve.blocks[k] if k < len(curve.blocks) else None
                m.bid_quantity_mw[name, k] = float(block.quantity_mw) if block else 0.0
                m.bid_price_usd_per_mwh[name, k] = float(block.price_usd_per_mwh) if block else 0.0

    def _solve(self) -> ClearingResult:
        start = time.perf_counter()
        if self._updater is not None:
            self._updater.push()
        res = self._solver.solve(
            self._model, load_solutions=False, raise_exception_on_nonoptimal_result=False
        )
        if res.termination_condition == TerminationCondition.error:
            res = self._retry_with_default_regularization()
        if self._updater is None:  # structure is fixed from now on: only push Param changes
            self._updater = freeze_structure(self._solver)
        seconds = time.perf_counter() - start
        if res.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
            raise ClearingError(f"market clearing failed: {res.termination_condition.name}")
        self._updater.load_vars()  # as res.solution_loader.load_vars(), faster
        duals = res.solution_loader.get_duals(list(self._model.Balance.values()))
        return self._extract(
            duals, float(res.incumbent_objective), res.termination_condition.name, seconds
        )

    def _retry_with_default_regularization(self):
        """Re-solve once with HiGHS's default QP regularisation (more robust, LMPs ~1e-7 off)."""
        options = self._solver.config.solver_options
        options["qp_regularization_value"] = FALLBACK_QP_REGULARIZATION
        try:
            return self._solver.solve(
                self._model, load_solutions=False, raise_exception_on_nonoptimal_result=False
            )
        finally:
            options["qp_regularization_value"] = QP_REGULARIZATION

    def _extract(
        self, duals: Mapping, objective: float, status: str, seconds: float
    ) -> ClearingResult:
        m, dc, net = self._model, self._dc, self._net
        lmp_node = np.array([duals[m.Balance[n]] for n in m.BUS])
        lookup = dc.bus_lookup.to_numpy()
        lmp = np.where(lookup >= 0, lmp_node[np.maximum(lookup, 0)], np.nan)
        gen_val = np.array([m.Gen[g].value for g in m.GEN])
        flow = np.array([m.Flow[br].value for br in m.BRANCH])
        c2, c1, c0 = dc.gen_cost.T
        unserved = pd.Series(0.0, index=net.bus.index)
        nodes = list(self._unserved_bus)
        unserved[[self._unserved_bus[n] for n in nodes]] = [m.Unserved[n].value for n in nodes]
        shed = np.array([m.Unserved[n].value or 0.0 for n in m.BUS])
        return ClearingResult(
            lmp_usd_per_mwh=pd.Series(lmp, index=net.bus.index, name="lmp_usd_per_mwh"),
            cost_usd_per_h=objective,
            generation_cost_usd_per_h=float(np.sum(c2 * gen_val**2 + c1 * gen_val + c0)),
            gen_p_mw=self._gen_tables(gen_val),
            line_p_mw=_branch_series(dc.line_branch, flow, "line_p_mw"),
            trafo_p_mw=_branch_series(dc.trafo_branch, flow, "trafo_p_mw"),
            awards_mw={
                p: float(m.part_p_min_mw[p].value + sum(m.BidBlock[p, k].value for k in m.BLOCK))
                for p in m.PART
            },
            status=status,
            solve_seconds=seconds,
            unserved_mw=unserved,
            node_lmp_usd_per_mwh=lmp_node,
            unit_p_mw=gen_val,
            node_bulk_withdrawal_mw=self._bulk_withdrawal_mw - shed,
            node_extra_withdrawal_mw=self._extra_mw.copy(),
            branch_flow_mw=flow,
        )

    def _gen_tables(self, gen_val: np.ndarray) -> dict[str, pd.Series]:
        net = self._net
        out = {t: pd.Series(0.0, index=net[t].index, name="p_mw") for t in GEN_TABLES}
        sgen = net.sgen
        if len(sgen):  # non-controllable sgens inject as scheduled
            fixed = sgen.in_service & (self._dc.bus_lookup.reindex(sgen.bus).to_numpy() >= 0)
            out["sgen"][fixed] = (sgen.p_mw * sgen.scaling)[fixed]
        for (table, idx), value in zip(self._dc.gen_element, gen_val, strict=True):
            out[table][idx] = float(value)
        return out


def _branch_series(branch_map: pd.Series, flow: np.ndarray, name: str) -> pd.Series:
    """Flows (MW) indexed like the net table; 0 for out-of-service branches."""
    rows = branch_map.to_numpy()
    values = np.where(rows >= 0, flow[np.maximum(rows, 0)] if len(flow) else 0.0, 0.0)
    return pd.Series(values, index=branch_map.index, name=name)


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
