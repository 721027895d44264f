"""Radial tree of a pandapower feeder, with branch data in per unit.

The tree is read from pandapower's own internal case (``ppc``), i.e. exactly
the network that :func:`pandapower.runpp` solves: closed bus-bus switches fuse
buses, open line/transformer switches disconnect element ends, out-of-service
elements and de-energised buses are dropped, and every branch carries
pandapower's per-unit series impedance, shunt admittance and off-nominal tap
ratio on the system base ``net.sn_mva``.

Notes
-----
Every model *node* is one energised ppc bus connected to the root (the
``ext_grid`` bus). Nodes are numbered in breadth-first order from the root, so
node ``c >= 1`` is fed by exactly one *edge* ``c`` from ``parent[c] < c``.
Parallel branches between the same two nodes are merged into one edge (sum of
series admittances) and each element keeps its share of the edge current.

An edge from node ``p`` to node ``c`` is an ideal transformer on each side
(ratios ``tap_p`` and ``tap_c``, 1 for lines) around a pi section: series
impedance ``r + jx`` between internal nodes ``a`` and ``b`` with
``|V_a|^2 = w_p / tap_p^2`` and ``|V_b|^2 = w_c / tap_c^2``, and shunt admittance
``g_a + j b_a`` at ``a`` and ``g_b + j b_b`` at ``b`` (pandapower's MATPOWER-style
branch model, ``pandapower.pypower.makeYbus.branch_vectors``).

"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandapower as pp
from pandapower.auxiliary import _add_ppc_options
from pandapower.pd2ppc import _pd2ppc
from pandapower.pypower.idx_brch import (
    BR_B,
    BR_B_ASYM,
    BR_G,
    BR_G_ASYM,
    BR_R,
    BR_R_ASYM,
    BR_STATUS,
    BR_X,
    BR_X_ASYM,
    F_BUS,
    T_BUS,
    TAP,
)
from pandapower.pypower.idx_bus import BS, BUS_TYPE, GS, NONE

SQRT3 = float(np.sqrt(3.0))


class MeshedFeederError(ValueError):
    """Raised when the energised part of a feeder contains a loop."""


@dataclass(frozen=True)
class RadialNetwork:
    """Arrays describing a radial feeder (node 0 is the root, edge ``c`` feeds node ``c``).

    Parameters
    ----------
    base_mva : float
        System base power in MVA (``net.sn_mva``).
    node_bus : numpy.ndarray
        Representative pandapower bus index of each node (int, length ``n``).
    bus_node : dict of int to int
        Node of every energised pandapower bus (fused buses share a node).
    parent : numpy.ndarray
        Parent node of each node (``parent[0] = -1``).
    r_pu, x_pu : numpy.ndarray
        Series resistance and reactance of edge ``c`` in pu on ``base_mva`` (index 0 unused).
    g_a_pu, b_a_pu, g_b_pu, b_b_pu : numpy.ndarray
        Shunt conductance/susceptance at the parent-side and child-side internal node (pu).
    tap_p, tap_c : numpy.ndarray
        Off-nominal ratio on the parent and child side of edge ``c`` (1 for lines).
    gs_pu, bs_pu : numpy.ndarray
        Bus shunt conductance and susceptance of each node in pu (consumes ``gs*w``, ``-bs*w``).
    vm_root_pu : float
        Voltage set-point of the ext_grid (pu).
    elements : tuple of tuple
        ``(element_type, element_index, edge, share, s_rated_mva)`` for every in-service
        line/transformer in the tree; ``share`` is the element's fraction of the edge
        current magnitude and ``s_rated_mva`` its rating at nominal voltage (inf if none).

    """

    base_mva: float
    node_bus: np.ndarray
    bus_node: dict[int, int]
    parent: np.ndarray
    r_pu: np.ndarray
    x_pu: np.ndarray
    g_a_pu: np.ndarray
    b_a_pu: np.ndarray
    g_b_pu: np.ndarray
    b_b_pu: np.ndarray
    tap_p: np.ndarray
    tap_c: np.ndarray
    gs_pu: np.ndarray
    bs_pu: np.ndarray
    vm_root_pu: float
    elements: tuple[tuple[str, int, int, float, float], ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes (root included)."""
        return len(self.node_bus)


