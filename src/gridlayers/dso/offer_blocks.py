"""DER offers as pyomo block variables on a feeder model (build once, update in place).

Every DER device is represented generically by its :class:`~gridlayers.domain.BidCurve`
through a fixed number of block slots, so any device type or offer strategy fits.

Notes
-----
Components added by :func:`add_der_to_block` (``d`` a device, ``k`` a block slot):

* ``DEVICES``, ``OFFER_BLOCKS`` (sets); ``device_p_min_mw[d]`` (MW),
  ``offer_quantity_mw[d, k]`` (MW), ``offer_price_usd_per_mwh[d, k]`` ($/MWh): mutable.
* ``OfferBlock[d, k]`` (MW) with ``0 <= OfferBlock <= offer_quantity_mw``.
* ``DeviceP[d] = device_p_min_mw[d] + sum_k OfferBlock[d, k]`` (MW, injection positive).
* ``DerCost = sum_{d,k} offer_price_usd_per_mwh[d, k] * OfferBlock[d, k]`` ($/h).
* ``feeder``: a sub-block holding the :class:`~gridlayers.dso.LinDistFlowFeeder` model
  with ``DeviceP`` summed per bus as its controllable injection.

Unused block slots get ``offer_quantity_mw = 0``.

"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.highs_params import compile_values, store_floats

if TYPE_CHECKING:
    from gridlayers.dso.lindistflow import LinDistFlowFeeder
    from gridlayers.dso.linear_system import OperatingPoint
    from gridlayers.dso.persistent_lp import PersistentLP


def add_der_to_block(
    block: Any,
    feeder: LinDistFlowFeeder,
    device_bus: Mapping[str, int],
    blocks_per_device: int,
    *,
    enforce_limits: bool = True,
    slack_limits: bool = False,
) -> None:
    """Build device offer blocks and the feeder model on ``block`` (once).

    Parameters
    ----------
    block : pyomo Block or ConcreteModel
        Receives the components listed in the module notes.
    feeder : LinDistFlowFeeder
        The LDA's feeder model.
    device_bus : mapping of str to int
        Device id -> pandapower bus of the feeder.
    blocks_per_device : int
        Number of offer block slots per device.
    enforce_limits : bool
        Passed to :meth:`LinDistFlowFeeder.add_to_model`.
    slack_limits : bool
        Passed to :meth:`LinDistFlowFeeder.add_to_model` as ``slack`` (soft limits).

    """
    block.DEVICES = pyo.Set(initialize=list(device_bus), ordered=True, doc="DER device ids")
    block.OFFER_BLOCKS = pyo.RangeSet(0, blocks_per_device - 1, doc="offer block slots")
    mut = {"mutable": True, "within": pyo.Reals, "initialize": 0.0}
    block.device_p_min_mw = pyo.Param(block.DEVICES, doc="offer floor (MW)", **mut)
    block.offer_quantity_mw = pyo.Param(
        block.DEVICES, block.OFFER_BLOCKS, doc="offer block width (MW)", **mut
    )
    block.offer_price_usd_per_mwh = pyo.Param(
        block.DEVICES, block.OFFER_BLOCKS, doc="offer block price ($/MWh)", **mut
    )
    block.OfferBlock = pyo.Var(
        block.DEVICES,
        block.OFFER_BLOCKS,
        bounds=lambda blk, d, k: (0.0, blk.offer_quantity_mw[d, k]),
        doc="cleared offer block quantity (MW)",
    )
    block.DeviceP = pyo.Expression(
        block.DEVICES,
        rule=lambda blk, d: (
            blk.device_p_min_mw[d] + sum(blk.OfferBlock[d, k] for k in blk.OFFER_BLOCKS)
        ),
        doc="device net injection (MW)",
    )
    block.DerCost = pyo.Expression(
        expr=sum(
            block.offer_price_usd_per_mwh[d, k] * block.OfferBlock[d, k]
            for d in block.DEVICES
            for k in block.OFFER_BLOCKS
        ),
        doc="as-offered DER cost ($/h)",
    )
    per_bus: dict[int, Any] = {}
    for dev, bus in device_bus.items():
        per_bus[int(bus)] = per_bus.get(int(bus), 0.0) + block.DeviceP[dev]
    block.feeder = pyo.Block()
    feeder.add_to_model(
        block.feeder,
        controllable_p_mw=per_bus,
        enforce_limits=enforce_limits,
        slack=slack_limits,
    )


def check_offers(
    offers: Mapping[str, BidCurve], devices: Mapping[str, int], blocks_per_device: int
) -> None:
    """Raise if ``offers`` does not hold exactly one fitting curve per device.

    Raises
    ------
    KeyError
        Missing or unknown device ids.
    ValueError
        A curve with more than ``blocks_per_device`` blocks.

    """
    missing, unknown = set(devices) - set(offers), set(offers) - set(devices)
    if missing or unknown:
        msg = f"offers: missing devices {sorted(missing)[:5]}, unknown {sorted(unknown)[:5]}"
        raise KeyError(msg)
    for dev, curve in offers.items():
        if len(curve.blocks) > blocks_per_device:
            msg = (
                f"offer of device {dev!r} has {len(curve.blocks)} blocks, more than "
                f"blocks_per_device={blocks_per_device}"
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class OfferArrays:
    """The offer Params of a block as arrays, devices in ``DEVICES`` order.

    Attributes
    ----------
    p_min_mw : numpy.ndarray
        ``device_p_min_mw`` per device (MW).
    quantity_mw, price_usd_per_mwh : numpy.ndarray
        ``offer_quantity_mw`` (MW) and ``offer_price_usd_per_mwh`` ($/MWh) per device
        (rows) and block slot (columns); unused slots 0.

    """

    p_min_mw: np.ndarray
    quantity_mw: np.ndarray
    price_usd_per_mwh: np.ndarray


def set_offers(block: Any, offers: Mapping[str, BidCurve]) -> OfferArrays:
    """Write each device's offer into the block's mutable Params (in place).

    Parameters
    ----------
    block : pyomo Block
        A block built by :func:`add_der_to_block`.
    offers : mapping of str to BidCurve
        Offer per device id (validated with :func:`check_offers` beforehand).

    Returns
    -------
    OfferArrays
        The values written (MW, $/MWh), for reading solutions without pyomo
        (:class:`DerSolution`).

    """
    n_slots = len(block.OFFER_BLOCKS)
    p_min, qty, price = {}, {}, {}
    for dev in block.DEVICES:
        curve = offers[dev]
        p_min[dev] = float(curve.p_min_mw)
        for k in range(n_slots):
            blk = curve.blocks[k] if k < len(curve.blocks) else None
            qty[dev, k] = float(blk.quantity_mw) if blk else 0.0
            price[dev, k] = float(blk.price_usd_per_mwh) if blk else 0.0
    store_floats(block.device_p_min_mw, p_min)
    store_floats(block.offer_quantity_mw, qty)
    store_floats(block.offer_price_usd_per_mwh, price)
    shape = (len(p_min), n_slots)
    return OfferArrays(
        np.array(list(p_min.values())),
        np.array(list(qty.values())).reshape(shape),
        np.array(list(price.values())).reshape(shape),
    )


def midpoint_operating_point(
    feeder: LinDistFlowFeeder,
    devices: Mapping[str, int],
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
) -> OperatingPoint:
    """Return the loss-linearisation base point of one interval.

    Notes
    -----
    The direct linear power flow (:meth:`LinDistFlowFeeder.solve_power_flow`, lossless
    pass plus one re-linearisation) of the forecast fixed injections with every device at
    the midpoint of its offered range ``(p_min + p_max) / 2``. It depends on the
    interval's inputs only, so an updated model and a freshly built one agree exactly.

    """
    midpoints = {dev: 0.5 * (offers[dev].p_min_mw + offers[dev].p_max_mw) for dev in devices}
    return setpoint_operating_point(feeder, devices, p_fixed_mw, q_fixed_mvar, midpoints)


def setpoint_operating_point(
    feeder: LinDistFlowFeeder,
    devices: Mapping[str, int],
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    setpoints_mw: Mapping[str, float],
    start: OperatingPoint | None = None,
) -> OperatingPoint:
    """Return the loss-linearisation base point at which the model is exact for set-points.

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The feeder.
    devices : mapping of str to int
        Device id -> pandapower bus.
    p_fixed_mw, q_fixed_mvar : pandas.Series
        Uncontrolled net injection per bus (MW, Mvar, injection positive).
    setpoints_mw : mapping of str to float
        Net injection per device id (MW, injection positive).
    start : OperatingPoint, optional
        A nearby point (e.g. the base point of the solve that produced the set-points).

    Returns
    -------
    OperatingPoint
        Two direct linear solves of the injections: the first with the losses linearised
        at ``start`` (or lossless), the second re-linearised at the first's solution (one
        Newton step of the DistFlow equations; ~1e-6 pu from the AC power flow, see
        ``docs/distribution-opf.md``).

    """
    p = injections_with_setpoints(devices, p_fixed_mw, setpoints_mw)
    return feeder.solve_operating_point(p, q_fixed_mvar, operating_point=start, relinearise=1)


def injections_with_setpoints(
    devices: Mapping[str, int], p_fixed_mw: pd.Series, setpoints_mw: Mapping[str, float]
) -> dict[int, float]:
    """Return the fixed injections plus each device's set-point at its bus (MW, by bus)."""
    p = dict(pd.Series(p_fixed_mw, dtype=float).items())  # new buses append, as Series.loc
    for dev, bus in devices.items():
        p[int(bus)] = p.get(int(bus), 0.0) + float(setpoints_mw[dev])
    return p


