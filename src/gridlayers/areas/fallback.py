"""An area operator's records of its fallbacks and its network-blind last resort.

The ladder is the DSO's (:mod:`gridlayers.agents.dso`): if an area's hard-limit problem
is infeasible its operator solves the soft-limit model (feeder limits and, for a
sub-area, its PCC limit with penalised slack, :mod:`gridlayers.areas.operator`); only if
that fails too (or its inputs are refused) does it act **network-blind**: its resource
is the linear power flow's export of its uncontrolled injections plus its devices' and
children's offers merged in merit order, **clipped to its PCC limit** (the nearest
point of the merged range if it lies wholly beyond the limit), and an award is split in
merit order over the same, held within the PCC limit. Every use is recorded with the
DSO's wording (:func:`soft_note`, :func:`blind_note`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gridlayers.der.curves import split_award
from gridlayers.domain.bid_curve import BidBlock, BidCurve
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.virtual_resource import VirtualResource, interface_curve

#: Endings of fallback records, as the DSO agent's (``dso_report["infeasible"]``).
SOFT = "soft-limit fallback used"
BLIND = "network-blind fallback used"
#: Blocks narrower than this are dropped when a curve is clipped (MW).
MIN_BLOCK_MW = 1e-9


def pcc_range_mw(operator: Any) -> tuple[float, float]:
    """Return the operator's allowed PCC export range ``(-max_import_mw, max_export_mw)`` (MW).

    Infinite where unlimited (both for a DSO, which has no PCC limit).
    """
    imp = getattr(operator, "max_import_mw", None)
    exp = getattr(operator, "max_export_mw", None)
    return (-math.inf if imp is None else -float(imp), math.inf if exp is None else float(exp))


def soft_note(phase: str, result: Any) -> str | None:
    """Return the record of a soft-limit fallback (``result.slack`` set), else ``None``.

    ``result``: a :class:`~gridlayers.dso.virtual_resource.VirtualResource` or
    :class:`~gridlayers.dso.operator.Disaggregation`; the PCC slack (MW) is named if any.
    """
    slack = getattr(result, "slack", None)
    if slack is None:
        return None
    reason = getattr(result, "hard_limit_failure", None) or "area optimisation failed"
    pcc = float(slack.get("pcc_mw", 0.0))
    beyond = f" (PCC limit exceeded by {pcc:.4f} MW)" if pcc > 0.0 else ""
    return f"{phase}: {reason}; {SOFT}{beyond}"


def blind_note(phase: str, exc: BaseException) -> str:
    """Return the record of a network-blind fallback after ``exc``."""
    return f"{phase}: {exc}; {BLIND}"


def clip_curve(curve: BidCurve, lo_mw: float, hi_mw: float) -> BidCurve:
    """Restrict a curve (MW, $/MWh) to exports in ``[lo_mw, hi_mw]`` (MW).

    Blocks keep their prices. If the curve's range lies wholly beyond the interval, the
    curve becomes its end point nearest to it (a fixed point: the least violation).
    """
    a, b = curve.p_min_mw, curve.p_max_mw
    if b <= lo_mw or a >= hi_mw:
        return BidCurve.fixed(b if b <= lo_mw else a)
    low, high = max(a, lo_mw), min(b, hi_mw)
    if (low, high) == (a, b):
        return curve
    blocks, x = [], a
    for block in curve.blocks:
        width = min(x + block.quantity_mw, high) - max(x, low)
        if width > MIN_BLOCK_MW:
            blocks.append(BidBlock(width, block.price_usd_per_mwh))
        x += block.quantity_mw
    return BidCurve(low, tuple(blocks))


def _firm_mw(feeder: LinDistFlowFeeder, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series) -> float:
    """Linear power flow's interface export (MW) of the uncontrolled injections."""
    return float(feeder.solve_power_flow(p_fixed_mw, q_fixed_mvar).interface_p_mw)


def blind_resource(  # noqa: PLR0913
    feeder: LinDistFlowFeeder,
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
    max_blocks: int,
    limits_mw: tuple[float, float] = (-math.inf, math.inf),
) -> VirtualResource:
    """Network-blind resource (module notes): MW, $/MWh, clipped to ``limits_mw`` (MW).

    ``p_fixed_mw``/``q_fixed_mvar``: the area's uncontrolled injections per bus (MW,
    Mvar, finite); ``offers``: its children's (devices and child areas, MW, $/MWh).
    """
    firm = _firm_mw(feeder, p_fixed_mw, q_fixed_mvar)
    lo = sum(c.p_min_mw for c in offers.values())
    hi = sum(c.p_max_mw for c in offers.values())
    unit = dict.fromkeys(offers, 1.0)
    curve, _ = interface_curve(offers, unit, (firm + lo, firm + hi), (lo, hi), max_blocks)
    curve = clip_curve(curve, *limits_mw)
    p_lo, p_hi = curve.p_min_mw, curve.p_max_mw
    return VirtualResource(curve, p_lo, p_hi, lo, hi, 1.0, 0.0, 0, 0, "network_blind")


def blind_split(  # noqa: PLR0913
    feeder: LinDistFlowFeeder,
    devices: Mapping[str, int],
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
    award_mw: float,
    limits_mw: tuple[float, float] = (-math.inf, math.inf),
) -> tuple[dict[str, float], pd.Series]:
    """Network-blind split of an award (MW) among the children (module notes).

    The award, held within ``limits_mw`` (MW), minus the uncontrolled export (linear
    power flow) in merit order over ``offers`` (children at the buses ``devices``).
    Returns the set-point per child (MW) and the linear power flow's voltage per bus of
    that split (pu; a child area's PCC voltage for its model).
    """
    p = p_fixed_mw.copy()
    award = min(max(float(award_mw), limits_mw[0]), limits_mw[1])
    curves = list(offers.values())
    lo, hi = sum(c.p_min_mw for c in curves), sum(c.p_max_mw for c in curves)
    total = min(max(award - _firm_mw(feeder, p, q_fixed_mvar), lo), hi)
    split = dict(zip(offers, split_award(curves, total), strict=True))
    for child, p_mw in split.items():
        bus = devices[child]
        p.loc[bus] = p.get(bus, 0.0) + p_mw
    return {c: float(v) for c, v in split.items()}, feeder.solve_power_flow(p, q_fixed_mvar).vm_pu
