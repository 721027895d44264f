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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.highs import freeze_structure, persistent_highs
from gridlayers.highs_params import compile_values, store_floats

if TYPE_CHECKING:
    from gridlayers.dso.lindistflow import LinDistFlowFeeder
    from gridlayers.dso.linear_system import OperatingPoint
    from gridlayers.highs_params import ParamUpdater


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


def set_offers(block: Any, offers: Mapping[str, BidCurve]) -> None:
    """Write each device's offer into the block's mutable Params (in place).

    Parameters
    ----------
    block : pyomo Block
        A block built by :func:`add_der_to_block`.
    offers : mapping of str to BidCurve
        Offer per device id (validated with :func:`check_offers` beforehand).

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
    """Return the solved ``DeviceP`` per device id (MW).

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


def bus_dlmp(feeder: LinDistFlowFeeder, node_dlmp: pd.Series) -> pd.Series:
    """Spread model-bus DLMPs ($/MWh) to every energised pandapower bus."""
    return pd.Series(
        {b: float(node_dlmp[n]) for b, n in sorted(feeder.bus_node_bus.items())},
        name="dlmp_usd_per_mwh",
    )


class PersistentLP:
    """A pyomo model solved repeatedly by persistent HiGHS, structure fixed after solve 1.

    Parameters
    ----------
    model : pyomo ConcreteModel
        Built once; afterwards only mutable Param values, variable bounds (through
        :meth:`set_bounds`) and the choice among the model's prebuilt objectives change.

    Notes
    -----
    Uses ``pyomo.contrib.solver.solvers.highs.Highs`` as
    :class:`gridlayers.market.TransmissionMarket` does: after the first solve all of
    ``config.auto_updates`` is switched off and a compiled
    :class:`~gridlayers.highs_params.ParamUpdater` pushes the Param-dependent numbers
    (only when the caller says Params changed since the last solve), switches among
    cached objectives and loads the primal solution; the HiGHS model is exactly the one
    pyomo's ``update_parameters`` / ``set_objective`` would give. Variable bounds
    (``set_bounds``) go through the persistent interface's ``update_variables``.

    HiGHS warm-starts each solve from the previous basis. That basis can be numerically
    poor for the next problem: on the congested scenario (rural feeder, 12:00) the
    disaggregation LP after the virtual resource's last sample failed with
    ``Dual simplex ratio test failed due to excessive dual values`` (model status
    ``kNotset``, reported as ``unknown``) although it is feasible. A solve that ends
    neither optimal nor proven infeasible is therefore repeated once without a basis
    (``clearSolver``: presolve and a cold start); ``cold_restarts`` counts them.

    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.solver = persistent_highs()
        self._objective: Any = None
        self._updater: ParamUpdater | None = None
        self.last_result: Any = None
        #: Solves repeated without a starting basis after a warm start failed (see notes).
        self.cold_restarts = 0

    def set_bounds(self, var: Any, lb: float | None, ub: float | None) -> None:
        """Set a variable's bounds (MW) and push them to the solver (in place)."""
        var.setlb(lb)
        var.setub(ub)
        if self._updater is not None:
            self.solver.update_variables([var])
            self._updater.var_updated(var)

    def set_bounds_many(self, bounds: Sequence[tuple[Any, float | None, float | None]]) -> None:
        """Set the bounds of several variables, ``(var, lb, ub)`` each, in one solver update."""
        for var, lb, ub in bounds:
            var.setlb(lb)
            var.setub(ub)
        if self._updater is not None and bounds:
            variables = [var for var, _, _ in bounds]
            self.solver.update_variables(variables)
            for var in variables:
                self._updater.var_updated(var)

    def _select(self, objective: Any) -> None:
        if objective is None or objective is self._objective:
            return
        for obj in self.model.component_data_objects(pyo.Objective, descend_into=True):
            obj.deactivate()
        objective.activate()
        if self._updater is not None:
            self._updater.set_objective(objective)
        self._objective = objective

    def solve(self, objective: Any = None, *, params_changed: bool = True) -> float:
        """Solve and load the primal solution; return the wall time incl. updates (s).

        Parameters
        ----------
        objective : pyomo Objective, optional
            One of the model's objectives to minimise (activated, the others deactivated);
            ``None`` keeps the current one.
        params_changed : bool
            Whether any mutable Param changed since the last solve.

        """
        import time

        from pyomo.contrib.solver.common.results import TerminationCondition

        start = time.perf_counter()
        self._select(objective)
        if self._updater is not None and params_changed:
            self._updater.push()
        res = self.solver.solve(
            self.model, load_solutions=False, raise_exception_on_nonoptimal_result=False
        )
        if self._updater is None:
            self._updater = freeze_structure(self.solver)
        if res.termination_condition not in (
            TerminationCondition.convergenceCriteriaSatisfied,
            TerminationCondition.provenInfeasible,
        ):  # numerical trouble of a warm start (see notes): once more from scratch
            self.solver._solver_model.clearSolver()  # noqa: SLF001 - drop the basis
            res = self.solver.solve(
                self.model, load_solutions=False, raise_exception_on_nonoptimal_result=False
            )
            self.cold_restarts += 1
        seconds = time.perf_counter() - start
        if res.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
            msg = f"DSO optimisation failed: {res.termination_condition.name}"
            raise InfeasibleDSOError(msg)
        self._updater.load_vars()  # as res.solution_loader.load_vars(), faster
        self.last_result = res
        return seconds

    def duals(self, constraints: list[Any]) -> dict[Any, float]:
        """Return the row duals of the last solve (sign as HiGHS reports for a minimisation)."""
        return self.last_result.solution_loader.get_duals(constraints)


class InfeasibleDSOError(RuntimeError):
    """A DSO optimisation had no optimal solution (e.g. an award the feeder cannot deliver)."""