def _internal_case(net: pp.pandapowerNet) -> tuple[dict, np.ndarray, dict]:
    """Return pandapower's full internal case, bus lookup and branch lookup for ``net``."""
    work = copy.deepcopy(net)
    work["_options"] = {}
    _add_ppc_options(
        work,
        calculate_voltage_angles=False,
        trafo_model="t",
        check_connectivity=True,
        mode="pf",
        switch_rx_ratio=2,
        init_vm_pu="flat",
        init_va_degree="flat",
        enforce_q_lims=False,
        enforce_p_lims=False,
        recycle=None,
        voltage_depend_loads=False,
    )
    ppc, _ = _pd2ppc(work)
    lookups = work._pd2ppc_lookups
    return copy.deepcopy(ppc), np.asarray(lookups["bus"]), dict(lookups["branch"])


def _branch_owner(branch_lookup: dict) -> dict[int, tuple[str, int, int]]:
    """Map ppc branch row to ``(element_type, position, start_row)``."""
    owner: dict[int, tuple[str, int, int]] = {}
    for element, (start, stop) in branch_lookup.items():
        for row in range(start, stop):
            owner[row] = (element, row - start, start)
    return owner


def _rating_mva(net: pp.pandapowerNet, element: str, idx: int) -> float:
    """Return the rating (MVA at nominal voltage) of a line or transformer, inf otherwise."""
    if element == "line":
        row = net.line.loc[idx]
        vn_kv = float(net.bus.at[row.from_bus, "vn_kv"])
        return SQRT3 * float(row.max_i_ka * row.df * row.parallel) * vn_kv
    if element == "trafo":
        row = net.trafo.loc[idx]
        return float(row.sn_mva * row.parallel)
    return float("inf")


def _edge_graph(ppc: dict, root: int) -> nx.MultiGraph:
    """Return the multigraph of in-service ppc branches in the root's component."""
    branch = ppc["branch"]
    alive = ppc["bus"][:, BUS_TYPE].real != NONE
    graph = nx.MultiGraph()
    graph.add_node(root)
    for row in np.flatnonzero(branch[:, BR_STATUS].real > 0):
        f, t = int(branch[row, F_BUS].real), int(branch[row, T_BUS].real)
        if alive[f] and alive[t] and f != t:
            graph.add_edge(f, t, key=int(row))
    return graph.subgraph(nx.node_connected_component(graph, root)).copy()


def _check_radial(graph: nx.MultiGraph, owner: dict, index_of: dict) -> None:
    """Raise :class:`MeshedFeederError` naming the elements of a loop, if any."""
    simple = nx.Graph(graph)
    if simple.number_of_edges() == simple.number_of_nodes() - 1:
        return
    cycle = nx.cycle_basis(simple)[0]
    pairs = zip(cycle, cycle[1:] + cycle[:1], strict=True)
    names = []
    for u, v in pairs:
        row = next(iter(graph.get_edge_data(u, v)))
        element, pos, _ = owner[row]
        names.append(f"{element} {index_of[element][pos]}")
    msg = f"feeder is meshed (loop through {', '.join(names)}); open a switch to make it radial"
    raise MeshedFeederError(msg)


def _fold_aux_leaves(graph: nx.MultiGraph, real: set[int], root: int) -> list[int]:
    """Remove dead-end auxiliary ppc buses (open-switch line ends); return removed rows."""
    removed: list[int] = []
    changed = True
    while changed:
        changed = False
        for node in list(graph.nodes):
            if node in real or node == root or graph.degree(node) != 1:
                continue
            ((_, _, row),) = graph.edges(node, keys=True)
            removed.append(row)
            graph.remove_node(node)
            changed = True
    if set(graph.nodes) - real - {root}:
        msg = "feeder has internal auxiliary nodes (e.g. trafo3w); only lines and 2W trafos"
        raise NotImplementedError(msg)
    return removed


