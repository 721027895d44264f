"""The interface contract between an area operator and the level above it.

One contract repeats at every level of the layered (Total DSO) paradigm: between the TSO
and a DSO (the LDA's interface bus), between a DSO and a sub-area on one of its feeders
(a microgrid, at its point of common coupling, PCC), and between that sub-area and a
sub-sub-area (a building). Each operator sees only its interfaces above and below:

* **up**: once per interval it offers a *virtual resource* at its interface, a
  :class:`~gridlayers.domain.BidCurve` of its net export (MW, injection positive; $/MWh)
  built from its children's offers (devices and child areas) and its uncontrolled load
  and generation (the firm part), within the limits only it knows;
* **down**: after the level above has cleared it receives an *award* (MW, net export at
  its interface) with the interface price ($/MWh) and returns a
  :class:`~gridlayers.dso.operator.Disaggregation`: a set-point per child (devices and
  child areas, MW) and its internal prices (DLMPs per bus, $/MWh). A child area's award
  also carries the voltage of the parent's dispatch at the PCC (pu): the child's model is
  rooted there.

A child area appears in its parent's device map as one pseudo-device
:func:`area_device_id` at its PCC bus, whose offer is the child's virtual resource.
:class:`~gridlayers.dso.operator.DSOOperator` (a DSO towards the TSO) and
:class:`~gridlayers.areas.operator.SubAreaOperator` (a sub-area towards its parent, a
``DSOOperator`` on the sub-area's own LinDistFlow model) both satisfy
:class:`AreaOperator`, as does the whole recursion
:class:`~gridlayers.areas.nested.NestedArea`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import pandas as pd

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.dso.operator import Disaggregation
from gridlayers.dso.virtual_resource import VirtualResource

#: Prefix of a child area's pseudo-device id in its parent's device map.
AREA_PREFIX = "area:"


@runtime_checkable
class AreaOperator(Protocol):
    """What an area operator offers up and does with the award it gets down.

    Attributes
    ----------
    devices : dict of str to int
        Its children: real device ids and child areas (:func:`area_device_id`), each
        mapped to the pandapower bus it connects to (a child area: its PCC bus).

    """

    devices: dict[str, int]

    def virtual_resource(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> VirtualResource:
        """Offer the area's net export at its interface for one interval.

        Parameters
        ----------
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled net injection per bus of the area (MW, Mvar, injection
            positive): the firm part of the offer.
        offers : mapping of str to BidCurve
            Offer of every child (MW injection positive, $/MWh).

        Returns
        -------
        VirtualResource
            Interface bid curve and feasible export range (MW, $/MWh).

        """
        ...

    def disaggregate(self, award_mw: float, interface_price_usd_per_mwh: float) -> Disaggregation:
        """Split the award (MW net export) among the children at the interface price ($/MWh).

        Returns set-points per child (MW, injection positive) and DLMPs per bus ($/MWh).
        """
        ...


def area_device_id(name: str) -> str:
    """Return the pseudo-device id of child area ``name`` in its parent (``area:<name>``)."""
    return f"{AREA_PREFIX}{name}"


def offer_values(curve: BidCurve) -> int:
    """Count the values an offer carries up: ``p_min`` plus (MW, $/MWh) per block (-)."""
    return 1 + 2 * len(curve.blocks)


def award_values() -> int:
    """Count the values an award carries down: award (MW), price ($/MWh), PCC voltage (pu)."""
    return 3
