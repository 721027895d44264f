"""Total TSO: embed an LDA's feeder and every DER offer in the TSO market model.

:class:`FeederMarketExtension` implements :class:`gridlayers.market.MarketExtension`.
It adds one block ``lda_<name>`` to the market model holding the LinDistFlow feeder
(with limits) and every device's offer blocks (:mod:`gridlayers.dso.offer_blocks`);
the feeder's ``InterfaceP`` is the LDA's net injection at the transmission interface bus
and ``DerCost`` enters the market objective.

Use::

    ext = dso.market_extension(interface_bus=4, name="lda1")
    market = TransmissionMarket(net, extensions=[ext])      # built once
    ext.set_interval(p_fixed_mw, q_fixed_mvar, offers)      # mutable Params only
    res = market.clear(load_p_mw=...)
    ext.setpoints_mw(); ext.dlmp_usd_per_mwh(market); ext.interface_p_mw()

"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.dso import opf
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.offer_blocks import (
    add_der_to_block,
    bus_dlmp,
    check_offers,
    device_setpoints,
    midpoint_operating_point,
    set_offers,
)

_COUNTER = itertools.count()


class FeederMarketExtension:
    """An LDA's feeder and DER inside the TSO clearing ("Total TSO").

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The LDA's feeder model.
    devices : mapping of str to int
        Device id -> pandapower bus of the feeder.
    interface_bus : int
        Transmission net bus of the T–D interface.
    blocks_per_device : int
        Offer block slots per device.
    name : str, optional
        Unique name of the LDA in the market model (block ``lda_<name>``).

    """

    def __init__(
        self,
        feeder: LinDistFlowFeeder,
        devices: Mapping[str, int],
        interface_bus: int,
        *,
        blocks_per_device: int = 6,
        name: str | None = None,
    ) -> None:
        self.feeder = feeder
        self.devices = {str(d): int(b) for d, b in devices.items()}
        self.interface_bus = int(interface_bus)
        self.blocks_per_device = blocks_per_device
        self.name = name if name is not None else f"bus{interface_bus}_{next(_COUNTER)}"
        self.block: Any = None

    def add_to_model(self, model: pyo.ConcreteModel) -> tuple[dict[int, Any], Any]:
        """Build the LDA block on the market model (called once by the market).

        Returns
        -------
        tuple of (dict of int to expression, expression)
            ``{interface_bus: InterfaceP}`` (MW, injection positive) and ``DerCost`` ($/h).

        """
        if self.block is not None:
            msg = f"extension {self.name!r} is already part of a market model"
            raise RuntimeError(msg)
        block = pyo.Block(doc=f"LDA {self.name}: LinDistFlow feeder and DER offers")
        model.add_component(f"lda_{self.name}", block)
        add_der_to_block(block, self.feeder, self.devices, self.blocks_per_device)
        self.block = block
        return {self.interface_bus: block.feeder.InterfaceP}, block.DerCost

    def set_interval(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> None:
        """Write the interval's inputs before ``market.clear`` (mutable Params only).

        Parameters
        ----------
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled net injection per feeder bus (MW, Mvar, injection positive).
        offers : mapping of str to BidCurve
            Offer per device id.

        Notes
        -----
        Losses are re-linearised around the same base point as the DSO's
        (:func:`~gridlayers.dso.offer_blocks.midpoint_operating_point`).

        """
        self._require_block()
        check_offers(offers, self.devices, self.blocks_per_device)
        set_offers(self.block, offers)
        self.feeder.set_fixed_injections(self.block.feeder, p_fixed_mw, q_fixed_mvar)
        point = midpoint_operating_point(
            self.feeder, self.devices, p_fixed_mw, q_fixed_mvar, offers
        )
        self.feeder.set_operating_point(self.block.feeder, point)
        self.operating_point = point

    def _require_block(self) -> None:
        if self.block is None:
            msg = "pass the extension to TransmissionMarket(extensions=[...]) first"
            raise RuntimeError(msg)

    def setpoints_mw(self) -> dict[str, float]:
        """Return the cleared set-point per device id (MW, injection positive)."""
        self._require_block()
        return device_setpoints(self.block)

    def interface_p_mw(self) -> float:
        """Return the cleared net export of the LDA at the interface (MW)."""
        self._require_block()
        return float(pyo.value(self.block.feeder.InterfaceP))

    def cost_usd_per_h(self) -> float:
        """Return the cleared as-offered DER cost of this LDA ($/h)."""
        self._require_block()
        return float(pyo.value(self.block.DerCost))

    def dlmp_usd_per_mwh(self, market: Any) -> pd.Series:
        """Return DLMPs ($/MWh) per energised feeder bus from the market's last solve.

        Parameters
        ----------
        market : TransmissionMarket
            The market this extension is part of, after ``clear``.

        Notes
        -----
        Reads the duals of this block's ``PBalance`` rows from the market's persistent
        HiGHS solver (``market._solver``, private: :class:`TransmissionMarket` exposes
        no public dual accessor yet). The nodal balances of the market and the feeder
        both have injections on the left, so the DLMP at the root equals the interface
        LMP.

        """
        self._require_block()
        rows = list(self.block.feeder.PBalance.values())
        duals = market._solver._get_duals(rows)  # noqa: SLF001
        return bus_dlmp(self.feeder, opf.dlmp_usd_per_mwh(self.block.feeder, duals))