def _root_ppc_bus(
    net: pp.pandapowerNet, bus_lookup: np.ndarray, ext_grid: int | None
) -> tuple[int, int, float]:
    """Return ``(ext_grid bus, its ppc bus, vm_pu)`` of the root ext_grid."""
    ext = net.ext_grid[net.ext_grid.in_service]
    if ext_grid is not None:
        ext = ext.loc[[ext_grid]]
    elif len(ext) != 1:
        msg = f"net has {len(ext)} in-service ext_grids {list(ext.index)}; pass ext_grid=<index>"
        raise ValueError(msg)
    for table in ("gen", "ward", "xward"):
        if len(net[table]) and net[table].in_service.any():
            msg = f"in-service {table} elements are not supported in a LinDistFlow feeder"
            raise NotImplementedError(msg)
    bus = int(ext.bus.iloc[0])
    return bus, int(bus_lookup[bus]), float(ext.vm_pu.iloc[0])


def _row_data(
    branch: np.ndarray, row: int, parent: int
) -> tuple[complex, complex, complex, float, float]:
    """Return ``(y_series, y_shunt_parent_side, y_shunt_child_side, tap_p, tap_c)`` of a ppc row."""
    if branch[row, BR_R_ASYM].real or branch[row, BR_X_ASYM].real:
        msg = "branches with asymmetric series impedance are not supported"
        raise NotImplementedError(msg)
    z = complex(branch[row, BR_R].real, branch[row, BR_X].real)
    g, b = branch[row, BR_G].real, branch[row, BR_B].real
    y_from = complex(g, b) / 2.0
    y_to = complex(g + branch[row, BR_G_ASYM].real, b + branch[row, BR_B_ASYM].real) / 2.0
    tap = float(branch[row, TAP].real) or 1.0
    if int(branch[row, F_BUS].real) == parent:
        return 1.0 / z, y_from, y_to, tap, 1.0
    return 1.0 / z, y_to, y_from, 1.0, tap


def _node_order(graph: nx.MultiGraph, root: int) -> tuple[list[int], dict[int, int]]:
    """Return ppc buses in breadth-first order and each one's parent ppc bus."""
    order = [root]
    parent_of = {root: -1}
    for u, v in nx.bfs_edges(nx.Graph(graph), root):
        order.append(v)
        parent_of[v] = u
    return order, parent_of


def _check_single_root(
    net: pp.pandapowerNet, bus_lookup: np.ndarray, graph: nx.MultiGraph, root: int
) -> None:
    """Raise if another in-service ext_grid feeds the root's component."""
    ext = net.ext_grid[net.ext_grid.in_service]
    others = {int(bus_lookup[b]) for b in ext.bus} - {root}
    if others & set(graph.nodes):
        msg = "more than one ext_grid feeds this feeder; it is not a single radial LDA"
        raise MeshedFeederError(msg)


def _merge_parallel(
    branch: np.ndarray, rows: list[int], parent: int
) -> tuple[complex, complex, complex, tuple[float, float], list[float]]:
    """Merge parallel ppc rows into one edge.

    Returns ``(z_series, y_shunt_a, y_shunt_b, (tap_p, tap_c), shares)`` in pu, where
    ``shares`` is each row's fraction of the edge current (``|y_k| / |sum y|``).
    """
    data = [_row_data(branch, row, parent) for row in rows]
    taps = {(round(d[3], 9), round(d[4], 9)) for d in data}
    if len(taps) > 1:
        msg = f"parallel branches {rows} have different tap ratios (circulating current)"
        raise NotImplementedError(msg)
    y_sum = sum(d[0] for d in data)
    shares = [abs(d[0]) / abs(y_sum) for d in data]
    y_a, y_b = sum(d[1] for d in data), sum(d[2] for d in data)
    return 1.0 / y_sum, y_a, y_b, (data[0][3], data[0][4]), shares


