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
        names = ", ".join(f"{table} {idx}" for table, idx, _ in found) or "none"
        msg = f"expected one in-service branch into the sub-area, found {len(found)} ({names})"
        raise SubAreaError(msg)
    return found[0]


def _open_branches(net: pp.pandapowerNet, table: str) -> set[int]:
    sw = net.switch
    kind = "l" if table == "line" else "t"
    return set(sw.element[(sw.et == kind) & ~sw.closed.astype(bool)].astype(int))


def split_fixed(
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    child: frozenset[int],
    pcc_bus: int,
    q_pcc_mvar: float | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Remove a child area's uncontrolled injections from its parent's view (MW, Mvar).

    The child's active injections are part of its virtual resource (its firm part), so
    the parent drops them (no double counting). The reactive ones are not offered: the
    parent places ``q_pcc_mvar`` (Mvar, injection positive) at the PCC bus instead, so
    that its model carries the child's reactive export across the interface
    (:func:`interface_q_mvar`), or, if ``None``, the sum of the child's reactive
    injections (which misses the child's reactive losses).
    """
    p = p_fixed_mw.copy()
    q = q_fixed_mvar.copy()
    mask_p = p.index.isin(child)
    p[mask_p] = 0.0
    mask_q = q.index.isin(child)
    q_child = float(q[mask_q].sum()) if q_pcc_mvar is None else float(q_pcc_mvar)
    q[mask_q] = 0.0
    q.loc[int(pcc_bus)] = q_child
    return p, q


def interface_q_mvar(
    feeder: LinDistFlowFeeder, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series
) -> float | None:
    """Return the reactive injection (Mvar) a parent models at a child area's PCC bus.

    The parent's model keeps the child's branches (with zero injections below the PCC),
    so it adds their line charging and linearised losses at zero load by itself. The
    child's reactive export at the PCC (linear power flow of its own model ``feeder`` at
    its uncontrolled injections, MW and Mvar per bus; non-finite or extreme values taken
    as 0) minus its export at zero injections is therefore what the parent places at the
    PCC bus: its model then carries the child's reactive export across the interface
    (measured on the rural feeder: 3e-8 Mvar from the flat model's PCC-branch flow, where
    the sum of the child's reactive injections is 1.1e-3 Mvar off). ``None`` if not finite.
    """
    from gridlayers.numerics import MAX_ABS_VALUE

    p = p_fixed_mw.where(p_fixed_mw.abs() <= MAX_ABS_VALUE, 0.0)  # False for NaN
    q = q_fixed_mvar.where(q_fixed_mvar.abs() <= MAX_ABS_VALUE, 0.0)
    loaded = float(feeder.solve_power_flow(p, q).interface_q_mvar)
    zero = p * 0.0
    value = loaded - float(feeder.solve_power_flow(zero, zero).interface_q_mvar)
    return value if np.isfinite(value) else None


def subarea_problem(
    feeder: LinDistFlowFeeder,
    areas: list,
    field: str = "subareas",
    net: pp.pandapowerNet | None = None,
) -> tuple[str, str, str] | None:
    """Return ``(field, problem, fix)`` of the first sub-area that does not fit the feeder.

    Checks, recursively (``areas``: objects with ``name``, ``pcc_bus``, ``subareas``):
    the PCC bus is an energised non-root bus of the feeder, lies strictly inside its
    parent area (the LDA at the top; not the parent's own PCC, nor a bus fused to it) and
    the sub-area is disjoint from its siblings; with ``net`` (the feeder's pandapower
    net) also that exactly one in-service branch feeds the sub-area
    (:func:`pcc_branch`, where its realised export is measured). ``None``: fine.
    """
    return _problem(feeder, net, areas, field, frozenset(feeder.bus_node_bus), None, "the LDA")


def _problem(  # noqa: PLR0913
    feeder: LinDistFlowFeeder,
    net: pp.pandapowerNet | None,
    areas: list,
    field: str,
    parent: frozenset[int],
    parent_pcc: int | None,
    owner: str,
) -> tuple[str, str, str] | None:
    taken: dict[int, str] = {}
    node_of = feeder.network.bus_node
    for i, area in enumerate(areas):
        where, name = f"{field}[{i}].pcc_bus", f"sub-area {area.name!r}"
        try:
            buses = subtree_buses(feeder, area.pcc_bus)
        except SubAreaError as exc:
            return where, f"{name}: {exc}", "use a bus of the feeder below its interface."
        if area.pcc_bus not in parent:
            problem = f"{name}: bus {area.pcc_bus} is not inside {owner}"
            return where, problem, f"use a bus inside {owner}'s subtree."
        if parent_pcc is not None and node_of[int(area.pcc_bus)] == node_of[int(parent_pcc)]:
            problem = (
                f"{name}: bus {area.pcc_bus} is the PCC of its parent {owner} (or fused to it)"
            )
            return where, problem, f"use a bus strictly below bus {parent_pcc}."
        overlap = sorted({taken[b] for b in buses if b in taken})
        if overlap:
            problem = f"{name} overlaps its sibling(s) {overlap}"
            return where, problem, "give sibling sub-areas PCC buses on separate branches."
        if net is not None:
            try:
                pcc_branch(net, buses)
            except SubAreaError as exc:
                problem = f"{name}: bus {area.pcc_bus}: {exc}"
                fix = "use a PCC bus fed by exactly one in-service line or transformer."
                return where, problem, fix
        taken.update(dict.fromkeys(buses, area.name))
        nested = f"{field}[{i}].subareas"
        found = _problem(feeder, net, area.subareas, nested, buses, area.pcc_bus, repr(area.name))
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
) -> float | None:
    """Return a sub-area's realised export (MW) from a feeder power flow's branch flows.

    ``line_p_from_mw`` / ``trafo_p_hv_mw``: active power into each line at its from bus /
    transformer at its HV bus (MW, ``net`` row order; :class:`gridlayers.grid.FeederResult`).
    With the sub-area at the from (HV) end this is its export at the PCC; at the to (LV)
    end, minus the flow entering at the parent's end: the export delivered to the parent
    bus, i.e. after the PCC branch's own losses (at most a few kW on MV lines). ``None``
    (stored as NULL) if the flow is not finite (the power flow did not converge).
    """
    table, idx, side = branch
    flows = line_p_from_mw if table == "line" else trafo_p_hv_mw
    value = float(np.asarray(flows)[net[table].index.get_loc(idx)])
    if not np.isfinite(value):
        return None
    return value if side in ("from", "hv") else -value
