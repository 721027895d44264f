"""Common device interface (unit), and the pyomo offer block every device shares.

A *device* is the physics of one DER at one feeder bus: feasible range, true cost
curve, dispatch and state update. How it prices its offer is a separate
*strategy* (:mod:`gridlayers.der.strategies`), following ASSUME's unit/strategy
split. All powers are net injections (MW, injection positive).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import pyomo.environ as pyo

from gridlayers.der.conditions import DeviceConditions, DispatchResult, Interval
from gridlayers.domain.bid_curve import BidCurve

if TYPE_CHECKING:
    from gridlayers.der.strategies import OfferStrategy


class Device(ABC):
    """Abstract DER device at one pandapower bus.

    Parameters
    ----------
    device_id : str
        Unique identifier within a scenario.
    bus : int
        pandapower bus index of the feeder bus the device is connected to.
    strategy : OfferStrategy or None
        How :meth:`offer` prices the device's cost curve; ``None`` uses the
        truthful (cost-based) strategy.

    Notes
    -----
    Subclasses hold frozen parameters in ``params`` and an explicit, frozen
    ``state`` that :meth:`dispatch` replaces. Offers and ranges never change state.
    A subclass calls :meth:`_record_initial_storage` at the end of its
    ``__init__``, once its state is set.

    Every :meth:`dispatch` returns the true resource cost of the interval in
    :attr:`DispatchResult.cost_usd` (doing nothing costs 0), and
    :attr:`stored_energy_mwh` is the energy the device holds for later use, so a
    run can value ``stored_energy_mwh - initial_stored_energy_mwh`` at the end of
    its horizon (``docs/der.md``, "True resource cost").

    """

    #: Stored energy (MWh) when the device was created, before any dispatch.
    initial_stored_energy_mwh: float = 0.0

    #: Upper bound on the number of blocks of this device's offers (pyomo block size).
    max_offer_blocks: ClassVar[int] = 2
    kind: ClassVar[str] = "device"
    #: Whether the device holds energy for later use (PV does not; its
    #: :attr:`stored_energy_mwh` is always 0).
    stores_energy: ClassVar[bool] = True

    def __init__(self, device_id: str, bus: int, strategy: OfferStrategy | None = None) -> None:
        from gridlayers.der.strategies import TruthfulStrategy

        self.device_id = device_id
        self.bus = int(bus)
        self.strategy: OfferStrategy = strategy if strategy is not None else TruthfulStrategy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device_id={self.device_id!r}, bus={self.bus})"

    def _record_initial_storage(self) -> None:
        """Remember :attr:`stored_energy_mwh` as :attr:`initial_stored_energy_mwh`."""
        self.initial_stored_energy_mwh = self.stored_energy_mwh

    @property
    @abstractmethod
    def stored_energy_mwh(self) -> float:
        """Energy the device holds for later use now (MWh), to be valued at a grid price.

        Battery: stored energy; flexible load: shifted energy carried since
        midnight (positive when it consumed ahead of its baseline); EV fleet:
        grid-side energy drawn for sessions that have not departed yet; PV: 0.
        """

    def available_mw(self, cond: DeviceConditions) -> float | None:
        """Return the power (MW) ``cond`` makes available to inject, whatever the set-point.

        ``None`` for devices whose output is not limited by an exogenous resource (the
        default); PV returns its available power.
        """
        return None

    @abstractmethod
    def feasible_range(self, interval: Interval, cond: DeviceConditions) -> tuple[float, float]:
        """Return ``(p_min_mw, p_max_mw)``, the net injection the device can follow.

        Parameters
        ----------
        interval : Interval
            The interval the range applies to.
        cond : DeviceConditions
            Conditions assumed (forecast for offers).

        Returns
        -------
        tuple of float
            Lower and upper net injection in MW (``p_min_mw <= p_max_mw``).

        """

    @abstractmethod
    def cost_curve(self, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return the device's true marginal-cost curve over its feasible range."""

    @abstractmethod
    def self_schedule_mw(self, interval: Interval, cond: DeviceConditions) -> float:
        """Return the net injection (MW) the device would choose without a market."""

    @abstractmethod
    def dispatch(
        self,
        p_set_mw: float,
        interval: Interval,
        actual: DeviceConditions,
        forecast: DeviceConditions | None = None,
    ) -> DispatchResult:
        """Follow a set-point with actual conditions and advance the state by one interval.

        Parameters
        ----------
        p_set_mw : float
            Net injection set-point (MW), normally within the offered range.
        interval : Interval
            The interval being dispatched.
        actual : DeviceConditions
            Realised conditions (weather, baseline load).
        forecast : DeviceConditions or None
            Conditions the set-point was computed with (``None``: same as actual).

        Returns
        -------
        DispatchResult
            Realised injection, clipped to what physics allows, and the true
            resource cost of the interval (``cost_usd``, $).

        """

    def offer(self, interval: Interval, cond: DeviceConditions) -> BidCurve:
        """Return the device's offer for ``interval`` as priced by its strategy."""
        return self.strategy.bid(self, interval, cond)

    def add_to_model(self, block: pyo.Block, interval: Interval, cond: DeviceConditions) -> None:
        """Add the device's net injection and offer cost to a pyomo block.

        Parameters
        ----------
        block : pyomo Block
            An empty block (e.g. ``model.der[device_id]``) to populate.
        interval, cond
            Interval and (forecast) conditions of the first solve.

        Notes
        -----
        See :func:`build_offer_block`. Call :meth:`update_model` in later
        intervals instead of rebuilding.

        """
        build_offer_block(block, self.max_offer_blocks)
        self.update_model(block, interval, cond)

    def update_model(self, block: pyo.Block, interval: Interval, cond: DeviceConditions) -> None:
        """Write the current offer (state and forecast dependent) into the block's Params."""
        set_offer_block(block, self.offer(interval, cond))


