"""Sub-areas of a radial feeder: the subtree below a PCC bus, its own net, its AC exchange.

A sub-area with point of common coupling (PCC) bus ``b`` is the subtree of the radial
feeder below and including ``b`` (buses fused to ``b`` or below by closed bus-bus
switches included). Its own network is that subtree with an ext_grid at ``b``; its
interface export is the net power leaving the subtree through the branch that feeds ``b``.
"""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandapower.toolbox as pp_toolbox
import pandas as pd

from gridlayers.dso.lindistflow import LinDistFlowFeeder


class SubAreaError(ValueError):
    """A sub-area definition that does not fit its feeder (bus, nesting, overlap)."""


def subtree_buses(feeder: LinDistFlowFeeder, pcc_bus: int) -> frozenset[int]:
    """Return every energised pandapower bus in the subtree below and including ``pcc_bus``.

    Raises
    ------
    SubAreaError
        ``pcc_bus`` is not an energised bus of the feeder, or is its root (ext_grid) bus.

    """
    node_of = feeder.network.bus_node
    if int(pcc_bus) not in node_of:
        msg = f"bus {pcc_bus} is not an energised bus of the feeder"
        raise SubAreaError(msg)
    top = node_of[int(pcc_bus)]
    if top == 0:
        msg = f"bus {pcc_bus} is the feeder's root (its interface), not a point inside it"
        raise SubAreaError(msg)
    parent = feeder.network.parent
    inside = np.zeros(len(parent), dtype=bool)
    inside[top] = True
    for node in range(len(parent)):  # breadth-first order: a parent precedes its children
        if node != top and parent[node] >= 0 and inside[parent[node]]:
            inside[node] = True
    return frozenset(b for b, node in node_of.items() if inside[node])


def subarea_net(net: pp.pandapowerNet, buses: frozenset[int], pcc_bus: int, vm_pu: float):  # noqa: ANN201
    """Return the sub-area's own pandapower net: the subtree with an ext_grid at the PCC.

    Parameters
    ----------
    net : pandapowerNet
        The parent feeder (not modified).
    buses : frozenset of int
        The sub-area's buses (:func:`subtree_buses`).
    pcc_bus : int
        PCC bus.
    vm_pu : float
        Voltage the new ext_grid holds at the PCC (pu): the parent's voltage there.

    """
    sub = pp_toolbox.select_subnet(net, sorted(buses), include_results=False)
    sub.ext_grid.drop(sub.ext_grid.index, inplace=True)
    pp.create_ext_grid(sub, int(pcc_bus), vm_pu=float(vm_pu), name="pcc")
    return sub


def pcc_branch(net: pp.pandapowerNet, buses: frozenset[int]) -> tuple[str, int, str]:
    """Return ``(table, index, side)`` of the in-service branch feeding the sub-area.

    ``side`` is the column prefix of the end inside the sub-area (``"to"``/``"from"`` for
    a line, ``"hv"``/``"lv"`` for a transformer).

    Raises
    ------
    SubAreaError
        Not exactly one in-service branch crosses the sub-area's boundary.

    """
    found: list[tuple[str, int, str]] = []
    for table, (a, b), (sa, sb) in (
        ("line", ("from_bus", "to_bus"), ("from", "to")),
        ("trafo", ("hv_bus", "lv_bus"), ("hv", "lv")),
    ):
        frame = net[table]
        frame = frame[frame.in_service]
        ina, inb = frame[a].isin(buses), frame[b].isin(buses)
        open_ = _open_branches(net, table)
        for idx in frame.index[ina != inb]:
            if idx not in open_:
                found.append((table, int(idx), sa if ina[idx] else sb))
    if len(found) != 1:
        msg = f"expected one branch into the sub-area, found {found}"
        raise SubAreaError(msg)
    return found[0]


def _open_branches(net: pp.pandapowerNet, table: str) -> set[int]:
    sw = net.switch
    kind = "l" if table == "line" else "t"
    return set(sw.element[(sw.et == kind) & ~sw.closed.astype(bool)].astype(int))


