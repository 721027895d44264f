"""Total TSO: embed an LDA's feeder and every DER offer in the TSO market model.

:class:`FeederMarketExtension` implements :class:`gridlayers.market.MarketExtension`.
It adds one block ``lda_<name>`` to the market model holding the LinDistFlow feeder
(with limits) and every device's offer blocks (:mod:`gridlayers.dso.offer_blocks`);
the feeder's ``InterfaceP`` is the LDA's net injection at the transmission interface bus
and ``DerCost`` plus the limit slack's ``SlackCost`` enter the market objective.

Soft limits: unless ``slack_penalty_usd_per_mwh=None``, the feeder's voltage and thermal
limits have slack priced at ``slack_penalty_usd_per_mwh`` per MW-equivalent
(:func:`gridlayers.dso.opf.set_slack_penalty`), so one LDA whose uncontrolled load alone
violates a limit cannot make the market infeasible. The default, 5,000 $/MWh, is far
above any DER offer (truthful DER offer at most a few hundred $/MWh) and half the
market's value of lost load (10,000 $/MWh): slack is used only where no dispatch of the
LDA's DER can respect the limit at a cost below 5,000 $ per MW moved.

Use::

    ext = dso.market_extension(interface_bus=4, name="lda1")
    market = TransmissionMarket(net, extensions=[ext])      # built once
    ext.set_interval(p_fixed_mw, q_fixed_mvar, offers)      # mutable Params only
    res = market.clear(load_p_mw=...)
    if ext.relinearise_at_solution() > 1e-5:                # losses at the cleared point
        res = market.clear(load_p_mw=...)
    ext.setpoints_mw(); ext.dlmp_usd_per_mwh(market); ext.interface_p_mw(); ext.slack_used()

"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
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
    setpoint_operating_point,
)

#: Default price of feeder-limit slack in the Total-TSO market ($ per MW-equivalent and hour).
DEFAULT_SLACK_PENALTY_USD_PER_MWH = 5_000.0
#: Voltage slack below this (pu) and thermal slack below this (MVA) count as unused.
SLACK_TOL_PU = opf.SLACK_TOL_PU
SLACK_TOL_MVA = opf.SLACK_TOL_MVA

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
    slack_penalty_usd_per_mwh : float or None
        Price of the voltage and thermal limit slack per MW-equivalent ($/MWh, see
        :func:`gridlayers.dso.opf.set_slack_penalty`); ``None``: hard limits, no slack.

    Attributes
    ----------
    operating_point : OperatingPoint
        Base point of the loss linearisation of the last solve (the interval's midpoint
        point after :meth:`set_interval`, the cleared point after
        :meth:`relinearise_at_solution`).

    """

    def __init__(
        self,
        feeder: LinDistFlowFeeder,
        devices: Mapping[str, int],
        interface_bus: int,
        *,
        blocks_per_device: int = 6,
        name: str | None = None,
        slack_penalty_usd_per_mwh: float | None = DEFAULT_SLACK_PENALTY_USD_PER_MWH,
    ) -> None:
        if slack_penalty_usd_per_mwh is not None and not slack_penalty_usd_per_mwh > 0:
            msg = f"slack_penalty_usd_per_mwh must be > 0 or None, got {slack_penalty_usd_per_mwh}"
            raise ValueError(msg)
        self.feeder = feeder
        self.devices = {str(d): int(b) for d, b in devices.items()}
        self.interface_bus = int(interface_bus)
        self.blocks_per_device = blocks_per_device
        self.name = name if name is not None else f"bus{interface_bus}_{next(_COUNTER)}"
        self.slack_penalty_usd_per_mwh = slack_penalty_usd_per_mwh
        self.block: Any = None
        self.operating_point = feeder.base_point
        self._fixed: tuple[pd.Series, pd.Series] | None = None

    @property
    def soft_limits(self) -> bool:
        """Whether the feeder's limits have slack (``slack_penalty_usd_per_mwh`` not None)."""
        return self.slack_penalty_usd_per_mwh is not None

    def add_to_model(self, model: pyo.ConcreteModel) -> tuple[dict[int, Any], Any]:
        """Build the LDA block on the market model (called once by the market).

        Returns
        -------
        tuple of (dict of int to expression, expression)
            ``{interface_bus: InterfaceP}`` (MW, injection positive) and ``DerCost`` plus,
            with soft limits, the feeder's ``SlackCost`` ($/h).

        """
        if self.block is not None:
            msg = f"extension {self.name!r} is already part of a market model"
            raise RuntimeError(msg)
        block = pyo.Block(doc=f"LDA {self.name}: LinDistFlow feeder and DER offers")
        model.add_component(f"lda_{self.name}", block)
        add_der_to_block(
            block,
            self.feeder,
            self.devices,
            self.blocks_per_device,
            slack_limits=self.soft_limits,
        )
        cost = block.DerCost
        if self.soft_limits:
            opf.set_slack_penalty(self.feeder, block.feeder, self.slack_penalty_usd_per_mwh)
            cost = block.DerCost + block.feeder.SlackCost
        self.block = block
        return {self.interface_bus: block.feeder.InterfaceP}, cost

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
        self._fixed = (pd.Series(p_fixed_mw, dtype=float), pd.Series(q_fixed_mvar, dtype=float))

    def relinearise_at_solution(self) -> float:
        """Re-linearise the losses at the cleared set-points (mutable Params, in place).

        Call after ``market.clear``; if the returned change is above your tolerance, clear
        the market again with the same inputs (the new loss coefficients are pushed then).

        Returns
        -------
        float
            Largest change of a bus voltage (pu) between the cleared (linearised) state and
            the model re-linearised at the cleared injections, i.e. the linearisation error
            of the last clear at its own solution (~1e-6 pu after a re-clear).

        Notes
        -----
        The new base point is :func:`~gridlayers.dso.offer_blocks.setpoint_operating_point`
        of the forecast fixed injections and the cleared set-points, started from the
        current base point. The next :meth:`set_interval` goes back to the midpoint point.

        """
        self._require_block()
        if self._fixed is None:
            msg = "call set_interval() and clear the market first"
            raise RuntimeError(msg)
        fb = self.block.feeder
        vm_cleared = np.sqrt(np.maximum([pyo.value(fb.VmSq[b]) for b in self.feeder.buses], 0.0))
        point = setpoint_operating_point(
            self.feeder, self.devices, *self._fixed, self.setpoints_mw(), start=self.operating_point
        )
        self.feeder.set_operating_point(fb, point)
        self.operating_point = point
        return float(np.max(np.abs(np.sqrt(point.w_pu) - vm_cleared)))

    def set_slack_penalty(self, penalty_usd_per_mwh: float) -> None:
        """Change the slack price ($ per MW-equivalent and hour; soft limits only), in place."""
        self._require_block()
        if not self.soft_limits:
            msg = "this extension was built with hard limits (slack_penalty_usd_per_mwh=None)"
            raise RuntimeError(msg)
        if not penalty_usd_per_mwh > 0:
            msg = f"penalty_usd_per_mwh must be > 0, got {penalty_usd_per_mwh}"
            raise ValueError(msg)
        opf.set_slack_penalty(self.feeder, self.block.feeder, penalty_usd_per_mwh)
        self.slack_penalty_usd_per_mwh = float(penalty_usd_per_mwh)

    def slack_used(self) -> dict[str, float | int]:
        """Return how much limit slack the last clear used (zeros if none or hard limits).

        Returns
        -------
        dict
            ``voltage_pu``: largest voltage slack of a bus (pu, outside
            ``[vm_min_pu, vm_max_pu]``, to first order); ``buses``: buses with voltage
            slack; ``thermal_mva``: total thermal slack (MVA); ``branches``: branches
            with thermal slack; ``mw_equivalent``: voltage slack converted to MW at each
            bus's sensitivity plus thermal slack (MW, the quantity priced at
            ``slack_penalty_usd_per_mwh``); ``cost_usd_per_h``: the penalty in the
            objective ($/h). Slack below ``SLACK_TOL_PU`` / ``SLACK_TOL_MVA`` counts as 0.

        """
        if not self.soft_limits:
            return opf.no_slack()
        self._require_block()
        return opf.slack_report(self.block.feeder)

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
