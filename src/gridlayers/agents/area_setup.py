"""The LDA's area tree for the mosaik agents (Total DSO with ``subareas``), and its messages.

Under ``total_dso`` an LDA with ``subareas`` gets one optimiser per area: its DSO
(:mod:`gridlayers.agents.dso`, the top) and one ``Area`` entity per sub-area
(:mod:`gridlayers.simulators.area`). All are nodes of one
:class:`~gridlayers.areas.nested.NestedArea` tree, built once per LDA model and shared by
the in-process agents; each agent uses only its node's operator, its own devices'
offers (from the aggregator entities of its area) and its children's interface
messages:

``area_offer`` (child -> parent, phase ``t0+0``)
    ``{"area": name, "curve": encoded BidCurve, "q_mvar": float or None}``: the child's
    virtual resource at its PCC (MW export, $/MWh) and its reactive export there at its
    firm point (Mvar, :func:`gridlayers.areas.topology.interface_q_mvar`; the parent
    models it at the PCC bus in place of the child's reactive injections).
``area_award`` (parent -> children, weak, phase ``t0+1``)
    ``{child name: {"award_mw", "price_usd_per_mwh", "vm_pu"}}``: the pseudo-device's
    set-point (MW), the parent's DLMP at the PCC ($/MWh) and the voltage of the parent's
    dispatch there (pu).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gridlayers.areas import fallback
from gridlayers.areas.contract import area_device_id, award_values, offer_values
from gridlayers.areas.fallback import pcc_range_mw
from gridlayers.areas.nested import AreaSpec, NestedArea, build_nested
from gridlayers.areas.operator import bus_voltage_pu
from gridlayers.areas.topology import split_fixed
from gridlayers.domain import BidCurve
from gridlayers.dso.operator import Disaggregation
from gridlayers.dso.strategies import make_dso
from gridlayers.lda import LDAModel
from gridlayers.numerics import MAX_ABS_VALUE
from gridlayers.simulators.codec import decode_curve

#: Area tree per LDA model (by id; an entry goes when its model is garbage collected).
_TREES: dict[int, NestedArea] = {}


def nested(model: LDAModel, paradigm: str) -> bool:
    """Whether the LDA runs its sub-areas (``subareas`` under ``total_dso``)."""
    return paradigm == "total_dso" and bool(model.config.subareas)


def area_specs(configs: list[Any]) -> tuple[AreaSpec, ...]:
    """Convert the scenario's ``subareas`` (recursively) to :class:`AreaSpec`."""
    return tuple(
        AreaSpec(c.name, c.pcc_bus, c.max_import_mw, c.max_export_mw, area_specs(c.subareas))
        for c in configs
    )


def lda_areas(model: LDAModel, max_blocks: int = 10) -> NestedArea:
    """Return the LDA's area tree (built on first use, once per LDA model).

    The top's operator is the scenario's DSO strategy (as :func:`build_dso`); every
    sub-area's a :class:`~gridlayers.areas.operator.SubAreaOperator` with the LDA's block
    slots and slack penalty.
    """
    from gridlayers.agents.dso_setup import device_buses, dso_strategy_params, linear_feeder

    tree = _TREES.get(id(model))
    if tree is None:
        strategy, params = dso_strategy_params(model, max_blocks)
        sub = {
            "blocks_per_device": params["blocks_per_device"],
            "slack_penalty_usd_per_mwh": model.config.limits.slack_penalty_usd_per_mwh,
        }
        tree = build_nested(
            model.net,
            linear_feeder(model),
            device_buses(model),
            area_specs(model.config.subareas),
            lambda f, d: make_dso(strategy, f, d, **params),
            name=model.name,
            **sub,
        )
        _TREES[id(model)] = tree
        weakref.finalize(model, _TREES.pop, id(model), None)
    return tree


def find_area(tree: NestedArea, name: str) -> NestedArea:
    """Return the node named ``name`` of the tree (``KeyError`` if none)."""
    for area in tree.walk():
        if area.name == name:
            return area
    msg = f"no area {name!r} in LDA {tree.name!r}"
    raise KeyError(msg)


def area_aggregators(model: LDAModel) -> dict[str, list[str]]:
    """Return, per area of the LDA (its name at the top), its aggregators with devices there."""
    owner = {d: a.name for a in lda_areas(model).walk() for d in a.own_devices}
    out: dict[str, list[str]] = {a.name: [] for a in lda_areas(model).walk()}
    for name, agg in model.aggregators.items():
        for area in dict.fromkeys(owner[d.device_id] for d in agg.devices):
            out[area].append(name)
    return out


def devices_in_area(model: LDAModel, area: str, aggregator: str) -> list[Any]:
    """Return the devices of ``aggregator`` that belong to ``area`` itself (not a child)."""
    own = find_area(lda_areas(model), area).own_devices
    return [d for d in model.aggregators[aggregator].devices if d.device_id in own]