def exchange_mw(net: pp.pandapowerNet, branch: tuple[str, int, str]) -> float:
    """Return the sub-area's realised net export (MW) from a solved AC power flow.

    The active power entering the PCC branch at its sub-area end (pandapower's
    ``p_<side>_mw``, positive from the bus into the branch), i.e. the export.
    """
    table, idx, side = branch
    return float(net[f"res_{table}"].at[idx, f"p_{side}_mw"])


def split_fixed(
    p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, child: frozenset[int], pcc_bus: int
) -> tuple[pd.Series, pd.Series]:
    """Remove a child area's uncontrolled injections from its parent's view (MW, Mvar).

    The child's active injections are part of its virtual resource (its firm part), so
    the parent drops them (no double counting). The reactive ones are not offered: the
    parent keeps their sum at the PCC bus (for its voltages and flows above the PCC).
    """
    p = p_fixed_mw.copy()
    q = q_fixed_mvar.copy()
    mask_p = p.index.isin(child)
    p[mask_p] = 0.0
    mask_q = q.index.isin(child)
    q_child = float(q[mask_q].sum())
    q[mask_q] = 0.0
    q.loc[int(pcc_bus)] = q_child
    return p, q


def subarea_problem(
    feeder: LinDistFlowFeeder, areas: list, field: str = "subareas"
) -> tuple[str, str] | None:
    """Return ``(field, problem)`` of the first sub-area that does not fit the feeder.

    Checks, recursively (``areas``: objects with ``name``, ``pcc_bus``, ``subareas``):
    the PCC bus is an energised non-root bus of the feeder, lies inside its parent area
    (the LDA at the top) and the sub-area is disjoint from its siblings. ``None``: fine.
    """
    return _problem(feeder, areas, field, frozenset(feeder.bus_node_bus), "the LDA")


def _problem(
    feeder: LinDistFlowFeeder, areas: list, field: str, parent: frozenset[int], owner: str
) -> tuple[str, str] | None:
    taken: dict[int, str] = {}
    for i, area in enumerate(areas):
        where = f"{field}[{i}]"
        try:
            buses = subtree_buses(feeder, area.pcc_bus)
        except SubAreaError as exc:
            return f"{where}.pcc_bus", f"sub-area {area.name!r}: {exc}"
        if area.pcc_bus not in parent:
            problem = f"sub-area {area.name!r}: bus {area.pcc_bus} is not inside {owner}"
            return f"{where}.pcc_bus", problem
        overlap = sorted({taken[b] for b in buses if b in taken})
        if overlap:
            problem = f"sub-area {area.name!r} overlaps its sibling(s) {overlap}"
            return f"{where}.pcc_bus", problem
        taken.update(dict.fromkeys(buses, area.name))
        found = _problem(feeder, area.subareas, f"{where}.subareas", buses, repr(area.name))
        if found is not None:
            return found
    return None


def pcc_branches(net: pp.pandapowerNet, areas: list) -> dict[str, tuple[str, int, str]]:
    """Return the PCC branch (:func:`pcc_branch`) of every sub-area, nested ones included.

    ``areas``: objects with ``name``, ``pcc_bus`` and ``subareas`` (the scenario's).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feeder = LinDistFlowFeeder(net)
    out: dict[str, tuple[str, int, str]] = {}
    stack = list(areas)
    while stack:
        area = stack.pop()
        out[area.name] = pcc_branch(net, subtree_buses(feeder, area.pcc_bus))
        stack.extend(area.subareas)
    return out


def realised_exchange_mw(
    net: pp.pandapowerNet,
    branch: tuple[str, int, str],
    line_p_from_mw: np.ndarray,
    trafo_p_hv_mw: np.ndarray,
) -> float:
    """Return a sub-area's realised export (MW) from a feeder power flow's branch flows.

    ``line_p_from_mw`` / ``trafo_p_hv_mw``: active power into each line at its from bus /
    transformer at its HV bus (MW, ``net`` row order; :class:`gridlayers.grid.FeederResult`).
    With the sub-area at the from (HV) end this is its export at the PCC; at the to (LV)
    end, minus the flow entering at the parent's end: the export delivered to the parent
    bus, i.e. after the PCC branch's own losses (at most a few kW on MV lines).
    """
    table, idx, side = branch
    flows = line_p_from_mw if table == "line" else trafo_p_hv_mw
    value = float(np.asarray(flows)[net[table].index.get_loc(idx)])
    return value if side in ("from", "hv") else -value
