"""A DSO strategy whose decisions come from an external agent over ZeroMQ ("external").

Every call of the :class:`~gridlayers.dso.strategies.DSOStrategy` protocol is forwarded as
one JSON request (:mod:`gridlayers.gateway.protocol`, ``docs/external-agents.md``) to the
agent at ``endpoint``; its reply is checked and converted back to the domain objects:

``offer``  :meth:`ExternalDSO.virtual_resource` -> the interface bid curve
           (:class:`~gridlayers.dso.virtual_resource.VirtualResource`)
``award``  :meth:`ExternalDSO.disaggregate` -> device set-points and, optionally, DLMPs
           (:class:`~gridlayers.dso.operator.Disaggregation`)
``redispatch``  Minimal DSO's :meth:`ExternalDSO.redispatch` -> corrected set-points
           (:class:`~gridlayers.dso.redispatch.Redispatch`)

When the agent does not reply within ``timeout_ms`` (the socket is then reset, lazy
pirate), or its reply is invalid, the **fallback** strategy (default ``"optimal"``) decides
that call instead. Each failure and each fallback is kept as an event
(:meth:`ExternalDSO.drain_events`; the DSO agent hands them to the ``event`` table) and
counted (:attr:`ExternalDSO.stats`). The flexibility probe's ``interface_range`` is the
fallback's.

Scenario (one LDA)::

    dso_strategy: external
    dso_params: {endpoint: "tcp://127.0.0.1:5555", timeout_ms: 500, fallback: optimal}
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
import zmq
from pydantic import BaseModel, ConfigDict, Field

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.operator import Disaggregation
from gridlayers.dso.redispatch import Redispatch, block_fills, count_violations
from gridlayers.dso.strategies import DSOStrategy, make_dso
from gridlayers.dso.virtual_resource import RANGE_TOL_MW, VirtualResource
from gridlayers.gateway import protocol
from gridlayers.gateway.protocol import ProtocolError
from gridlayers.gateway.transport import GatewayTimeout, LazyPirateClient

#: Event kinds this strategy reports (``event.kind`` in the results).
EVENT_KINDS = ("gateway_timeout", "gateway_invalid_reply", "gateway_error", "gateway_fallback")


class GatewayParams(BaseModel):
    """The ``dso_params`` of the ``external`` strategy (checked when the DSO is built)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(
        "tcp://127.0.0.1:5555", description="ZeroMQ endpoint the agent's REP socket binds."
    )
    timeout_ms: int = Field(1000, gt=0, description="Time-out per request (ms).")
    allow_remote: bool = Field(False, description="Accept a non-loopback endpoint.")
    fallback: str = Field("optimal", description="DSO strategy used when the agent fails.")
    fallback_params: dict[str, Any] = Field(
        default_factory=dict, description="Extra parameters of the fallback strategy."
    )
    loss_allowance_pu: float = Field(
        0.2,
        ge=0.0,
        description=(
            "Sanity bound on an offered range: it may extend beyond the lossless range of "
            "fixed injections plus device offers by this fraction of the total absolute "
            "injection (-)."
        ),
    )
    award_tolerance_mw: float | None = Field(
        None,
        gt=0.0,
        description=(
            "If set, reject set-points whose linear-model interface export misses the award "
            "by more than this (MW); None: any deviation is settled in real time."
        ),
    )


