"""Linearised branch-flow (LinDistFlow) model of a radial pandapower feeder.

:class:`LinDistFlowFeeder` is built once per LDA. It solves the linear model
directly for fixed injections (:meth:`LinDistFlowFeeder.solve_power_flow`) and
adds the same model to a pyomo block for optimisation
(:meth:`LinDistFlowFeeder.add_to_model`, see :mod:`gridlayers.dso.opf`), whose
inputs are mutable Params updated in place each interval.

Notes
-----
Losses are linearised around a base operating point (:mod:`gridlayers.dso.linear_system`).
The default base point of :meth:`~LinDistFlowFeeder.solve_power_flow` is the
lossless LinDistFlow solution for the same injections (one re-linearisation,
i.e. one Newton step of the DistFlow equations from a lossless start).

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandapower as pp
import pandas as pd

from gridlayers.conventions import (
    DEFAULT_MAX_LOADING_PERCENT,
    DEFAULT_VM_MAX_PU,
    DEFAULT_VM_MIN_PU,
)
from gridlayers.dso import opf
from gridlayers.dso.linear_system import (
    LossCoefficients,
    OperatingPoint,
    interface_flow_pu,
    loss_coefficients,
    solve_linear_branch_flow,
)
from gridlayers.dso.topology import build_radial_network

#: (table, sign) of pandapower elements read as injections (pandapower loads are load-positive).
INJECTION_TABLES = (("load", -1.0), ("sgen", 1.0), ("storage", -1.0))


@dataclass(frozen=True)
class LinDistFlowResult:
    """State of the linear model for given injections.

    Parameters
    ----------
    vm_pu : pandas.Series
        Voltage magnitude (pu) of every energised pandapower bus.
    p_branch_mw, q_branch_mvar : pandas.Series
        Flow (MW, Mvar) leaving the parent bus into the branch feeding each non-root model bus
        (indexed by that child bus).
    loading_percent : pandas.Series
        Loading (percent of rating, current based) per ``(element_type, index)``.
    interface_p_mw, interface_q_mvar : float
        Net export from the feeder into the transmission bus (injection positive).
    losses_p_mw : float
        Active losses (MW): total nodal injection minus interface export.
    point : OperatingPoint
        Internal per-unit state, usable as the base of the next linearisation.

    """

    vm_pu: pd.Series
    p_branch_mw: pd.Series
    q_branch_mvar: pd.Series
    loading_percent: pd.Series
    interface_p_mw: float
    interface_q_mvar: float
    losses_p_mw: float
    point: OperatingPoint


class LinDistFlowFeeder:
    """Linearised branch-flow model of one radial feeder (one LDA).

    Parameters
    ----------
    net : pandapowerNet
        Radial feeder with one in-service ext_grid (the T–D interface). Not modified.
    vm_min_pu, vm_max_pu : float
        Voltage band (pu) enforced at every non-root bus.
    max_loading_percent : float
        Thermal limit (percent of rating) of every line and transformer.
    ext_grid : int, optional
        Root ext_grid index, needed only when ``net`` has several (e.g. ``mv_oberrhein``).

    Attributes
    ----------
    buses : list of int
        Pandapower bus naming each model node (fused buses share one node).
    root_bus : int
        The ext_grid bus.
    bus_node_bus : dict of int to int
        Model bus (node name) of every energised pandapower bus.
    node_index : dict of int to int
        Position of each model bus in :attr:`buses` (0 is the root).

    """

    def __init__(
        self,
        net: pp.pandapowerNet,
        *,
        vm_min_pu: float = DEFAULT_VM_MIN_PU,
        vm_max_pu: float = DEFAULT_VM_MAX_PU,
        max_loading_percent: float = DEFAULT_MAX_LOADING_PERCENT,
        ext_grid: int | None = None,
    ) -> None:
        self.network = build_radial_network(net, ext_grid)
        self.vm_min_pu = vm_min_pu
        self.vm_max_pu = vm_max_pu
        self.max_loading_percent = max_loading_percent
        self.buses: list[int] = [int(b) for b in self.network.node_bus]
        self.root_bus: int = self.buses[0]
        self.node_index: dict[int, int] = {b: i for i, b in enumerate(self.buses)}
        self.bus_node_bus: dict[int, int] = {
            b: self.buses[node] for b, node in self.network.bus_node.items()
        }
        p_mw, q_mvar = self.injections_from_net(net)
        #: Base point of the loss linearisation used by :meth:`add_to_model`.
        self.base_point: OperatingPoint = self.solve_power_flow(p_mw, q_mvar).point

    # ------------------------------------------------------------------ inputs
    def node_vector(self, values_mw: pd.Series | Mapping[int, float]) -> np.ndarray:
        """Sum per-bus values (MW or Mvar) into a per-node vector in pu.

        Parameters
        ----------
        values_mw : pandas.Series or mapping
            Values indexed by any energised pandapower bus; missing buses count as 0.

        Returns
        -------
        numpy.ndarray
            Per-node values divided by the base power (pu).

        """
        out = np.zeros(self.network.n_nodes)
        items = values_mw.items()
        for bus, value in items:
            out[self.network.bus_node[int(bus)]] += float(value)
        return out / self.network.base_mva

    def injections_from_net(self, net: pp.pandapowerNet) -> tuple[pd.Series, pd.Series]:
        """Return the net injection per model bus from ``net.load``/``sgen``/``storage``.

        Parameters
        ----------
        net : pandapowerNet
            The feeder with ``p_mw``/``q_mvar`` as they stand (in-service elements,
            ``scaling`` applied; pandapower load-positive signs converted).

        Returns
        -------
        tuple of pandas.Series
            ``(p_mw, q_mvar)`` indexed by :attr:`buses`, injection positive.

        """
        p = pd.Series(0.0, index=self.buses)
        q = pd.Series(0.0, index=self.buses)
        for table, sign in INJECTION_TABLES:
            df = net[table]
            df = df[df.in_service & df.bus.isin(self.bus_node_bus.keys())]
            if df.empty:
                continue
            node_bus = df.bus.map(self.bus_node_bus)
            p = p.add((sign * df.p_mw * df.scaling).groupby(node_bus).sum(), fill_value=0.0)
            q = q.add((sign * df.q_mvar * df.scaling).groupby(node_bus).sum(), fill_value=0.0)
        return p, q

    # ------------------------------------------------------------- direct solve
    def solve_power_flow(
        self,
        p_mw: pd.Series | Mapping[int, float],
        q_mvar: pd.Series | Mapping[int, float],
        *,
        operating_point: OperatingPoint | None = None,
        relinearise: int = 1,
    ) -> LinDistFlowResult:
        """Solve the linear model for fixed injections (no optimiser).

        Parameters
        ----------
        p_mw, q_mvar : pandas.Series or mapping
            Net injection (MW, Mvar, injection positive) per pandapower bus.
        operating_point : OperatingPoint, optional
            Base point of the loss linearisation; ``None`` starts lossless.
        relinearise : int
            Number of times the losses are re-linearised around the model's own solution
            (0 with no ``operating_point`` is plain LinDistFlow).

        Returns
        -------
        LinDistFlowResult
            Voltages, branch flows, loadings and interface flow.

        """
        p_pu, q_pu = self.node_vector(p_mw), self.node_vector(q_mvar)
        return self._result(p_pu, q_pu, self._linearised(p_pu, q_pu, operating_point, relinearise))

    def solve_operating_point(
        self,
        p_mw: pd.Series | Mapping[int, float],
        q_mvar: pd.Series | Mapping[int, float],
        *,
        operating_point: OperatingPoint | None = None,
        relinearise: int = 1,
    ) -> OperatingPoint:
        """Return only ``solve_power_flow(...).point`` (no voltages, loadings or flows).

        Parameters are those of :meth:`solve_power_flow`; the point is the same to the bit.
        """
        p_pu, q_pu = self.node_vector(p_mw), self.node_vector(q_mvar)
        return self._linearised(p_pu, q_pu, operating_point, relinearise)

    def interface_export_mw(
        self,
        p_mw: pd.Series | Mapping[int, float],
        q_mvar: pd.Series | Mapping[int, float],
        *,
        operating_point: OperatingPoint,
    ) -> float:
        """Return the interface export (MW) of the model with losses linearised at a point.

        Equals ``solve_power_flow(p_mw, q_mvar, operating_point=operating_point,
        relinearise=0).interface_p_mw`` (one linear solve, no pandas result): what a pyomo
        block after ``set_operating_point(block, operating_point)`` exports at these
        injections.
        """
        p_pu, q_pu = self.node_vector(p_mw), self.node_vector(q_mvar)
        point = solve_linear_branch_flow(
            self.network, p_pu, q_pu, self.loss_coefficients(operating_point)
        )
        return interface_flow_pu(self.network, p_pu, q_pu, point)[0] * self.network.base_mva

    def _linearised(
        self,
        p_pu: np.ndarray,
        q_pu: np.ndarray,
        point: OperatingPoint | None,
        relinearise: int,
    ) -> OperatingPoint:
        """Solve the linear model ``relinearise + 1`` times, each around the last point."""
        for _ in range(relinearise + 1):
            point = solve_linear_branch_flow(
                self.network, p_pu, q_pu, self.loss_coefficients(point)
            )
        return point

    def loss_coefficients(
        self, point: OperatingPoint | None, method: str = "tangent"
    ) -> LossCoefficients:
        """Return the affine loss model around ``point`` (see :func:`loss_coefficients`)."""
        return loss_coefficients(self.network, point, method)

    def _result(
        self, p_pu: np.ndarray, q_pu: np.ndarray, point: OperatingPoint
    ) -> LinDistFlowResult:
        """Translate a per-unit state into a :class:`LinDistFlowResult`."""
        rn, base = self.network, self.network.base_mva
        w = point.w_pu
        vm_node = np.sqrt(w)
        parent = np.maximum(rn.parent, 0)
        tap_p = np.where(rn.tap_p > 0, rn.tap_p, 1.0)  # entry 0 is the root: no edge
        tap_c = np.where(rn.tap_c > 0, rn.tap_c, 1.0)
        w_a, w_b = w[parent] / tap_p**2, w / tap_c**2
        l_true = (point.p_pu**2 + point.q_pu**2) / w_a
        s_from = np.hypot(point.p_pu + rn.g_a_pu * w_a, point.q_pu - rn.b_a_pu * w_a)
        s_to = np.hypot(
            point.p_pu - rn.r_pu * l_true - rn.g_b_pu * w_b,
            point.q_pu - rn.x_pu * l_true + rn.b_b_pu * w_b,
        )
        i_edge = np.maximum(s_from / vm_node[parent], s_to / vm_node) * base
        loading = {
            (el, idx): 100.0 * share * i_edge[edge] / rating
            for el, idx, edge, share, rating in rn.elements
        }
        exp_p, exp_q = interface_flow_pu(rn, p_pu, q_pu, point)
        children = self.buses[1:]
        return LinDistFlowResult(
            vm_pu=pd.Series({b: vm_node[n] for b, n in rn.bus_node.items()}).sort_index(),
            p_branch_mw=pd.Series((point.p_pu + rn.g_a_pu * w_a)[1:] * base, index=children),
            q_branch_mvar=pd.Series((point.q_pu - rn.b_a_pu * w_a)[1:] * base, index=children),
            loading_percent=pd.Series(loading, dtype=float),
            interface_p_mw=exp_p * base,
            interface_q_mvar=exp_q * base,
            losses_p_mw=(p_pu.sum() - exp_p) * base,
            point=point,
        )

    # ------------------------------------------------------------------ pyomo
    def add_to_model(
        self,
        block: Any,
        *,
        controllable_p_mw: Mapping[int, Any] | None = None,
        controllable_q_mvar: Mapping[int, Any] | None = None,
        enforce_limits: bool = True,
        slack: bool = False,
    ) -> None:
        """Add the linear model to a pyomo block (once); inputs are mutable Params.

        Parameters
        ----------
        block : pyomo Block
            Receives the sets, Params, Vars and constraints listed in :mod:`gridlayers.dso.opf`.
        controllable_p_mw, controllable_q_mvar : mapping of int to pyomo expression, optional
            Caller-built injections (MW, Mvar, injection positive) by pandapower bus.
        enforce_limits : bool
            If False, voltage and thermal limits are built but deactivated.
        slack : bool
            Soft limits with slack variables and a ``SlackCost`` expression ($/h) the
            caller adds to its objective (see :mod:`gridlayers.dso.opf`,
            :func:`~gridlayers.dso.opf.set_slack_penalty`).

        """
        opf.add_feeder_to_block(
            self,
            block,
            controllable_p_mw=controllable_p_mw or {},
            controllable_q_mvar=controllable_q_mvar or {},
            enforce_limits=enforce_limits,
            slack=slack,
        )

    def set_fixed_injections(
        self, block: Any, p_mw: pd.Series, q_mvar: pd.Series
    ) -> tuple[dict[int, float], dict[int, float]]:
        """Write uncontrolled net injections into the block's mutable Params (in place).

        Parameters
        ----------
        block : pyomo Block
            A block built by :meth:`add_to_model`.
        p_mw, q_mvar : pandas.Series
            Net injection (MW, Mvar, injection positive) indexed by pandapower bus; fused
            buses are summed, missing buses are 0.

        Returns
        -------
        tuple of dict
            The values written by model bus (MW, Mvar; :attr:`buses` order).

        """
        return opf.set_fixed_injections(self, block, p_mw, q_mvar)

    def set_operating_point(
        self, block: Any, point: OperatingPoint | None, method: str = "tangent"
    ) -> None:
        """Re-linearise the block's losses around ``point`` (mutable Params, in place).

        Parameters
        ----------
        block : pyomo Block
            A block built by :meth:`add_to_model`.
        point : OperatingPoint or None
            Base state (e.g. ``LinDistFlowResult.point`` of the previous interval or of
            :func:`~gridlayers.dso.opf.extract_state`); ``None`` gives the lossless model.
        method : {"tangent", "fixed"}
            Taylor expansion of the squared current, or losses frozen at the base point.

        """
        opf.set_loss_coefficients(self, block, self.loss_coefficients(point, method))
