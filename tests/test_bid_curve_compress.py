"""Block compression: the heap-based merge equals the scan-every-pair definition, bit for bit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridlayers.domain.bid_curve import compress_blocks


def _scan_every_pair(blocks: list[tuple[float, float]], max_blocks: int) -> list:
    """The definition: before each merge, scan all neighbours for the least distortion."""
    out = [list(b) for b in blocks]
    while len(out) > max_blocks:
        best, best_err = 0, float("inf")
        for i in range(len(out) - 1):
            (q1, c1), (q2, c2) = out[i], out[i + 1]
            err = q1 * q2 / max(q1 + q2, 1e-12) * (c2 - c1)
            if err < best_err:
                best, best_err = i, err
        (q1, c1), (q2, c2) = out[best], out[best + 1]
        q = q1 + q2
        out[best : best + 2] = [[q, (q1 * c1 + q2 * c2) / q if q > 0 else c1]]
    return [(q, c) for q, c in out]


_quantity = st.sampled_from([0.0, 0.001, 0.5, 1.0, 2.0]) | st.floats(0.0, 10.0)
_price_step = st.sampled_from([0.0, 1.0]) | st.floats(0.0, 50.0)


@st.composite
def _curves(draw) -> tuple[list[tuple[float, float]], int]:
    n = draw(st.integers(1, 40))
    steps = draw(st.lists(_price_step, min_size=n, max_size=n))
    quantities = draw(st.lists(_quantity, min_size=n, max_size=n))
    prices, p = [], draw(st.floats(-20.0, 20.0))
    for step in steps:  # non-decreasing prices, many ties
        p += step
        prices.append(p)
    return list(zip(quantities, prices, strict=True)), draw(st.integers(1, n + 2))


@settings(max_examples=400, deadline=None)
@given(_curves())
def test_heap_merge_equals_scanning_every_pair(case) -> None:
    blocks, max_blocks = case
    assert compress_blocks(blocks, max_blocks) == _scan_every_pair(blocks, max_blocks)


def test_ties_merge_the_leftmost_pair() -> None:
    blocks = [(1.0, 10.0), (1.0, 11.0), (1.0, 12.0), (1.0, 13.0)]
    assert compress_blocks(blocks, 3) == [(2.0, 10.5), (1.0, 12.0), (1.0, 13.0)]