class ExternalDSO:
    """DSO strategy forwarding its decisions to an external agent (see the module notes).

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The LDA's feeder model (the fallback's, and for checking replies).
    devices : mapping of str to int
        Device id -> pandapower bus.
    lda_name : str, optional
        Name of the LDA, sent as ``lda`` in every request (one agent may serve several).
    blocks_per_device, max_blocks : int
        Offer block slots per device; largest number of blocks of the interface curve.
    slack_penalty_usd_per_mwh : float or None
        Passed to the fallback (soft-limit fallback, $ per MW-equivalent and hour).
    **params
        :class:`GatewayParams` fields.

    """

    def __init__(
        self,
        feeder: LinDistFlowFeeder,
        devices: Mapping[str, int],
        *,
        lda_name: str | None = None,
        blocks_per_device: int = 6,
        max_blocks: int = 10,
        slack_penalty_usd_per_mwh: float | None = 5000.0,
        **params: Any,
    ) -> None:
        self.params = GatewayParams(**params)
        self.lda = lda_name or ""
        self.max_blocks = max_blocks
        self.client = LazyPirateClient(
            self.params.endpoint, self.params.timeout_ms, self.params.allow_remote
        )
        self.fallback: DSOStrategy = make_dso(
            self.params.fallback,
            feeder,
            devices,
            blocks_per_device=blocks_per_device,
            max_blocks=max_blocks,
            slack_penalty_usd_per_mwh=slack_penalty_usd_per_mwh,
            **self.params.fallback_params,
        )
        self.feeder = feeder
        self.devices: dict[str, int] = {str(d): int(b) for d, b in devices.items()}
        self._buses = set(feeder.bus_node_bus)
        self._sequence = 0
        self._inputs: tuple[pd.Series, pd.Series, dict[str, BidCurve]] | None = None
        self._fallback_primed = False
        self._events: list[dict[str, str]] = []
        #: Counters since construction: requests, replies accepted, time-outs, invalid
        #: replies, transport errors, fallbacks; round-trip time of accepted replies (s).
        self.stats: dict[str, float] = dict.fromkeys(
            ("requests", "accepted", "timeouts", "invalid", "errors", "fallbacks",
             "round_trip_seconds"), 0
        )  # fmt: skip

    # ------------------------------------------------------------------ protocol
    def virtual_resource(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> VirtualResource:
        """Return the agent's interface offer (MW, $/MWh), or the fallback's if it fails.

        Parameters
        ----------
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled injection per pandapower bus (MW, Mvar, injection positive).
        offers : mapping of str to BidCurve
            Offer per device id (MW, $/MWh).

        """
        self._inputs = (p_fixed_mw, q_fixed_mvar, dict(offers))
        self._fallback_primed = False
        fields = protocol.interval_inputs(p_fixed_mw, q_fixed_mvar, offers, self.devices)
        fields["max_blocks"] = self.max_blocks
        outcome = self._ask("offer", fields, lambda reply: self._resource(reply))
        if outcome is not None:
            return outcome
        self._fallback_primed = True
        return self.fallback.virtual_resource(p_fixed_mw, q_fixed_mvar, offers)

    def disaggregate(self, award_mw: float, interface_price_usd_per_mwh: float) -> Disaggregation:
        """Return the agent's set-points for the award (MW), or the fallback's if it fails.

        Parameters
        ----------
        award_mw : float
            The LDA's cleared interface export (MW, injection positive).
        interface_price_usd_per_mwh : float
            The interface LMP ($/MWh).

        """
        if self._inputs is None:
            msg = "call virtual_resource() first"
            raise RuntimeError(msg)
        p_fixed, q_fixed, offers = self._inputs
        fields = protocol.interval_inputs(p_fixed, q_fixed, offers, self.devices)
        fields.update(
            award_mw=float(award_mw), interface_price_usd_per_mwh=float(interface_price_usd_per_mwh)
        )
        outcome = self._ask(
            "award", fields, lambda reply: self._split(reply, award_mw, interface_price_usd_per_mwh)
        )
        if outcome is not None:
            return outcome
        if not self._fallback_primed:  # the agent made the offer: give the fallback the inputs
            prime = getattr(self.fallback, "set_interval", None) or self.fallback.virtual_resource
            prime(p_fixed, q_fixed, offers)
            self._fallback_primed = True
        return self.fallback.disaggregate(award_mw, interface_price_usd_per_mwh)

    # ------------------------------------------------- outside the protocol: fallback's
    def interface_range(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> tuple[float, float]:
        """Return the fallback's feasible interface export range (MW, MW): flexibility probe."""
        self._fallback_primed = False  # the probe overwrites the fallback's interval
        return self.fallback.interface_range(p_fixed_mw, q_fixed_mvar, offers)  # type: ignore[attr-defined]

    def redispatch(
        self,
        setpoints_mw: Mapping[str, float],
        p_fixed_mw: pd.Series,
        q_fixed_mvar: pd.Series,
        offers: Mapping[str, BidCurve],
        interface_price_usd_per_mwh: float,
    ) -> Redispatch:
        """Minimal DSO: the agent's correction of the aggregators' set-points, or the fallback's.

        Parameters
        ----------
        setpoints_mw : mapping of str to float
            The aggregators' merit-order set-points per device (MW, injection positive).
        p_fixed_mw, q_fixed_mvar : pandas.Series
            Forecast uncontrolled injection per pandapower bus (MW, Mvar).
        offers : mapping of str to BidCurve
            Offer per device id (MW, $/MWh).
        interface_price_usd_per_mwh : float
            The interface LMP ($/MWh): prices the moves (redispatch cost).

        """
        price = float(interface_price_usd_per_mwh)
        fields = protocol.interval_inputs(p_fixed_mw, q_fixed_mvar, offers, self.devices)
        fields.update(
            proposed_mw={d: float(v) for d, v in setpoints_mw.items()},
            interface_price_usd_per_mwh=price,
        )
        inputs = (p_fixed_mw, q_fixed_mvar, dict(offers))
        outcome = self._ask(
            "redispatch", fields, lambda reply: self._correction(reply, setpoints_mw, inputs, price)
        )
        if outcome is not None:
            return outcome
        return self.fallback.redispatch(  # type: ignore[attr-defined]
            setpoints_mw, p_fixed_mw, q_fixed_mvar, offers, interface_price_usd_per_mwh
        )

    def drain_events(self) -> list[dict[str, str]]:
        """Return and forget the events since the last call (``{"kind", "message"}``)."""
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        """Close the socket."""
        self.client.close()

    # ------------------------------------------------------------------ internals
    def _ask(self, kind: str, fields: dict[str, Any], convert: Any) -> Any:
        """Send one request; return ``convert(reply)`` or ``None`` after recording a failure."""
        self._sequence += 1
        message = protocol.request(kind, self._sequence, self.lda, **fields)
        self.stats["requests"] += 1
        try:
            reply, seconds = self.client.request(message)
            protocol.check_envelope(reply, kind, self._sequence)
            result = convert(reply)
        except GatewayTimeout as exc:
            self._fail("timeouts", "gateway_timeout", kind, str(exc))
            return None
        except ProtocolError as exc:
            self._fail("invalid", "gateway_invalid_reply", kind, f"invalid reply: {exc}")
            return None
        except zmq.ZMQError as exc:
            self.client.reset()
            self._fail("errors", "gateway_error", kind, f"ZeroMQ error: {exc}")
            return None
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # anything else a hostile reply can provoke in the checks: still invalid, never
            # a crashed run
            detail = f"{type(exc).__name__}: {str(exc)[:80]}"
            self._fail("invalid", "gateway_invalid_reply", kind, f"invalid reply: {detail}")
            return None
        self.stats["accepted"] += 1
        self.stats["round_trip_seconds"] += seconds
        return result

    def _fail(self, counter: str, kind: str, call: str, message: str) -> None:
        self.stats[counter] += 1
        self.stats["fallbacks"] += 1
        self._events.append({"kind": kind, "message": f"{call}: {message}"})
        self._events.append(
            {"kind": "gateway_fallback", "message": f"{call}: {self.params.fallback!r} used"}
        )

    def _resource(self, reply: Mapping[str, Any]) -> VirtualResource:
        """Check the offer reply's curve against the interval's inputs (module notes)."""
        p_fixed, _, offers = self._inputs  # type: ignore[misc]
        curve = protocol.parse_curve(reply["curve"], self.max_blocks)
        d_lo = sum(c.p_min_mw for c in offers.values())
        d_hi = sum(c.p_max_mw for c in offers.values())
        fixed = float(p_fixed.sum())
        scale = float(p_fixed.abs().sum()) + sum(
            max(abs(c.p_min_mw), abs(c.p_max_mw)) for c in offers.values()
        )
        allowance = self.params.loss_allowance_pu * scale + 1e-6
        lo, hi = fixed + d_lo - allowance, fixed + d_hi + allowance
        if not (lo <= curve.p_min_mw and curve.p_max_mw <= hi):
            msg = (
                f"curve range [{curve.p_min_mw:.6g}, {curve.p_max_mw:.6g}] MW is outside "
                f"[{lo:.6g}, {hi:.6g}] MW (fixed injections plus device offers, with the "
                "loss allowance)"
            )
            raise ProtocolError(msg)
        span = d_hi - d_lo
        return VirtualResource(
            curve=curve,
            p_min_mw=curve.p_min_mw,
            p_max_mw=curve.p_max_mw,
            der_p_min_mw=d_lo,
            der_p_max_mw=d_hi,
            delivery_factor=(curve.p_max_mw - curve.p_min_mw) / span
            if span > RANGE_TOL_MW
            else 1.0,
            solve_seconds=0.0,
            n_variables=0,
            n_constraints=0,
            method="external",
        )

    def _split(self, reply: Mapping[str, Any], award_mw: float, price: float) -> Disaggregation:
        """Check the award reply and evaluate its set-points on the linear feeder model."""
        start = time.perf_counter()
        p_fixed, q_fixed, offers = self._inputs  # type: ignore[misc]
        setpoints = protocol.parse_setpoints(reply["setpoints_mw"], offers)
        dlmp = protocol.parse_dlmps(reply.get("dlmp_usd_per_mwh", {}), self._buses, price)
        p = self._injections(p_fixed, setpoints)
        export = float(self.feeder.solve_power_flow(p, q_fixed).interface_p_mw)
        tol = self.params.award_tolerance_mw
        if tol is not None and abs(export - award_mw) > tol:
            msg = (
                f"set-points export {export:.6g} MW, award {award_mw:.6g} MW "
                f"(award_tolerance_mw {tol})"
            )
            raise ProtocolError(msg)
        return Disaggregation(
            setpoints_mw=setpoints,
            dlmp_usd_per_mwh=dlmp,
            interface_p_mw=export,
            cost_usd_per_h=sum(offers[d].cost_usd_per_h(p) for d, p in setpoints.items()),
            losses_p_mw=float(p.sum()) - export,
            solve_seconds=time.perf_counter() - start,
        )

    def _injections(self, p_fixed: pd.Series, setpoints: Mapping[str, float]) -> pd.Series:
        """Return the fixed injections plus the device set-points per bus (MW)."""
        by_bus: dict[int, float] = {}
        for dev, p_mw in setpoints.items():
            by_bus[self.devices[dev]] = by_bus.get(self.devices[dev], 0.0) + p_mw
        return p_fixed.add(pd.Series(by_bus, dtype=float), fill_value=0.0)

    def _correction(
        self,
        reply: Mapping[str, Any],
        proposed: Mapping[str, float],
        inputs: tuple[pd.Series, pd.Series, dict[str, BidCurve]],
        price: float,
    ) -> Redispatch:
        """Check a redispatch reply; evaluate it as the Minimal DSO's redispatcher reports.

        Violations are counted on the linear model (losses linearised once at the
        set-points) before and after; the cost is ``sum_dk |price - pi_dk| |x_dk - x0_dk|``
        over the offer blocks filled in price order (:mod:`gridlayers.dso.redispatch`).
        """
        start = time.perf_counter()
        p_fixed, q_fixed, offers = inputs
        setpoints = protocol.parse_setpoints(reply["setpoints_mw"], offers)
        before = self.feeder.solve_power_flow(self._injections(p_fixed, proposed), q_fixed)
        after = self.feeder.solve_power_flow(self._injections(p_fixed, setpoints), q_fixed)
        cost = 0.0
        for dev, curve in offers.items():
            n = len(curve.blocks)
            fills = block_fills(curve, setpoints[dev], n)
            fills0 = block_fills(curve, float(proposed[dev]), n)
            cost += sum(
                abs(price - b.price_usd_per_mwh) * abs(x - x0)
                for b, x, x0 in zip(curve.blocks, fills, fills0, strict=True)
            )
        return Redispatch(
            setpoints_mw=setpoints,
            redispatch_cost_usd_per_h=cost,
            violations_predicted=count_violations(self.feeder, before),
            violations_after=count_violations(self.feeder, after),
            changed_mw=sum(abs(setpoints[d] - float(proposed[d])) for d in offers),
            interface_p_mw=float(after.interface_p_mw),
            solve_seconds=time.perf_counter() - start,
        )
