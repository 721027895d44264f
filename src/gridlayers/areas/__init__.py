"""Recursive layers: sub-areas (microgrids, buildings) below a DSO, same contract per level.

See :mod:`gridlayers.areas.contract` (the interface every area operator satisfies),
:mod:`gridlayers.areas.nested` (the recursion) and ``docs/layers.md``.
"""

from gridlayers.areas.contract import (
    AREA_PREFIX,
    AreaOperator,
    area_device_id,
    award_values,
    offer_values,
)

__all__ = ["AREA_PREFIX", "AreaOperator", "area_device_id", "award_values", "offer_values"]
