r"""Minimal DSO: check the aggregators' set-points on the feeder, redispatch at least cost.

In the ``minimal_dso`` paradigm the TSO clears the aggregators' portfolio offers at the
interface bus and the aggregators split their awards in merit order without network
knowledge. The DSO then checks the resulting set-points with its linear feeder model
and, if a limit would be violated, moves devices within their offers.

Notes
-----
Let ``s_d`` be the aggregator set-point of device ``d`` and ``x^0_{dk}`` its block fills
(the offer's blocks filled in price order up to ``s_d``). The redispatch LP is

.. math::

    \min \sum_{d,k} (|\lambda - \pi_{dk}| + \epsilon)\,(U_{dk} + W_{dk})
    \quad\text{s.t.}\quad x_{dk} = x^0_{dk} + U_{dk} - W_{dk},\
    0 \le x_{dk} \le q_{dk},\ U, W \ge 0,\ \text{LinDistFlow with limits},

with the interface export free (the change is settled at the interface price
``lambda``) and ``epsilon = 1e-3`` $/MWh preferring the smallest move.

**Where the model is linearised** (``max_relinearisations > 0``, the default): the
aggregators' set-points are checked with the losses linearised at exactly those
set-points (:func:`~gridlayers.dso.offer_blocks.setpoint_operating_point`, ~1e-6 pu from
the AC power flow of the forecast), not at the midpoint of the offers, so neither a
violation is missed nor a phantom one corrected. After a correction the losses are
re-linearised at the corrected set-points and the LP solved again, at most
``max_relinearisations`` times, until no set-point moves by more than 1e-4 MW. With
``max_relinearisations = 0`` both happen at the interval's midpoint point (the behaviour
before re-linearisation existed).

**Redispatch cost** (``Redispatch.redispatch_cost_usd_per_h``, $/h, always >= 0) is the
compensation for the as-bid opportunity cost of every moved MW, valued at the interface
price: ``sum_{d,k} |lambda - pi_dk| |x_dk - x^0_dk|``. A curtailed block priced ``pi``
loses its margin ``lambda - pi``; a raised block is paid ``pi - lambda`` above what the
energy is worth at the interface. When the aggregator dispatch is in merit order at
``lambda`` this equals ``sum_d [C_d(p_d) - C_d(s_d)] - lambda * sum_d (p_d - s_d)``:
the DER cost change plus the interface energy replaced at ``lambda``.

**Soft-limit fallback** (``slack_penalty_usd_per_mwh``, default 5,000 $/MWh): if no
correction meets the limits (the uncontrolled load and generation alone violate them),
the same LP is solved on a second model whose voltage and thermal limits have slack
priced at that penalty per MW-equivalent (:func:`gridlayers.dso.opf.set_slack_penalty`),
i.e. ``min RedispatchCost + SlackCost``: the least violation, reached by the cheapest
moves. That model is built on first use and updated in place; the hard-limit model is
untouched, so feasible corrections are exactly those without the fallback.
``Redispatch.slack`` reports the slack (:func:`gridlayers.dso.opf.slack_report`); it is
not part of the redispatch cost. ``slack_penalty_usd_per_mwh=None`` raises
:class:`~gridlayers.dso.offer_blocks.InfeasibleDSOError` instead.

"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.dso import opf
from gridlayers.dso.faults import check_fixed_injections, soft_fallback_helps
from gridlayers.dso.lindistflow import LinDistFlowFeeder, LinDistFlowResult
from gridlayers.dso.offer_blocks import (
    InfeasibleDSOError,
    add_der_to_block,
    check_offers,
    device_setpoints,
    midpoint_operating_point,
    set_offers,
    setpoint_operating_point,
)
from gridlayers.dso.persistent_lp import PersistentLP
from gridlayers.highs_params import store_floats

#: Tie-break cost per moved MW ($/MWh), excluded from the reported cost.
EPSILON_USD_PER_MWH = 1e-3
#: Tolerances when counting violations of the linear model (pu, percent).
VM_TOL_PU = 1e-6
LOADING_TOL_PERCENT = 1e-4
#: Re-linearisation stops when no device set-point moves by more than this (MW).
RELINEARISE_TOL_MW = 1e-4
#: Default price of limit slack in the soft-limit fallback ($ per MW-equivalent and hour).
DEFAULT_SLACK_PENALTY_USD_PER_MWH = 5_000.0


@dataclass(frozen=True)
class Redispatch:
    """Outcome of a Minimal-DSO check and correction.

    Attributes
    ----------
    setpoints_mw : dict of str to float
        Corrected set-point per device id (MW, injection positive); the input if feasible.
    redispatch_cost_usd_per_h : float
        Opportunity-cost compensation of the moves ($/h, >= 0; see module notes).
    violations_predicted : int
        Voltage and thermal violations of the linear model at the input set-points
        (buses outside the band plus elements above the loading limit).
    violations_after : int
        The same count at the corrected set-points (0 unless infeasible).
    changed_mw : float
        ``sum_d |p_d - s_d|`` (MW).
    interface_p_mw : float
        Linear-model interface export at the corrected set-points (MW).
    solve_seconds : float
        Wall time of the LPs and re-linearisations (0 when nothing had to change) (s).
    relinearisations : int
        Re-solves with the losses re-linearised at the previous correction.
    slack : dict or None
        ``None`` if the correction meets the limits; otherwise the limit slack of the
        soft-limit fallback's correction (:func:`gridlayers.dso.opf.slack_report`).
    hard_limit_failure : str or None
        Why the hard-limit LP failed (set with ``slack``).

    """

    setpoints_mw: dict[str, float]
    redispatch_cost_usd_per_h: float
    violations_predicted: int
    violations_after: int
    changed_mw: float
    interface_p_mw: float
    solve_seconds: float
    relinearisations: int = 0
    slack: dict[str, float | int] | None = None
    hard_limit_failure: str | None = None


def count_violations(feeder: LinDistFlowFeeder, state: LinDistFlowResult) -> int:
    """Count buses outside ``[vm_min, vm_max]`` and elements above the loading limit."""
    vm = state.vm_pu.drop(index=[feeder.root_bus], errors="ignore")
    n_vm = int(((vm > feeder.vm_max_pu + VM_TOL_PU) | (vm < feeder.vm_min_pu - VM_TOL_PU)).sum())
    n_th = int((state.loading_percent > feeder.max_loading_percent + LOADING_TOL_PERCENT).sum())
    return n_vm + n_th


def block_fills(curve: BidCurve, p_mw: float, n_slots: int) -> list[float]:
    """Fill ``curve``'s blocks in price order up to injection ``p_mw`` (clipped), MW."""
    rest = min(max(p_mw, curve.p_min_mw), curve.p_max_mw) - curve.p_min_mw
    out = []
    for k in range(n_slots):
        q = curve.blocks[k].quantity_mw if k < len(curve.blocks) else 0.0
        take = min(max(rest, 0.0), q)
        out.append(take)
        rest -= take
    return out