# ------------------------------------------------------------------- messages
def parent_inputs(
    node: NestedArea,
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
    area_offers: Mapping[str, Any] | None,
) -> tuple[pd.Series, pd.Series, dict[str, BidCurve]]:
    """Return the node operator's inputs: fixed injections without its children's, offers.

    ``p_fixed_mw``/``q_fixed_mvar``: the LDA's forecast per bus (MW, Mvar); ``offers``:
    the node's own devices' (MW, $/MWh); ``area_offers``: the ``area_offer`` messages of
    its children (mosaik input ``{source: message}``): a child's curve becomes the
    pseudo-device's offer, its ``q_mvar`` the reactive injection at its PCC bus (Mvar).
    """
    p = p_fixed_mw[p_fixed_mw.index.isin(node.buses)]
    q = q_fixed_mvar[q_fixed_mvar.index.isin(node.buses)]
    got = {m["area"]: m for m in (area_offers or {}).values()}
    merged = dict(offers)
    for child in node.children:
        if child.name not in got:
            msg = f"area {node.name!r}: no offer from its sub-area {child.name!r}"
            raise KeyError(msg)
        merged[area_device_id(child.name)] = decode_curve(got[child.name]["curve"])
        q_pcc = got[child.name].get("q_mvar")
        p, q = split_fixed(p, q, child.buses, child.pcc_bus, q_pcc)
    return p, q, merged


def child_awards(
    node: NestedArea, result: Disaggregation, price_usd_per_mwh: float
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Split a node's disaggregation into its own devices' set-points and its children's awards.

    Returns ``({device id: MW}, {child: {"award_mw", "price_usd_per_mwh", "vm_pu"}})``;
    a child's price is the node's DLMP at the PCC ($/MWh; the node's interface price if
    none), its voltage that of the node's dispatch at the PCC (pu).
    """
    own = {d: float(p) for d, p in result.setpoints_mw.items() if d in node.own_devices}
    # a strategy without a dispatched operating point: the feeder's base point
    point = getattr(node.operator, "operating_point", node.feeder.base_point)
    awards = {}
    for child in node.children:
        price = result.dlmp_usd_per_mwh.get(child.pcc_bus, price_usd_per_mwh)
        price = float(price) if pd.notna(price) else float(price_usd_per_mwh)
        awards[child.name] = {
            "award_mw": float(result.setpoints_mw[area_device_id(child.name)]),
            "price_usd_per_mwh": price,
            "vm_pu": bus_voltage_pu(node.feeder, point, child.pcc_bus),
        }
    return own, awards


def interface_values(node: NestedArea, offers: Mapping[str, BidCurve]) -> int:
    """Count the values crossing the node's child interfaces: curves up, awards down (-)."""
    return sum(offer_values(offers[area_device_id(c.name)]) + award_values() for c in node.children)


# ------------------------------------------------------ network-blind fallback
def _blind_view(
    node: NestedArea,
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
    area_offers: Mapping[str, Any] | None,
) -> tuple[pd.Series, pd.Series, dict[str, BidCurve]]:
    """Return the node's inputs (:func:`parent_inputs`), non-finite or extreme values 0."""
    p, q, view = parent_inputs(node, p_fixed_mw, q_fixed_mvar, offers, area_offers)
    ok_p, ok_q = p.abs() <= MAX_ABS_VALUE, q.abs() <= MAX_ABS_VALUE  # False for NaN
    return p.where(ok_p, 0.0), q.where(ok_q, 0.0), view


def blind_resource(
    node: NestedArea,
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
    area_offers: Mapping[str, Any] | None,
    max_blocks: int,
) -> BidCurve:
    """Network-blind resource of a node (its operator's problem failed): MW, $/MWh.

    The linear power flow's export of the node's uncontrolled injections plus its own
    devices' and its children's offers merged in merit order, clipped to the node's PCC
    limit (:func:`gridlayers.areas.fallback.blind_resource`), like the DSO's last resort.
    """
    p, q, view = _blind_view(node, p_fixed_mw, q_fixed_mvar, offers, area_offers)
    limits = pcc_range_mw(node.operator)
    return fallback.blind_resource(node.feeder, p, q, view, max_blocks, limits).curve


def blind_split(  # noqa: PLR0913
    node: NestedArea,
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
    area_offers: Mapping[str, Any] | None,
    award_mw: float,
    price_usd_per_mwh: float,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Network-blind split of a node's award among its devices and children (MW).

    The award (held within the node's PCC limit) minus the uncontrolled export (linear
    power flow) in merit order over the own devices' offers and the children's resources
    (:func:`gridlayers.areas.fallback.blind_split`); a child's award carries the
    interface price ($/MWh) and the PCC voltage of the linear power flow of the split
    (pu). Returns what :func:`child_awards` returns.
    """
    p, q, view = _blind_view(node, p_fixed_mw, q_fixed_mvar, offers, area_offers)
    limits = pcc_range_mw(node.operator)
    split, vm = fallback.blind_split(node.feeder, node.devices, p, q, view, award_mw, limits)
    own = {d: v for d, v in split.items() if d in node.own_devices}
    awards = {
        c.name: {
            "award_mw": split[area_device_id(c.name)],
            "price_usd_per_mwh": float(price_usd_per_mwh),
            "vm_pu": float(vm[c.pcc_bus]),
        }
        for c in node.children
    }
    return own, awards