#: Compiled ``DeviceP`` evaluation per block (see :func:`device_setpoints`).
_SETPOINT_READERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def device_setpoints(block: Any) -> dict[str, float]:
    """Return the solved ``DeviceP`` per device id (MW), from the block's Var values.

    The ``DeviceP`` expressions are compiled on first use per block
    (:func:`gridlayers.highs_params.compile_values`, same values as ``pyo.value``).
    """
    reader = _SETPOINT_READERS.get(block)
    if reader is None:
        devices = list(block.DEVICES)
        values = compile_values([block.DeviceP[d] for d in devices])
        reader = _SETPOINT_READERS[block] = (devices, values)
    devices, values = reader
    return dict(zip(devices, values().tolist(), strict=True))


class DerSolution:
    """Read a solved :func:`add_der_to_block` block from its LP's solution arrays.

    Parameters
    ----------
    block : pyomo Block
        Built by :func:`add_der_to_block`.
    lp : PersistentLP
        The LP of ``block``'s model, solved at least once.
    feeder : LinDistFlowFeeder
        The feeder of ``block`` (maps model buses to pandapower buses).

    Notes
    -----
    Index arrays into :attr:`PersistentLP.col_value` and :attr:`PersistentLP.row_dual`
    are built once; every read is then a few numpy operations. Sums run in the order
    pyomo evaluates ``DeviceP`` and ``DerCost`` (blocks in slot order, then the floor;
    devices then slots), so the values are pyomo's bit for bit (on Python 3.11;
    on 3.12+, where the builtin ``sum`` of floats is compensated, to rounding).

    """

    def __init__(self, block: Any, lp: PersistentLP, feeder: LinDistFlowFeeder) -> None:
        self.devices = list(block.DEVICES)
        slots = list(block.OFFER_BLOCKS)
        offer_vars = [block.OfferBlock[d, k] for d in self.devices for k in slots]
        self.offer_cols = lp.columns(offer_vars).reshape(len(self.devices), len(slots))
        self.interface_col = int(lp.columns([block.feeder.InterfaceP])[0])
        #: HiGHS row of ``PBalance`` per model bus (``feeder.BUSES`` order).
        self.balance_rows = lp.rows(list(block.feeder.PBalance.values()))
        energised = sorted(feeder.bus_node_bus.items())
        self._dlmp_buses = pd.Index([b for b, _ in energised])
        self._dlmp_rows = self.balance_rows[[feeder.node_index[n] for _, n in energised]]

    def setpoints_mw(self, col_value: np.ndarray, offers: OfferArrays) -> np.ndarray:
        """Return ``DeviceP`` per device (MW, injection positive; ``devices`` order)."""
        x = col_value[self.offer_cols]
        total = 0.0 + x[:, 0]
        for k in range(1, x.shape[1]):
            total = total + x[:, k]
        return total + offers.p_min_mw

    def der_cost_usd_per_h(self, col_value: np.ndarray, offers: OfferArrays) -> float:
        """Return ``DerCost``, the as-offered cost of the solved blocks ($/h)."""
        return float(sum((offers.price_usd_per_mwh * col_value[self.offer_cols]).ravel().tolist()))

    def interface_p_mw(self, col_value: np.ndarray) -> float:
        """Return the solved ``InterfaceP`` (MW, export positive)."""
        return float(col_value[self.interface_col])

    def balance_duals(self, row_dual: np.ndarray) -> np.ndarray:
        """Return the ``PBalance`` duals per model bus ($/MWh for a $/h objective)."""
        return row_dual[self.balance_rows]

    def dlmp_usd_per_mwh(self, row_dual: np.ndarray) -> pd.Series:
        """Return the DLMP per energised pandapower bus ($/MWh) of a minimisation.

        The values of :func:`bus_dlmp` of :func:`gridlayers.dso.opf.dlmp_usd_per_mwh`.
        """
        return pd.Series(row_dual[self._dlmp_rows], index=self._dlmp_buses, name="dlmp_usd_per_mwh")


def bus_dlmp(feeder: LinDistFlowFeeder, node_dlmp: pd.Series) -> pd.Series:
    """Spread model-bus DLMPs ($/MWh) to every energised pandapower bus."""
    return pd.Series(
        {b: float(node_dlmp[n]) for b, n in sorted(feeder.bus_node_bus.items())},
        name="dlmp_usd_per_mwh",
    )


class InfeasibleDSOError(RuntimeError):
    """A DSO optimisation had no optimal solution (e.g. an award the feeder cannot deliver)."""
