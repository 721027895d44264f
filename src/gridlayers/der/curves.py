"""Small helpers on :class:`~gridlayers.domain.bid_curve.BidCurve` used by the DER core."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gridlayers.domain.bid_curve import BidBlock, BidCurve

#: Blocks narrower than this (MW) are dropped; prices closer than this ($/MWh) are merged.
TOL = 1e-12


def make_curve(p_min_mw: float, blocks: Iterable[tuple[float, float]]) -> BidCurve:
    """Build a curve from ``(quantity_mw, price_usd_per_mwh)`` pairs, dropping empty blocks.

    Parameters
    ----------
    p_min_mw : float
        Net injection (MW) when no block is cleared.
    blocks : iterable of (float, float)
        Block widths (MW, negative widths are treated as 0) and prices ($/MWh),
        already in non-decreasing price order.

    Returns
    -------
    BidCurve
        The curve without zero-width blocks.

    """
    kept = tuple(BidBlock(q, c) for q, c in blocks if q > TOL)
    return BidCurve(p_min_mw=p_min_mw, blocks=kept)


def merge_bid_curves(curves: Sequence[BidCurve], price_tol: float = 1e-9) -> BidCurve:
    """Aggregate several curves at one node into one.

    Parameters
    ----------
    curves : sequence of BidCurve
        Curves to add (MW, injection positive).
    price_tol : float
        Blocks whose prices differ by at most this ($/MWh) are merged into one.

    Returns
    -------
    BidCurve
        ``p_min = sum p_min_i``; blocks of all curves sorted by price (stable), equal
        prices merged. Its cost at any ``p`` equals the least-cost split of ``p``
        among the input curves, and ``p_max = sum p_max_i``.

    """
    p_min = sum(c.p_min_mw for c in curves)
    blocks = sorted(
        (b for c in curves for b in c.blocks if b.quantity_mw > TOL),
        key=lambda b: b.price_usd_per_mwh,
    )
    merged: list[list[float]] = []
    for b in blocks:
        if merged and b.price_usd_per_mwh - merged[-1][1] <= price_tol:
            merged[-1][0] += b.quantity_mw
        else:
            merged.append([b.quantity_mw, b.price_usd_per_mwh])
    return BidCurve(p_min_mw=p_min, blocks=tuple(BidBlock(q, c) for q, c in merged))


def shift_prices(curve: BidCurve, delta_usd_per_mwh: float) -> BidCurve:
    """Return ``curve`` with every block price raised by ``delta_usd_per_mwh`` ($/MWh)."""
    return BidCurve(
        p_min_mw=curve.p_min_mw,
        blocks=tuple(
            BidBlock(b.quantity_mw, b.price_usd_per_mwh + delta_usd_per_mwh) for b in curve.blocks
        ),
    )


def split_award(
    curves: Sequence[BidCurve], award_mw: float, price_tol: float = 1e-9
) -> list[float]:
    """Split a total award among curves in merit order.

    Parameters
    ----------
    curves : sequence of BidCurve
        Offers of the devices sharing the award (MW, injection positive).
    award_mw : float
        Total net injection awarded (MW), within ``[sum p_min, sum p_max]``.
    price_tol : float
        Blocks whose prices differ by at most this ($/MWh) are filled pro rata.

    Returns
    -------
    list of float
        Set-point per curve (MW). Each lies in its curve's range and they sum to
        ``award_mw`` (up to rounding).

    Notes
    -----
    Every device starts at ``p_min``; the remaining ``award - sum p_min`` fills
    the pooled blocks cheapest first, which is the least-cost split of the
    award under the offers. Blocks at the same price share pro rata.

    """
    points = [c.p_min_mw for c in curves]
    rest = award_mw - sum(points)
    pool = sorted(
        (b.price_usd_per_mwh, i, b.quantity_mw)
        for i, c in enumerate(curves)
        for b in c.blocks
        if b.quantity_mw > 0.0
    )
    k = 0
    while k < len(pool) and rest > 0.0:
        group = [pool[k]]
        while k + len(group) < len(pool) and pool[k + len(group)][0] - pool[k][0] <= price_tol:
            group.append(pool[k + len(group)])
        k += len(group)
        total = sum(q for _, _, q in group)
        share = 1.0 if rest >= total else rest / total
        for _, i, q in group:
            points[i] += q * share
        rest -= min(rest, total)
    return points
