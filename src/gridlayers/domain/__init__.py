"""Frozen domain values shared by all cores (no solver or mosaik imports)."""

from gridlayers.domain.bid_curve import BidBlock, BidCurve

__all__ = ["BidBlock", "BidCurve"]
