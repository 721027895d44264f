r"""The DSO's virtual resource: interface bid curve from device offers and feeder limits.

Notes
-----
Let ``P`` be the LDA's net export at the interface (``InterfaceP``, MW, injection
positive) and ``D = sum_d p_d`` the total DER injection. Two LPs on the LinDistFlow model
with limits (losses linearised, :mod:`gridlayers.dso.opf`) give the feasible range

.. math::

    \underline P = \min P, \qquad \overline P = \max P
    \quad \text{s.t. feeder model, limits, } p_d \in [\underline p_d, \overline p_d],

and the device totals ``D_lo``, ``D_hi`` at those two solutions. The duals of the nodal
balances of the minimum-export LP give, for every device bus, the delivery factor
``beta_d = dP / dp_d`` (interface MW per MW injected at the device's bus, i.e. one minus
its marginal loss factor; exact in the linearised model while no limit binds there). The
bid curve is the least DER cost ``C(P)`` of exporting ``P`` in the loss-linearised model
without binding limits, truncated to the feasible range:

1. every device block ``(q_dk, pi_dk)`` becomes an interface block
   ``(beta_d q_dk, pi_dk / beta_d)`` (same cost, interface MW); sort them by price;
2. drop the cheapest ``D_lo - sum_d p_min_d`` device MW (forced on at ``P_lo``, e.g. by an
   under-voltage limit) and cut the curve where it reaches ``P_hi`` (the most expensive
   blocks cannot be delivered);
3. merge adjacent blocks until at most ``max_blocks`` remain (quantity-weighted average
   price: the cost at every remaining block boundary and the monotonicity are kept).

Without binding limits this is exact: filling the curve up to an award ``A`` and the
disaggregation LP give the same cost, and an award at a block boundary is met by exactly
the blocks below it (so the interface LMP, not a neighbouring block price, becomes the
root DLMP; see :mod:`gridlayers.dso.operator`). When a limit binds inside the range the
curve still ends exactly at ``P_hi`` (the TSO can never award what the feeder cannot
deliver, within the linearisation) but would price blocks as if the limit cut the most
expensive ones; therefore, when a limit binds at an extreme export, the operator replaces
it by a curve through a few exact points of ``C(P)`` (``binding_samples``).

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gridlayers.domain.bid_curve import BidBlock, BidCurve, compress_blocks

#: Ranges narrower than this (MW) count as a single point.
RANGE_TOL_MW = 1e-9


@dataclass(frozen=True)
class VirtualResource:
    """What a DSO offers at its interface for one interval.

    Attributes
    ----------
    curve : BidCurve
        Offer for the LDA's net export (MW, injection positive; $/MWh), at most
        ``max_blocks`` blocks; ``curve.p_min_mw == p_min_mw``, ``curve.p_max_mw == p_max_mw``.
    p_min_mw, p_max_mw : float
        Feasible range of the interface export respecting feeder limits (MW).
    der_p_min_mw, der_p_max_mw : float
        Total DER injection at the minimum / maximum export solutions (MW).
    delivery_factor : float
        ``kappa``: interface MW per DER MW between the two solutions (-).
    solve_seconds : float
        Wall time of the two LP solves incl. Param updates (s).
    n_variables, n_constraints : int
        Size of the DSO's optimisation problem.
    method : str
        ``"merit_order"`` (steps 1–3 of the module notes) or ``"sampled"`` (a limit binds
        at an extreme export: exact least-cost points, see
        :meth:`gridlayers.dso.operator.DSOOperator._sampled_curve`).
    slack : dict or None
        ``None`` when the feeder's limits could be met. Otherwise the soft-limit fallback
        built the resource (:class:`~gridlayers.dso.operator.DSOOperator`, module notes):
        the least limit slack any dispatch needs, in the keys of
        :func:`gridlayers.dso.opf.slack_report`; the range is the exports reachable
        with no more slack.
    hard_limit_failure : str or None
        Why the hard-limit problem failed (set with ``slack``).

    """

    curve: BidCurve
    p_min_mw: float
    p_max_mw: float
    der_p_min_mw: float
    der_p_max_mw: float
    delivery_factor: float
    solve_seconds: float
    n_variables: int
    n_constraints: int
    method: str = "merit_order"
    slack: dict[str, float | int] | None = None
    hard_limit_failure: str | None = None


def interface_curve(
    offers: Mapping[str, BidCurve],
    delivery_by_device: Mapping[str, float],
    p_range_mw: tuple[float, float],
    der_range_mw: tuple[float, float],
    max_blocks: int,
) -> tuple[BidCurve, float]:
    """Build the interface bid curve (steps 1–4 of the module notes).

    Parameters
    ----------
    offers : mapping of str to BidCurve
        Device offers (MW, $/MWh) by device id.
    delivery_by_device : mapping of str to float
        ``beta_d``: interface MW per device MW (1 minus the marginal loss factor) (-).
    p_range_mw : tuple of float
        ``(P_lo, P_hi)``: feasible interface export range (MW).
    der_range_mw : tuple of float
        ``(D_lo, D_hi)``: total DER injection at those two points (MW).
    max_blocks : int
        Maximum number of blocks of the result.

    Returns
    -------
    tuple of (BidCurve, float)
        The curve and the average delivery factor ``kappa`` (1.0 if the range is a point).

    """
    p_lo, p_hi = p_range_mw
    d_lo, d_hi = der_range_mw
    if p_hi - p_lo <= RANGE_TOL_MW or d_hi - d_lo <= RANGE_TOL_MW:
        return BidCurve.fixed(p_lo), 1.0
    kappa = (p_hi - p_lo) / (d_hi - d_lo)
    pool = sorted(
        (blk.price_usd_per_mwh / delivery_by_device[d], blk.quantity_mw, delivery_by_device[d])
        for d, curve in offers.items()
        for blk in curve.blocks
        if blk.quantity_mw > RANGE_TOL_MW
    )
    skip = d_lo - sum(c.p_min_mw for c in offers.values())  # device MW forced on at P_lo
    room = p_hi - p_lo  # interface MW the curve must span
    kept: list[tuple[float, float]] = []
    for price, qty, beta in pool:
        cut = min(max(skip, 0.0), qty)
        skip -= cut
        width = min((qty - cut) * beta, room)
        if width > RANGE_TOL_MW:
            kept.append((width, price))
            room -= width
    if not kept:
        return BidCurve.fixed(p_lo), kappa
    if room > RANGE_TOL_MW:  # loss model mismatch: stretch the last block to P_hi
        kept[-1] = (kept[-1][0] + room, kept[-1][1])
    blocks = compress_blocks(kept, max_blocks)
    return BidCurve(p_lo, tuple(BidBlock(q, c) for q, c in blocks)), kappa
