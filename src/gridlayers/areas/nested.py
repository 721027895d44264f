"""The recursion of the layered paradigm inside one LDA: areas within areas.

:class:`NestedArea` is one area (the LDA itself, a microgrid, a building) with its own
operator (:class:`~gridlayers.areas.contract.AreaOperator`), its own devices and its
child areas. Per interval:

1. **up** (:meth:`NestedArea.virtual_resource`): every child builds its virtual resource
   from its own devices' offers, its children's resources and its uncontrolled
   injections; the area then sees each child as ONE pseudo-device
   ``area:<name>`` at the child's PCC bus whose offer is that resource, drops the child's
   uncontrolled active injections from its own view (they are in the child's offer) and
   builds its own resource from its own devices and the pseudo-devices;
2. **down** (:meth:`NestedArea.disaggregate`): the area disaggregates its award; the
   pseudo-device's set-point becomes the child's award, the area's DLMP at the PCC bus
   its price and the voltage of the area's dispatch at the PCC bus the child's root
   voltage (:meth:`~gridlayers.areas.operator.SubAreaOperator.set_root_voltage`; kept
   for the child's next resource; before the first award: the parent's base point at
   build time); the child disaggregates in turn.

No operator ever sees a device or a limit of another area: a parent's inputs are its
own devices' offers and its children's interface curves. :class:`NestedArea` satisfies
the contract too (so the LDA's DSO agent can hold one as its core).
:attr:`NestedArea.interfaces` records what crossed each child interface in the last
interval. Every level has the DSO's fallbacks (:mod:`gridlayers.areas.fallback`): the
soft-limit model (a sub-area's PCC limit then has penalised slack), then the
network-blind resource and split within its PCC limit; each use is recorded in
:attr:`NestedArea.fallback` and the parent's interface row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from gridlayers.areas.contract import AreaOperator, area_device_id, award_values, offer_values
from gridlayers.areas.fallback import (
    blind_note,
    blind_resource,
    blind_split,
    pcc_range_mw,
    soft_note,
)
from gridlayers.areas.operator import SubAreaOperator, bus_voltage_pu
from gridlayers.areas.topology import (
    interface_q_mvar,
    split_fixed,
    subarea_net,
    subtree_buses,
)
from gridlayers.domain.bid_curve import BidCurve
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.offer_blocks import InfeasibleDSOError
from gridlayers.dso.operator import Disaggregation
from gridlayers.dso.virtual_resource import VirtualResource


@dataclass(frozen=True)
class AreaSpec:
    """A sub-area as its operator knows it (see ``subareas`` in the scenario reference).

    Attributes
    ----------
    name : str
        Unique within the LDA.
    pcc_bus : int
        Feeder bus of the point of common coupling (the sub-area is its subtree).
    max_import_mw, max_export_mw : float or None
        Limits on the net import / export at the PCC (MW); ``None``: unlimited.
    subareas : tuple of AreaSpec
        Nested sub-areas (inside this one's subtree, disjoint).

    """

    name: str
    pcc_bus: int
    max_import_mw: float | None = None
    max_export_mw: float | None = None
    subareas: tuple[AreaSpec, ...] = ()


@dataclass
class NestedArea:
    """One area, its operator and its child areas (see the module notes).

    Attributes
    ----------
    name : str
        Area name (the LDA's name at the top).
    operator : AreaOperator
        This level's optimiser: devices are its own devices plus ``area:<child>``.
    buses : frozenset of int
        Pandapower buses of the area, its children's included.
    own_devices : dict of str to int
        Real devices of this area outside every child area -> bus.
    children : list of NestedArea
        Child areas.
    pcc_bus : int or None
        PCC bus in the parent (``None`` at the top).
    parent : str or None
        Name of the parent area.
    interfaces : list of dict
        Per child interface (recursively) of the last interval: ``area``, ``parent``,
        ``pcc_bus``, ``p_min_mw``, ``p_max_mw`` (its resource's range, MW),
        ``offer_values``, ``cleared_mw`` (award, MW), ``price_usd_per_mwh`` and
        ``values`` (offer plus award values crossing it, -) and ``fallback`` (the child's
        fallback records, :mod:`gridlayers.areas.fallback`, or ``None``).
    q_export_mvar : float or None
        Reactive export at the PCC of the last resource's firm point (Mvar,
        :func:`~gridlayers.areas.topology.interface_q_mvar`): what the parent sees there.
    fallback : list of str
        This level's fallback records of the last interval (soft-limit or network-blind,
        offer and settle), as the DSO agent words them.

    """

    name: str
    operator: AreaOperator
    buses: frozenset[int]
    own_devices: dict[str, int]
    children: list[NestedArea] = field(default_factory=list)
    pcc_bus: int | None = None
    parent: str | None = None
    interfaces: list[dict[str, Any]] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    q_export_mvar: float | None = None

    @property
    def devices(self) -> dict[str, int]:
        """Return the children as this level's operator sees them (id or ``area:`` -> bus)."""
        return self.operator.devices

    @property
    def feeder(self) -> LinDistFlowFeeder:
        """The linear model of this level's operator."""
        return self.operator.feeder

    def walk(self) -> Iterator[NestedArea]:
        """Yield this area and every descendant, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def set_root_voltage(self, vm_pu: float) -> None:
        """Set the PCC voltage (pu) this area's operator assumes, if it models one."""
        setter = getattr(self.operator, "set_root_voltage", None)
        if setter is not None:
            setter(vm_pu)

    # ---------------------------------------------------------------- up
    def virtual_resource(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> VirtualResource:
        """Build the area's resource from its children's (see the module notes).

        Parameters
        ----------
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled injection per bus (MW, Mvar, injection positive); at
            least the area's buses.
        offers : mapping of str to BidCurve
            Offer of every real device of the area and its descendants (MW, $/MWh).

        Returns
        -------
        VirtualResource
            The area's interface curve and range (MW, $/MWh); if its operator's problem
            failed even with soft limits, the network-blind one (module
            :mod:`gridlayers.areas.fallback`; recorded in :attr:`fallback`).

        """
        p = p_fixed_mw[p_fixed_mw.index.isin(self.buses)]
        q = q_fixed_mvar[q_fixed_mvar.index.isin(self.buses)]
        own = {d: offers[d] for d in self.own_devices}
        self._child_vr: dict[str, VirtualResource] = {}
        for child in self.children:
            vr = child.virtual_resource(p, q, offers)
            self._child_vr[child.name] = vr
            own[area_device_id(child.name)] = vr.curve
            p, q = split_fixed(p, q, child.buses, child.pcc_bus, child.q_export_mvar)
        self._offers, self._inputs = dict(offers), (p, q, own)
        self.fallback = []
        if self.pcc_bus is not None:  # the reactive export the parent sees at the PCC
            self.q_export_mvar = interface_q_mvar(self.feeder, p, q)
        try:
            vr = self.operator.virtual_resource(p, q, own)
        except InfeasibleDSOError as exc:  # not even the soft-limit problem solved
            self.fallback.append(blind_note("offer", exc))
            limits = pcc_range_mw(self.operator)
            return blind_resource(self.feeder, p, q, own, self.operator.max_blocks, limits)
        self._record(soft_note("offer", vr))
        return vr

    def _record(self, note: str | None) -> None:
        if note is not None:
            self.fallback.append(note)

    # -------------------------------------------------------------- down
    def _dispatch(
        self, award_mw: float, price_usd_per_mwh: float
    ) -> tuple[Disaggregation, Callable[[int], float]]:
        """Disaggregate at this level; return it and the PCC voltage (pu) per bus of it.

        Falls back to the network-blind split (recorded in :attr:`fallback`) if the
        operator's problem fails even with soft limits: DLMPs NaN, cost as offered.
        """
        try:
            own = self.operator.disaggregate(award_mw, price_usd_per_mwh)
        except InfeasibleDSOError as exc:
            self.fallback.append(blind_note("settle", exc))
            p, q, view = self._inputs
            limits = pcc_range_mw(self.operator)
            split, vm = blind_split(self.feeder, self.devices, p, q, view, award_mw, limits)
            cost = sum(view[d].cost_usd_per_h(v) for d, v in split.items())
            dlmp = pd.Series(np.nan, index=sorted(self.buses), dtype=float)
            own = Disaggregation(split, dlmp, float(award_mw), float(cost), float("nan"), 0.0)
            return own, lambda bus: float(vm[bus])
        self._record(soft_note("settle", own))
        point = getattr(self.operator, "operating_point", self.feeder.base_point)
        return own, lambda bus: bus_voltage_pu(self.feeder, point, bus)

    def disaggregate(self, award_mw: float, interface_price_usd_per_mwh: float) -> Disaggregation:
        """Disaggregate the award here, then each child's in turn (MW, $/MWh).

        Returns the set-points of every real device of the area and its descendants
        (MW), the DLMPs of every bus (a child's buses: the child's DLMPs, $/MWh; NaN
        after a network-blind split), the as-offered cost of the real devices ($/h), the
        summed solve time (s) and the soft-limit slack of this level or any below.
        """
        start = time.perf_counter()
        self.interfaces = []
        own, vm_pu = self._dispatch(award_mw, interface_price_usd_per_mwh)
        setpoints = {d: own.setpoints_mw[d] for d in self.own_devices}
        dlmp = own.dlmp_usd_per_mwh.copy()
        slack = own.slack
        for child in self.children:
            key = area_device_id(child.name)
            award = float(own.setpoints_mw[key])
            price = float(own.dlmp_usd_per_mwh.get(child.pcc_bus, interface_price_usd_per_mwh))
            if not np.isfinite(price):
                price = float(interface_price_usd_per_mwh)
            # the PCC voltage of this level's dispatch goes down with the award (the
            # child's resource of the next interval is built at it too)
            child.set_root_voltage(vm_pu(child.pcc_bus))
            result = child.disaggregate(award, price)
            setpoints.update(result.setpoints_mw)
            dlmp.loc[result.dlmp_usd_per_mwh.index] = result.dlmp_usd_per_mwh
            slack = slack or result.slack
            vr = self._child_vr[child.name]
            self.interfaces.append(
                {
                    "area": child.name,
                    "parent": self.name,
                    "pcc_bus": child.pcc_bus,
                    "p_min_mw": vr.p_min_mw,
                    "p_max_mw": vr.p_max_mw,
                    "offer_values": offer_values(vr.curve),
                    "cleared_mw": award,
                    "price_usd_per_mwh": price,
                    "values": offer_values(vr.curve) + award_values(),
                    "fallback": "; ".join(child.fallback) or None,
                }
            )
            self.interfaces.extend(child.interfaces)
        cost = sum(self._offers[d].cost_usd_per_h(p) for d, p in setpoints.items())
        return replace(
            own,
            setpoints_mw=setpoints,
            dlmp_usd_per_mwh=dlmp,
            cost_usd_per_h=float(cost),
            solve_seconds=time.perf_counter() - start,
            slack=slack,
        )


def build_nested(  # noqa: PLR0913
    net: Any,
    feeder: LinDistFlowFeeder,
    devices: Mapping[str, int],
    specs: tuple[AreaSpec, ...],
    make_top: Callable[[LinDistFlowFeeder, dict[str, int]], AreaOperator],
    *,
    name: str = "lda",
    **params: Any,
) -> NestedArea:
    """Build the recursion for one LDA.

    Parameters
    ----------
    net : pandapowerNet
        The LDA's feeder (not modified).
    feeder : LinDistFlowFeeder
        Its linear model (its limits are every sub-area's too).
    devices : mapping of str to int
        Every real DER device of the LDA -> bus.
    specs : tuple of AreaSpec
        The LDA's sub-areas (nested).
    make_top : callable
        ``make_top(feeder, devices)`` builds the LDA's own operator (the scenario's DSO
        strategy) over its own devices and the top sub-areas' pseudo-devices.
    name : str
        The LDA's name.
    **params
        :class:`~gridlayers.areas.operator.SubAreaOperator` keywords for every sub-area
        (``blocks_per_device``, ``slack_penalty_usd_per_mwh``, ...); a sub-area's
        ``max_blocks`` is ``blocks_per_device`` so its resource fits its parent's slots.

    Raises
    ------
    SubAreaError
        A PCC bus outside its parent's area, or overlapping siblings.

    """
    all_buses = frozenset(feeder.bus_node_bus)
    return _build(net, feeder, dict(devices), specs, make_top, name, all_buses, None, None, params)


def _build(  # noqa: PLR0913
    net: Any,
    feeder: LinDistFlowFeeder,
    devices: dict[str, int],
    specs: tuple[AreaSpec, ...],
    make_op: Callable[[LinDistFlowFeeder, dict[str, int]], AreaOperator],
    name: str,
    buses: frozenset[int],
    pcc_bus: int | None,
    parent: str | None,
    params: dict[str, Any],
) -> NestedArea:
    from gridlayers.areas.topology import SubAreaError

    children: list[NestedArea] = []
    taken: set[int] = set()
    for spec in specs:
        if spec.pcc_bus not in buses:
            msg = f"sub-area {spec.name!r}: bus {spec.pcc_bus} is not inside {name!r}"
            raise SubAreaError(msg)
        sub_buses = subtree_buses(feeder, spec.pcc_bus)
        if taken & sub_buses:
            msg = f"sub-area {spec.name!r} overlaps a sibling inside {name!r}"
            raise SubAreaError(msg)
        taken |= sub_buses
        node = feeder.node_index[feeder.bus_node_bus[spec.pcc_bus]]
        vm = float(np.sqrt(feeder.base_point.w_pu[node]))
        sub_net = subarea_net(net, sub_buses, spec.pcc_bus, vm)
        sub_feeder = LinDistFlowFeeder(
            sub_net,
            vm_min_pu=feeder.vm_min_pu,
            vm_max_pu=feeder.vm_max_pu,
            max_loading_percent=feeder.max_loading_percent,
        )
        sub_devices = {d: b for d, b in devices.items() if b in sub_buses}
        limits = {"max_import_mw": spec.max_import_mw, "max_export_mw": spec.max_export_mw}
        blocks = params.get("blocks_per_device", 6)

        def make_sub(
            f: LinDistFlowFeeder, devs: dict[str, int], lim=limits, n=blocks
        ) -> AreaOperator:
            return SubAreaOperator(f, devs, **lim, **{**params, "max_blocks": n})

        children.append(
            _build(
                sub_net,
                sub_feeder,
                sub_devices,
                spec.subareas,
                make_sub,
                spec.name,
                sub_buses,
                spec.pcc_bus,
                name,
                params,
            )
        )
    own = {d: b for d, b in devices.items() if b not in taken}
    view = own | {area_device_id(c.name): int(c.pcc_bus) for c in children}
    operator = make_op(feeder, view)
    return NestedArea(name, operator, buses, own, children, pcc_bus, parent)