def _node_shunts(
    ppc: dict, folded: list[int], order: list[int], node_of: dict[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Return bus shunt ``(g, b)`` per node (pu): ppc bus shunts plus folded dead-end lines."""
    branch = ppc["branch"]
    gs = ppc["bus"][order, GS].real / ppc["baseMVA"]
    bs = ppc["bus"][order, BS].real / ppc["baseMVA"]
    for row in folded:
        f, t = int(branch[row, F_BUS].real), int(branch[row, T_BUS].real)
        keep = node_of[f if f in node_of else t]
        gs[keep] += branch[row, BR_G].real
        bs[keep] += branch[row, BR_B].real
    return gs, bs


def build_radial_network(net: pp.pandapowerNet, ext_grid: int | None = None) -> RadialNetwork:
    """Build the radial tree of ``net`` from pandapower's internal case.

    Parameters
    ----------
    net : pandapowerNet
        Radial feeder; the root is its in-service ``ext_grid``. Not modified.
    ext_grid : int, optional
        Index of the root ext_grid when ``net`` has several (one feeder per ext_grid; buses
        not connected to it are left out).

    Returns
    -------
    RadialNetwork
        Per-unit arrays on base ``net.sn_mva`` (MVA).

    Raises
    ------
    MeshedFeederError
        If the energised network contains a loop.

    """
    ppc, bus_lookup, branch_lookup = _internal_case(net)
    branch = ppc["branch"]
    owner = _branch_owner(branch_lookup)
    index_of = {el: net[el].index for el in branch_lookup}
    root_bus, root, vm_root_pu = _root_ppc_bus(net, bus_lookup, ext_grid)
    graph = _edge_graph(ppc, root)
    _check_single_root(net, bus_lookup, graph, root)
    _check_radial(graph, owner, index_of)
    energised = [int(b) for b in net.bus.index if int(bus_lookup[b]) in graph]
    real = {int(bus_lookup[b]) for b in energised}
    folded = _fold_aux_leaves(graph, real, root)
    order, parent_of = _node_order(graph, root)
    node_of = {ppc_bus: i for i, ppc_bus in enumerate(order)}
    n = len(order)
    arr = {k: np.zeros(n) for k in ("r", "x", "ga", "ba", "gb", "bb", "tp", "tc")}
    parent = np.full(n, -1)
    elements: list[tuple[str, int, int, float, float]] = []
    for c in range(1, n):
        p_ppc = parent_of[order[c]]
        parent[c] = node_of[p_ppc]
        rows = sorted(graph.get_edge_data(p_ppc, order[c]))
        z, y_a, y_b, taps, shares = _merge_parallel(branch, rows, p_ppc)
        arr["r"][c], arr["x"][c], arr["tp"][c], arr["tc"][c] = z.real, z.imag, *taps
        arr["ga"][c], arr["ba"][c], arr["gb"][c], arr["bb"][c] = (
            y_a.real,
            y_a.imag,
            y_b.real,
            y_b.imag,
        )
        for row, share in zip(rows, shares, strict=True):
            element, pos, _ = owner[row]
            idx = int(index_of[element][pos])
            elements.append((element, idx, c, share, _rating_mva(net, element, idx)))
    gs_pu, bs_pu = _node_shunts(ppc, folded, order, node_of)
    node_bus = np.array(
        [_representative(order[i], bus_lookup, energised, root_bus) for i in range(n)]
    )
    return RadialNetwork(
        base_mva=float(ppc["baseMVA"]),
        node_bus=node_bus,
        bus_node={b: node_of[int(bus_lookup[b])] for b in energised},
        parent=parent,
        r_pu=arr["r"],
        x_pu=arr["x"],
        g_a_pu=arr["ga"],
        b_a_pu=arr["ba"],
        g_b_pu=arr["gb"],
        b_b_pu=arr["bb"],
        tap_p=arr["tp"],
        tap_c=arr["tc"],
        gs_pu=gs_pu,
        bs_pu=bs_pu,
        vm_root_pu=vm_root_pu,
        elements=tuple(elements),
    )


def _representative(
    ppc_bus: int, bus_lookup: np.ndarray, energised: list[int], root_bus: int
) -> int:
    """Return the pandapower bus that names a node (the root bus, else the smallest index)."""
    members = [b for b in energised if int(bus_lookup[b]) == ppc_bus]
    return root_bus if root_bus in members else min(members)
