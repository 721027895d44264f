"""The outcome of a market clearing, read from HiGHS's solution arrays by index.

:class:`ClearingResult` is what :meth:`gridlayers.market.TransmissionMarket.clear`
returns. :class:`SolutionReader` builds it: it looks up, once after the first solve, the
HiGHS column of every variable and the HiGHS row of every nodal balance the result
needs, and then reads each solve's primal values and duals as numpy arrays by those
indices instead of through pyomo (the same numbers pyomo's ``load_vars`` and
``get_duals`` would give, combined by the same operations in the same order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gridlayers.highs import column, row
from gridlayers.market.network import DcNetwork

GEN_TABLES = ("gen", "sgen", "ext_grid")


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


def _indices(solver: Any, component: Any, keys: Any, locate: Any = column) -> np.ndarray:
    return np.array([locate(solver, component[k]) for k in keys], dtype=np.intp)


class SolutionReader:
    """Build :class:`ClearingResult` from a solved market model's HiGHS solution.

    Parameters
    ----------
    model : pyomo ConcreteModel
        The market model (:func:`gridlayers.market.model.build_market_model`).
    dc : DcNetwork
        The network it was built from.
    solver : pyomo.contrib.solver.solvers.highs.Highs
        The persistent solver after its first solve of ``model`` (columns and rows exist).

    """

    def __init__(self, model: Any, dc: DcNetwork, solver: Any) -> None:
        m = model
        self._model, self._dc = m, dc
        self._balance_rows = _indices(solver, m.Balance, m.BUS, row)
        self._gen_cols = _indices(solver, m.Gen, m.GEN)
        self._flow_cols = _indices(solver, m.Flow, m.BRANCH)
        self._unserved_cols = _indices(solver, m.Unserved, m.BUS)
        self._block_cols = {
            p: _indices(solver, m.BidBlock, [(p, k) for k in m.BLOCK]) for p in m.PART
        }
        self._lookup = dc.bus_lookup.to_numpy()
        self._gen_units = {
            t: np.array([u for u, (table, _) in enumerate(dc.gen_element) if table == t], np.intp)
            for t in GEN_TABLES
        }
        self._gen_labels = {
            t: [dc.gen_element[u][1] for u in self._gen_units[t]] for t in GEN_TABLES
        }
        self._positions: dict[str, tuple[pd.Index, np.ndarray]] = {}
        self._sgen_on_net: tuple[np.ndarray, np.ndarray] | None = None

    def _rows_of(self, table: str, index: pd.Index, labels: list[Any]) -> np.ndarray:
        """Positions of ``labels`` in ``index`` (cached while the table's index is the same)."""
        cached = self._positions.get(table)
        if cached is None or cached[0] is not index:
            cached = (index, index.get_indexer(labels))
            self._positions[table] = cached
        return cached[1]

    def read(
        self,
        net: Any,
        solution: Any,
        objective: float,
        status: str,
        seconds: float,
        withdrawal: tuple[np.ndarray, np.ndarray, dict[int, int]],
    ) -> ClearingResult:
        """Return the result of the last solve.

        Parameters
        ----------
        net : pandapowerNet
            The transmission net (indexes of the result's Series).
        solution : highspy.HighsSolution
            The last solve's solution (``col_value`` in the Vars' units, ``row_dual`` of
            the balances in $/MWh).
        objective : float
            Objective value ($/h).
        status : str
            Termination condition name.
        seconds : float
            Wall time of the solve (s).
        withdrawal : tuple
            Bulk withdrawal per model bus before shedding (MW), extra withdrawal per model
            bus (MW), and model bus -> net bus where unserved load is reported.

        """
        m, dc = self._model, self._dc
        bulk_mw, extra_mw, unserved_bus = withdrawal
        col_value = np.asarray(solution.col_value, dtype=float)
        lmp_node = np.asarray(solution.row_dual, dtype=float)[self._balance_rows]
        lmp = np.where(self._lookup >= 0, lmp_node[np.maximum(self._lookup, 0)], np.nan)
        gen_val = col_value[self._gen_cols]
        flow = col_value[self._flow_cols]
        c2, c1, c0 = dc.gen_cost.T
        shed_raw = col_value[self._unserved_cols]
        nodes = list(unserved_bus)
        unserved = np.zeros(len(net.bus))
        positions = self._rows_of("bus", net.bus.index, [unserved_bus[n] for n in nodes])
        unserved[positions] = shed_raw[nodes]
        shed = np.where(shed_raw == 0.0, 0.0, shed_raw)  # -0.0 -> 0.0 as `value or 0.0`
        awards = {
            p: float(m.part_p_min_mw[p].value + sum(col_value[cols].tolist()))
            for p, cols in self._block_cols.items()
        }
        return ClearingResult(
            lmp_usd_per_mwh=pd.Series(lmp, index=net.bus.index, name="lmp_usd_per_mwh"),
            cost_usd_per_h=objective,
            generation_cost_usd_per_h=float(np.sum(c2 * gen_val**2 + c1 * gen_val + c0)),
            gen_p_mw=self._gen_tables(net, gen_val),
            line_p_mw=_branch_series(dc.line_branch, flow, "line_p_mw"),
            trafo_p_mw=_branch_series(dc.trafo_branch, flow, "trafo_p_mw"),
            awards_mw=awards,
            status=status,
            solve_seconds=seconds,
            unserved_mw=pd.Series(unserved, index=net.bus.index),
            node_lmp_usd_per_mwh=lmp_node,
            unit_p_mw=gen_val,
            node_bulk_withdrawal_mw=bulk_mw - shed,
            node_extra_withdrawal_mw=extra_mw.copy(),
            branch_flow_mw=flow,
        )

    def _on_net(self, bus: pd.Series) -> np.ndarray:
        """Whether each of these net buses is an in-service model bus (cached per bus list)."""
        buses = bus.to_numpy()
        cached = self._sgen_on_net
        if cached is None or not np.array_equal(cached[0], buses):
            cached = (buses.copy(), self._dc.bus_lookup.reindex(bus).to_numpy() >= 0)
            self._sgen_on_net = cached
        return cached[1]

    def _gen_tables(self, net: Any, gen_val: np.ndarray) -> dict[str, pd.Series]:
        """Injection per row of ``net.gen``, ``net.sgen``, ``net.ext_grid`` (MW)."""
        out = {}
        for table in GEN_TABLES:
            frame = net[table]
            values = np.zeros(len(frame))
            if table == "sgen" and len(frame):  # non-controllable sgens inject as scheduled
                fixed = (frame.in_service & self._on_net(frame.bus)).to_numpy(dtype=bool)
                values[fixed] = (frame.p_mw * frame.scaling).to_numpy(dtype=float)[fixed]
            rows = self._rows_of(table, frame.index, self._gen_labels[table])
            values[rows] = gen_val[self._gen_units[table]]
            out[table] = pd.Series(values, index=frame.index, name="p_mw")
        return out


def _branch_series(branch_map: pd.Series, flow: np.ndarray, name: str) -> pd.Series:
    """Flows (MW) indexed like the net table; 0 for out-of-service branches."""
    rows = branch_map.to_numpy()
    values = np.where(rows >= 0, flow[np.maximum(rows, 0)] if len(flow) else 0.0, 0.0)
    return pd.Series(values, index=branch_map.index, name=name)
