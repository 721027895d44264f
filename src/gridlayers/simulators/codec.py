"""JSON-ready encodings of domain values that cross mosaik (and process) boundaries."""

from __future__ import annotations

from typing import Any

from gridlayers.domain import BidBlock, BidCurve


def encode_curve(curve: BidCurve) -> dict[str, Any]:
    """Encode a BidCurve as ``{"p_min_mw": float, "blocks": [[q_mw, price_usd_per_mwh], ...]}``."""
    return {
        "p_min_mw": float(curve.p_min_mw),
        "blocks": [[float(b.quantity_mw), float(b.price_usd_per_mwh)] for b in curve.blocks],
    }


def decode_curve(data: dict[str, Any]) -> BidCurve:
    """Decode :func:`encode_curve` output."""
    return BidCurve(data["p_min_mw"], tuple(BidBlock(q, p) for q, p in data["blocks"]))


def curve_values(data: dict[str, Any]) -> int:
    """Return how many numbers an encoded curve carries (for information-exchange KPIs)."""
    return 1 + 2 * len(data["blocks"])


def first_value(inputs: dict[str, Any], attr: str) -> Any:
    """Return the single value of ``attr`` in one entity's inputs (or None)."""
    values = inputs.get(attr)
    if not values:
        return None
    return next(iter(values.values()))