def build_offer_block(block: pyo.Block, n_blocks: int) -> None:
    """Populate ``block`` with a net-injection variable priced by a bid curve.

    Parameters
    ----------
    block : pyomo Block
        Block to populate.
    n_blocks : int
        Number of offer blocks the block can hold (unused ones get zero width).

    Notes
    -----
    Components (all mutable Params, so the model is built once and updated):

    - ``BLOCKS``: RangeSet ``1..n_blocks``.
    - ``p_min_mw``, ``p_max_mw``: Params, feasible net injection range (MW).
    - ``q_mw[k]``, ``price_usd_per_mwh[k]``: Params, block widths (MW) and prices ($/MWh).
    - ``X_mw[k]``: Var, cleared part of block ``k``, ``0 <= X_mw[k] <= q_mw[k]`` (MW).
    - ``P_mw``: Var, net injection (MW), ``p_min_mw <= P_mw <= p_max_mw``.
    - ``injection``: Constraint ``P_mw = p_min_mw + sum_k X_mw[k]``.
    - ``cost_usd_per_h``: Expression ``sum_k price_usd_per_mwh[k] * X_mw[k]`` ($/h);
      add it (times the interval hours) to the objective. Prices are
      non-decreasing so the LP fills blocks in order.

    """
    block.BLOCKS = pyo.RangeSet(1, n_blocks)
    block.p_min_mw = pyo.Param(mutable=True, initialize=0.0, doc="lower net injection (MW)")
    block.p_max_mw = pyo.Param(mutable=True, initialize=0.0, doc="upper net injection (MW)")
    block.q_mw = pyo.Param(block.BLOCKS, mutable=True, initialize=0.0, doc="block width (MW)")
    block.price_usd_per_mwh = pyo.Param(
        block.BLOCKS, mutable=True, initialize=0.0, doc="block price ($/MWh)"
    )
    block.X_mw = pyo.Var(
        block.BLOCKS, bounds=lambda b, k: (0.0, b.q_mw[k]), doc="cleared block part (MW)"
    )
    block.P_mw = pyo.Var(bounds=(block.p_min_mw, block.p_max_mw), doc="net injection (MW)")
    block.injection = pyo.Constraint(
        expr=block.P_mw == block.p_min_mw + sum(block.X_mw[k] for k in block.BLOCKS),
        doc="net injection = floor + cleared blocks (MW)",
    )
    block.cost_usd_per_h = pyo.Expression(
        expr=sum(block.price_usd_per_mwh[k] * block.X_mw[k] for k in block.BLOCKS),
        doc="as-offered cost rate ($/h)",
    )


def set_offer_block(block: pyo.Block, curve: BidCurve) -> None:
    """Write ``curve`` into a block built by :func:`build_offer_block`.

    Parameters
    ----------
    block : pyomo Block
        Block built by :func:`build_offer_block`.
    curve : BidCurve
        Offer to write; must not have more blocks than the block holds.

    """
    n = len(block.BLOCKS)
    if len(curve.blocks) > n:
        msg = f"offer has {len(curve.blocks)} blocks, pyomo block holds {n}"
        raise ValueError(msg)
    block.p_min_mw.set_value(curve.p_min_mw)
    block.p_max_mw.set_value(curve.p_max_mw)
    last_price = curve.blocks[-1].price_usd_per_mwh if curve.blocks else 0.0
    for k in block.BLOCKS:
        if k <= len(curve.blocks):
            b = curve.blocks[k - 1]
            block.q_mw[k].set_value(b.quantity_mw)
            block.price_usd_per_mwh[k].set_value(b.price_usd_per_mwh)
        else:
            block.q_mw[k].set_value(0.0)
            block.price_usd_per_mwh[k].set_value(last_price)
