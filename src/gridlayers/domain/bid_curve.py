"""Price–quantity bid curves for net injection at one bus.

A :class:`BidCurve` is what an aggregator offers, what a DSO's virtual resource
is, and what the TSO market clears. It uses the injection-positive convention
of :mod:`gridlayers.conventions`.

Notes
-----
Net injection is ``p = p_min_mw + sum_k x_k`` with ``0 <= x_k <= q_k`` for each
block ``k``. Clearing block ``k`` costs ``price_k * x_k`` per hour, so a block is
"raise my injection by ``q_k`` MW for ``price_k`` $/MWh". Prices must be
non-decreasing across blocks (a convex, monotone offer curve), so a cost-minimising
clearing fills blocks in order.

*Supply* (a PV plant, a battery discharging) has ``p_min_mw >= 0`` or blocks above 0.
*Demand* with a willingness to pay is expressed as a withdrawal floor that can be
reduced: a flexible load of 5 MW worth 80 $/MWh is
``BidCurve(p_min_mw=-5.0, blocks=(BidBlock(5.0, 80.0),))``: the market either serves
it (``x=0``, injection -5 MW) or sheds it (``x=5``) at 80 $/MWh of forgone value.

"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BidBlock:
    """One block of a bid curve.

    Parameters
    ----------
    quantity_mw : float
        Width of the block in MW (>= 0).
    price_usd_per_mwh : float
        Marginal price of the block in $/MWh.

    """

    quantity_mw: float
    price_usd_per_mwh: float

    def __post_init__(self) -> None:
        if not self.quantity_mw >= 0.0:
            msg = f"BidBlock quantity_mw must be >= 0, got {self.quantity_mw}"
            raise ValueError(msg)


@dataclass(frozen=True)
class BidCurve:
    """A monotone price–quantity curve for net injection at one bus.

    Parameters
    ----------
    p_min_mw : float
        Net injection (MW) when no block is cleared; the lower end of the feasible range.
    blocks : tuple of BidBlock
        Blocks in non-decreasing price order.

    """

    p_min_mw: float
    blocks: tuple[BidBlock, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        prices = [b.price_usd_per_mwh for b in self.blocks]
        if any(b < a - 1e-9 for a, b in zip(prices, prices[1:], strict=False)):
            msg = f"BidCurve block prices must be non-decreasing, got {prices}"
            raise ValueError(msg)

    @property
    def p_max_mw(self) -> float:
        """Upper end of the feasible net injection range in MW."""
        return self.p_min_mw + sum(b.quantity_mw for b in self.blocks)

    def cost_usd_per_h(self, p_mw: float) -> float:
        """Return the as-bid cost rate of injecting ``p_mw``, filling blocks in order.

        Parameters
        ----------
        p_mw : float
            Net injection in MW, within ``[p_min_mw, p_max_mw]``.

        Returns
        -------
        float
            Cost in $/h (multiply by the interval length in hours for $).

        """
        remaining = p_mw - self.p_min_mw
        cost = 0.0
        for block in self.blocks:
            take = min(max(remaining, 0.0), block.quantity_mw)
            cost += take * block.price_usd_per_mwh
            remaining -= take
        return cost

    def compressed(self, max_blocks: int) -> BidCurve:
        """Return the curve with at most ``max_blocks`` blocks (see :func:`compress_blocks`).

        Same feasible range (MW) and the same cost ($/h) at every remaining block boundary.
        """
        if len(self.blocks) <= max_blocks:
            return self
        pairs = [(b.quantity_mw, b.price_usd_per_mwh) for b in self.blocks]
        merged = compress_blocks(pairs, max_blocks)
        return BidCurve(self.p_min_mw, tuple(BidBlock(q, c) for q, c in merged))

    @staticmethod
    def fixed(p_mw: float) -> BidCurve:
        """Return a price-taking curve with a single feasible point ``p_mw`` (MW)."""
        return BidCurve(p_min_mw=p_mw, blocks=())


def compress_blocks(
    blocks: Sequence[tuple[float, float]], max_blocks: int
) -> list[tuple[float, float]]:
    """Merge adjacent blocks until at most ``max_blocks`` remain.

    Parameters
    ----------
    blocks : sequence of (float, float)
        ``(quantity_mw, price_usd_per_mwh)`` in non-decreasing price order.
    max_blocks : int
        Target number of blocks (>= 1).

    Returns
    -------
    list of (float, float)
        Merged blocks. Each merge replaces two neighbours by one of the summed width at
        their quantity-weighted average price, choosing the pair with the least cost
        distortion ``q1 q2 / (q1 + q2) * (c2 - c1)`` (the leftmost on ties); block costs
        are preserved exactly at block boundaries and prices stay non-decreasing.

    Notes
    -----
    The pairs wait in a heap keyed by (distortion, position), so ``n`` blocks take
    ``O(n log n)``; the merges, and so the result, are those of scanning all pairs before
    every merge, bit for bit.

    """
    out: list[list[float] | None] = [list(b) for b in blocks]
    n = len(out)

    def distortion(i: int, j: int) -> float:
        """Return the pair's merge cost; NaN (never the least) ranks as infinity."""
        (q1, c1), (q2, c2) = out[i], out[j]
        err = q1 * q2 / max(q1 + q2, 1e-12) * (c2 - c1)
        return err if err == err else math.inf

    heap = [(distortion(i, i + 1), i, 0, i + 1, 0) for i in range(n - 1)]
    heapq.heapify(heap)
    after, before = list(range(1, n + 1)), list(range(-1, n - 1))
    version = [0] * n  # bumped when a block changes, -1 once merged away
    alive = n
    while alive > max_blocks:
        _, i, v_i, j, v_j = heapq.heappop(heap)
        if version[i] != v_i or version[j] != v_j or after[i] != j:
            continue  # a neighbour changed since this pair was queued
        (q1, c1), (q2, c2) = out[i], out[j]
        q = q1 + q2
        out[i], out[j] = [q, (q1 * c1 + q2 * c2) / q if q > 0 else c1], None
        version[i], version[j], alive = version[i] + 1, -1, alive - 1
        after[i] = after[j]
        if after[i] < n:
            before[after[i]] = i
        for a in (before[i], i):
            if a >= 0 and after[a] < n:
                b = after[a]
                heapq.heappush(heap, (distortion(a, b), a, version[a], b, version[b]))
    return [(blk[0], blk[1]) for blk in out if blk is not None]
