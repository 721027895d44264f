"""The gateway's message format, version 1: JSON requests and strict reply parsing.

Pure functions, no sockets: :mod:`gridlayers.gateway.transport` moves the bytes,
:mod:`gridlayers.gateway.dso` decides what to ask. Every message is one UTF-8 JSON object
with ``"version": 1``, a ``"type"`` and the gateway's ``"sequence"`` number, which the
reply must echo. Field names carry their units (``_mw``, ``_mvar``, ``_usd_per_mwh``); a
reply with an unknown field (e.g. ``setpoints_kw``) is rejected, so a unit mix-up cannot
pass silently. The format, with examples, is documented in ``docs/external-agents.md``.

Conventions: injection positive (:mod:`gridlayers.conventions`); bus keys are
pandapower bus indices written as JSON strings; numbers must be finite (``NaN`` and
``Infinity`` are refused in both directions).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gridlayers.domain.bid_curve import BidBlock, BidCurve

#: Version of the message format this module speaks.
PROTOCOL_VERSION = 1

#: Set-points may leave the device's offered range by this much (MW); they are clipped.
RANGE_TOL_MW = 1e-6

#: Fields a reply of each type may carry (besides ``version``, ``type``, ``sequence``).
REPLY_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # type -> (required, optional)
    "offer": ({"curve"}, set()),
    "award": ({"setpoints_mw"}, {"dlmp_usd_per_mwh"}),
    "redispatch": ({"setpoints_mw"}, set()),
}


class ProtocolError(ValueError):
    """A reply that breaks the message format; the message names the problem."""


def _reject_constant(name: str) -> float:
    msg = f"non-finite number {name} is not allowed"
    raise ProtocolError(msg)


def dumps(message: Mapping[str, Any]) -> bytes:
    """Encode a message as UTF-8 JSON (raises ``ValueError`` on NaN or infinity)."""
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode()


def loads(raw: bytes) -> dict[str, Any]:
    """Decode one message; raise :class:`ProtocolError` unless it is a JSON object."""
    try:
        message = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        msg = f"reply is not UTF-8 ({exc.reason})"
        raise ProtocolError(msg) from None
    except json.JSONDecodeError as exc:
        msg = f"reply is not JSON ({exc.msg} at character {exc.pos})"
        raise ProtocolError(msg) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer past Python's digit limit
        msg = f"reply is not usable JSON ({type(exc).__name__}: {str(exc)[:80]})"
        raise ProtocolError(msg) from None
    if not isinstance(message, dict):
        msg = f"reply must be a JSON object, got {type(message).__name__}"
        raise ProtocolError(msg)
    return message


# ----------------------------------------------------------------------------- requests
def encode_curve(curve: BidCurve) -> dict[str, Any]:
    """Return a bid curve as ``{"p_min_mw", "blocks": [{"quantity_mw", "price_usd_per_mwh"}]}``."""
    return {
        "p_min_mw": float(curve.p_min_mw),
        "blocks": [
            {"quantity_mw": float(b.quantity_mw), "price_usd_per_mwh": float(b.price_usd_per_mwh)}
            for b in curve.blocks
        ],
    }


def interval_inputs(
    p_fixed_mw: pd.Series,
    q_fixed_mvar: pd.Series,
    offers: Mapping[str, BidCurve],
    devices: Mapping[str, int],
) -> dict[str, Any]:
    """Return the ``fixed`` and ``devices`` fields shared by every request of an interval.

    Parameters
    ----------
    p_fixed_mw, q_fixed_mvar : pandas.Series
        Forecast uncontrolled injection per pandapower bus (MW, Mvar, injection positive).
    offers : mapping of str to BidCurve
        Offer per device id (MW, $/MWh).
    devices : mapping of str to int
        Device id -> pandapower bus.

    """
    return {
        "fixed": {
            "p_mw": {str(int(b)): float(v) for b, v in p_fixed_mw.items()},
            "q_mvar": {str(int(b)): float(v) for b, v in q_fixed_mvar.items()},
        },
        "devices": {
            d: {"bus": int(devices[d]), "offer": encode_curve(c)} for d, c in offers.items()
        },
    }


def request(kind: str, sequence: int, lda: str, **fields: Any) -> dict[str, Any]:
    """Return the envelope ``{"version", "type", "sequence", "lda"}`` plus ``fields``."""
    return {"version": PROTOCOL_VERSION, "type": kind, "sequence": sequence, "lda": lda, **fields}


# ------------------------------------------------------------------------------- replies
def check_envelope(reply: Mapping[str, Any], kind: str, sequence: int) -> None:
    """Check version, type, sequence and field names of a reply to a ``kind`` request.

    A reply ``{"type": "error", "message": ...}`` (the agent declines) raises
    :class:`ProtocolError` with the agent's message.
    """
    version = reply.get("version")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        msg = f"unsupported version {version!r} (expected {PROTOCOL_VERSION})"
        raise ProtocolError(msg)
    if reply.get("sequence") != sequence:
        msg = f"sequence {reply.get('sequence')!r} does not match the request's {sequence}"
        raise ProtocolError(msg)
    if reply.get("type") == "error":
        msg = f"agent reported an error: {str(reply.get('message', ''))[:200]}"
        raise ProtocolError(msg)
    if reply.get("type") != kind:
        msg = f"reply type {reply.get('type')!r} does not answer a {kind!r} request"
        raise ProtocolError(msg)
    required, optional = REPLY_FIELDS[kind]
    fields = set(reply) - {"version", "type", "sequence"}
    if missing := sorted(required - fields):
        msg = f"missing field(s) {missing}"
        raise ProtocolError(msg)
    if unknown := sorted(fields - required - optional):
        msg = f"unknown field(s) {unknown} (fields carry units: see docs/external-agents.md)"
        raise ProtocolError(msg)


def number(value: Any, where: str) -> float:
    """Return ``value`` as a finite float or raise :class:`ProtocolError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{where} must be a number, got {type(value).__name__}"
        raise ProtocolError(msg)
    try:
        result = float(value)
    except OverflowError:  # an integer beyond the float range
        result = math.inf
    if not math.isfinite(result):
        msg = f"{where} must be finite, got {str(value)[:40]}"
        raise ProtocolError(msg)
    return result


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        msg = f"{where} must be a JSON object, got {type(value).__name__}"
        raise ProtocolError(msg)
    return value


def parse_curve(value: Any, max_blocks: int) -> BidCurve:
    """Return the bid curve of an offer reply (``curve`` field; MW, $/MWh).

    Raises :class:`ProtocolError` unless it has exactly ``p_min_mw`` and ``blocks``, at most
    ``max_blocks`` blocks of finite ``quantity_mw >= 0`` and non-decreasing finite
    ``price_usd_per_mwh``.
    """
    curve = _mapping(value, "curve")
    if set(curve) != {"p_min_mw", "blocks"}:
        msg = f"curve must have exactly the fields p_min_mw and blocks, got {sorted(curve)}"
        raise ProtocolError(msg)
    blocks = curve["blocks"]
    if not isinstance(blocks, list) or len(blocks) > max_blocks:
        msg = f"curve.blocks must be a list of at most {max_blocks} blocks"
        raise ProtocolError(msg)
    parsed = []
    for k, block in enumerate(blocks):
        block = _mapping(block, f"curve.blocks[{k}]")
        if set(block) != {"quantity_mw", "price_usd_per_mwh"}:
            msg = f"curve.blocks[{k}] must have exactly quantity_mw and price_usd_per_mwh"
            raise ProtocolError(msg)
        qty = number(block["quantity_mw"], f"curve.blocks[{k}].quantity_mw")
        price = number(block["price_usd_per_mwh"], f"curve.blocks[{k}].price_usd_per_mwh")
        if qty < 0.0:
            msg = f"curve.blocks[{k}].quantity_mw must be >= 0, got {qty}"
            raise ProtocolError(msg)
        parsed.append(BidBlock(qty, price))
    try:
        return BidCurve(number(curve["p_min_mw"], "curve.p_min_mw"), tuple(parsed))
    except ValueError as exc:  # prices not non-decreasing
        raise ProtocolError(str(exc)) from None


def parse_setpoints(value: Any, offers: Mapping[str, BidCurve]) -> dict[str, float]:
    """Return ``setpoints_mw`` of an award reply, one per device, within its offer (MW).

    Every device of ``offers`` must be present and no other; values within
    :data:`RANGE_TOL_MW` outside the offered range are clipped, farther ones rejected.
    """
    given = _mapping(value, "setpoints_mw")
    if missing := sorted(set(offers) - set(given)):
        msg = f"setpoints_mw misses device(s) {missing[:5]}"
        raise ProtocolError(msg)
    if unknown := sorted(set(given) - set(offers)):
        msg = f"setpoints_mw names unknown device(s) {unknown[:5]}"
        raise ProtocolError(msg)
    setpoints = {}
    for dev, curve in offers.items():
        p = number(given[dev], f"setpoints_mw[{dev!r}]")
        lo, hi = curve.p_min_mw, curve.p_max_mw
        if not lo - RANGE_TOL_MW <= p <= hi + RANGE_TOL_MW:
            msg = f"setpoints_mw[{dev!r}] = {p} MW is outside the offered range [{lo}, {hi}] MW"
            raise ProtocolError(msg)
        setpoints[dev] = min(max(p, lo), hi)
    return setpoints


def parse_dlmps(value: Any, buses: set[int], default_usd_per_mwh: float) -> pd.Series:
    """Return DLMPs per energised bus ($/MWh); buses the reply omits get the default.

    Keys must be energised pandapower buses of the feeder (as strings), values finite.
    """
    given = _mapping(value, "dlmp_usd_per_mwh")
    dlmp = dict.fromkeys(sorted(buses), float(default_usd_per_mwh))
    for key, price in given.items():
        try:
            bus = int(key)
        except ValueError:
            bus = None
        if bus not in buses:
            msg = f"dlmp_usd_per_mwh names {key!r}, not an energised bus of the feeder"
            raise ProtocolError(msg)
        dlmp[bus] = number(price, f"dlmp_usd_per_mwh[{key!r}]")
    return pd.Series(dlmp, name="dlmp_usd_per_mwh", dtype=float)