class Redispatcher:
    """Minimal-DSO redispatch model of one LDA (built once, updated in place).

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The LDA's feeder.
    devices : mapping of str to int
        Device id -> pandapower bus.
    blocks_per_device : int
        Offer block slots per device.
    max_relinearisations : int
        See the module notes (0: check and correct at the midpoint point only).
    slack_penalty_usd_per_mwh : float or None
        Price of limit slack in the soft-limit fallback ($ per MW-equivalent and hour);
        ``None``: hard limits only (see the module notes).

    """

    def __init__(
        self,
        feeder: LinDistFlowFeeder,
        devices: Mapping[str, int],
        blocks_per_device: int,
        *,
        max_relinearisations: int = 3,
        slack_penalty_usd_per_mwh: float | None = DEFAULT_SLACK_PENALTY_USD_PER_MWH,
    ) -> None:
        if slack_penalty_usd_per_mwh is not None and not slack_penalty_usd_per_mwh > 0:
            msg = f"slack_penalty_usd_per_mwh must be > 0 or None, got {slack_penalty_usd_per_mwh}"
            raise ValueError(msg)
        self.feeder, self.devices = feeder, dict(devices)
        self.blocks_per_device = blocks_per_device
        self.max_relinearisations = max_relinearisations
        self.slack_penalty_usd_per_mwh = slack_penalty_usd_per_mwh
        self.model = self._build(soft=False)
        self._lp = PersistentLP(self.model)
        self._soft: tuple[pyo.ConcreteModel, PersistentLP] | None = None  # built on first use

    def _build(self, soft: bool) -> pyo.ConcreteModel:
        """Build the redispatch model once; ``soft``: limits with slack (module notes)."""
        feeder = self.feeder
        m = pyo.ConcreteModel(
            name="gridlayers_dso_redispatch_soft" if soft else "gridlayers_dso_redispatch"
        )
        add_der_to_block(m, feeder, self.devices, self.blocks_per_device, slack_limits=soft)
        mut = {"mutable": True, "within": pyo.Reals, "initialize": 0.0}
        idx = (m.DEVICES, m.OFFER_BLOCKS)
        m.block_setpoint_mw = pyo.Param(*idx, doc="aggregator block fill (MW)", **mut)
        m.move_price_usd_per_mwh = pyo.Param(*idx, doc="|lambda - price| + epsilon ($/MWh)", **mut)
        m.RaiseBlock = pyo.Var(*idx, within=pyo.NonNegativeReals, doc="raise (MW)")
        m.LowerBlock = pyo.Var(*idx, within=pyo.NonNegativeReals, doc="lower (MW)")
        m.Move = pyo.Constraint(
            *idx,
            rule=lambda b, d, k: (
                b.OfferBlock[d, k]
                == b.block_setpoint_mw[d, k] + b.RaiseBlock[d, k] - b.LowerBlock[d, k]
            ),
            doc="block fill = aggregator fill + raise - lower (MW)",
        )
        cost = sum(
            m.move_price_usd_per_mwh[d, k] * (m.RaiseBlock[d, k] + m.LowerBlock[d, k])
            for d in m.DEVICES
            for k in m.OFFER_BLOCKS
        )
        if soft:
            opf.set_slack_penalty(feeder, m.feeder, self.slack_penalty_usd_per_mwh)
            cost = cost + m.feeder.SlackCost
        m.RedispatchCost = pyo.Objective(
            expr=cost, sense=pyo.minimize, doc="$/h (plus the slack penalty if soft)"
        )
        return m

    def redispatch(
        self,
        setpoints_mw: Mapping[str, float],
        p_fixed_mw: pd.Series,
        q_fixed_mvar: pd.Series,
        offers: Mapping[str, BidCurve],
        interface_price_usd_per_mwh: float,
    ) -> Redispatch:
        """Check ``setpoints_mw`` on the linear feeder model and correct them if needed.

        Parameters
        ----------
        setpoints_mw : mapping of str to float
            Aggregator set-point per device id (MW, injection positive).
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled net injection per bus (MW, Mvar, injection positive).
        offers : mapping of str to BidCurve
            The devices' offers (price the moves).
        interface_price_usd_per_mwh : float
            Interface LMP ($/MWh) at which changed interface energy is valued.

        Returns
        -------
        Redispatch
            Corrected set-points, cost ($/h), violation counts.

        Raises
        ------
        gridlayers.dso.faults.DSOBadCoefficientError
            A non-finite or extreme fixed injection (checked before anything is written).
        InfeasibleDSOError
            No correction within the limits and the soft-limit fallback is off, or the
            fault is one slack cannot cure (time limit, bad coefficient).

        """
        check_offers(offers, self.devices, self.blocks_per_device)
        check_fixed_injections(self.feeder, p_fixed_mw, q_fixed_mvar)  # DSOBadCoefficientError
        if self.max_relinearisations > 0:
            point = setpoint_operating_point(
                self.feeder, self.devices, p_fixed_mw, q_fixed_mvar, setpoints_mw
            )
        else:
            point = midpoint_operating_point(
                self.feeder, self.devices, p_fixed_mw, q_fixed_mvar, offers
            )
        before = self.state(setpoints_mw, p_fixed_mw, q_fixed_mvar, point)
        n_before = count_violations(self.feeder, before)
        if n_before == 0:
            return Redispatch(dict(setpoints_mw), 0.0, 0, 0, 0.0, float(before.interface_p_mw), 0.0)
        lam = float(interface_price_usd_per_mwh)
        fills, weights = self._fills_and_weights(setpoints_mw, offers, lam)
        inputs = (p_fixed_mw, q_fixed_mvar, offers, fills, weights, point)
        failure = None
        try:
            m, new, point, n_relin, seconds = self._correct(self.model, self._lp, *inputs)
        except InfeasibleDSOError as exc:
            if self.slack_penalty_usd_per_mwh is None or not soft_fallback_helps(exc):
                raise
            failure = self._lp.named_failure(exc)  # names the conflicting constraint families
            if self._soft is None:
                model = self._build(soft=True)
                self._soft = (model, PersistentLP(model))
            m, new, point, n_relin, seconds = self._correct(*self._soft, *inputs)
        cost = sum(
            weights[key] * (pyo.value(m.RaiseBlock[key]) + pyo.value(m.LowerBlock[key]))
            for key in weights
        )
        after = self.state(new, p_fixed_mw, q_fixed_mvar, point)
        return Redispatch(
            setpoints_mw=new,
            redispatch_cost_usd_per_h=float(cost),
            violations_predicted=n_before,
            violations_after=count_violations(self.feeder, after),
            changed_mw=float(np.sum([abs(new[d] - setpoints_mw[d]) for d in new])),
            interface_p_mw=float(after.interface_p_mw),
            solve_seconds=seconds,
            relinearisations=n_relin,
            slack=None if failure is None else opf.slack_report(m.feeder),
            hard_limit_failure=failure,
        )

    def _correct(
        self,
        m: pyo.ConcreteModel,
        lp: PersistentLP,
        p_fixed_mw: pd.Series,
        q_fixed_mvar: pd.Series,
        offers: Mapping[str, BidCurve],
        fills: Mapping[tuple[str, int], float],
        weights: Mapping[tuple[str, int], float],
        point: object,
    ) -> tuple[pyo.ConcreteModel, dict[str, float], object, int, float]:
        """Solve the correction LP on ``m`` and re-linearise (module notes).

        Returns the model, the corrected set-points (MW), the final linearisation point,
        the number of re-linearisations and the wall time (s); the model's variables hold
        the last successful solve.
        """
        set_offers(m, offers)
        self.feeder.set_fixed_injections(m.feeder, p_fixed_mw, q_fixed_mvar)
        self.feeder.set_operating_point(m.feeder, point)
        store_floats(m.block_setpoint_mw, fills)
        store_floats(
            m.move_price_usd_per_mwh, {key: w + EPSILON_USD_PER_MWH for key, w in weights.items()}
        )
        seconds = lp.solve()
        new = device_setpoints(m)
        n_relin = 0
        for _ in range(self.max_relinearisations):
            start = time.perf_counter()
            moved_point = setpoint_operating_point(
                self.feeder, self.devices, p_fixed_mw, q_fixed_mvar, new, start=point
            )
            self.feeder.set_operating_point(m.feeder, moved_point)
            try:
                lp.solve()
            except InfeasibleDSOError:  # keep the last correction and its point
                self.feeder.set_operating_point(m.feeder, point)
                seconds += time.perf_counter() - start
                break
            seconds += time.perf_counter() - start
            point, previous, new = moved_point, new, device_setpoints(m)
            n_relin += 1
            if max((abs(new[d] - previous[d]) for d in new), default=0.0) <= RELINEARISE_TOL_MW:
                break
        return m, new, point, n_relin, seconds

    def _fills_and_weights(
        self, setpoints_mw: Mapping[str, float], offers: Mapping[str, BidCurve], lam: float
    ) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]:
        """Return aggregator block fills (MW) and move prices ``|lam - price|`` ($/MWh)."""
        fills, weights = {}, {}
        for d in self.devices:
            curve = offers[d]
            for k, x0 in enumerate(block_fills(curve, setpoints_mw[d], self.blocks_per_device)):
                fills[d, k] = x0
                price = curve.blocks[k].price_usd_per_mwh if k < len(curve.blocks) else lam
                weights[d, k] = abs(lam - price)
        return fills, weights

    def state(
        self,
        setpoints_mw: Mapping[str, float],
        p_fixed_mw: pd.Series,
        q_fixed_mvar: pd.Series,
        point: object,
    ) -> LinDistFlowResult:
        """Linear power flow (losses linearised at ``point``) with devices at ``setpoints_mw``."""
        p = pd.Series(p_fixed_mw, dtype=float).copy()
        for dev, bus in self.devices.items():
            p.loc[bus] = p.get(bus, 0.0) + float(setpoints_mw[dev])
        return self.feeder.solve_power_flow(p, q_fixed_mvar, operating_point=point, relinearise=0)
