"""An example external DSO agent: the other end of the gateway, in plain Python.

Run it, then a scenario whose LDA has ``dso_strategy: external``::

    python -m gridlayers.gateway.client --endpoint tcp://127.0.0.1:5555

It binds a ``REP`` socket and answers every request of message format version 1
(``docs/external-agents.md``) with a deliberately simple, network-blind strategy
(:class:`MeritOrderAgent`). Any language with ZeroMQ and JSON can do the same: read one
JSON object, send one back echoing ``version``, ``type`` and ``sequence``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import zmq

from gridlayers.domain.bid_curve import compress_blocks
from gridlayers.gateway.transport import check_endpoint

#: A strategy: ``handler(request) -> reply fields`` (without the envelope).
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class MeritOrderAgent:
    """Network-blind DSO: lossless merit-order offer, pro-rata split of the award.

    ``offer``: the interface curve is the fixed injections plus every device's offer,
    merged in price order (losses and feeder limits ignored), at most ``max_blocks``
    blocks. ``award``: every device at the same fraction ``alpha`` of its offered range,
    ``p_d = p_min_d + alpha (p_max_d - p_min_d)``, with ``alpha`` such that the lossless
    export equals the award (clipped to [0, 1]); DLMPs are left to the gateway (interface
    price at every bus). ``redispatch`` (Minimal DSO): the aggregators' proposal unchanged.
    """

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one request (``offer``, ``award`` or ``redispatch``) of version 1."""
        if request["type"] == "offer":
            return {"curve": self.offer(request)}
        if request["type"] == "award":
            return {"setpoints_mw": self.award(request)}
        if request["type"] == "redispatch":  # accept the aggregators' split unchanged
            return {"setpoints_mw": request["proposed_mw"]}
        msg = f"unknown request type {request['type']!r}"
        raise ValueError(msg)

    @staticmethod
    def offer(request: dict[str, Any]) -> dict[str, Any]:
        """Return the interface curve ``{"p_min_mw", "blocks"}`` (MW, $/MWh)."""
        offers = [d["offer"] for d in request["devices"].values()]
        p_min = sum(request["fixed"]["p_mw"].values()) + sum(o["p_min_mw"] for o in offers)
        pool = sorted(
            (b["price_usd_per_mwh"], b["quantity_mw"])
            for o in offers
            for b in o["blocks"]
            if b["quantity_mw"] > 0.0
        )
        merged = compress_blocks([(q, c) for c, q in pool], request["max_blocks"]) if pool else []
        return {
            "p_min_mw": p_min,
            "blocks": [{"quantity_mw": q, "price_usd_per_mwh": c} for q, c in merged],
        }

    @staticmethod
    def award(request: dict[str, Any]) -> dict[str, float]:
        """Return ``{device id: MW}``: the pro-rata split of the award (class notes)."""
        ranges = {}
        for dev, d in request["devices"].items():
            lo = d["offer"]["p_min_mw"]
            ranges[dev] = (lo, lo + sum(b["quantity_mw"] for b in d["offer"]["blocks"]))
        target = request["award_mw"] - sum(request["fixed"]["p_mw"].values())
        lo_sum = sum(lo for lo, _ in ranges.values())
        span = sum(hi - lo for lo, hi in ranges.values())
        alpha = 0.0 if span <= 1e-12 else min(max((target - lo_sum) / span, 0.0), 1.0)
        return {dev: lo + alpha * (hi - lo) for dev, (lo, hi) in ranges.items()}


def reply_to(request: dict[str, Any], handler: Handler) -> dict[str, Any]:
    """Return the full reply (envelope + fields) to one request; errors as ``type: error``."""
    envelope = {"version": 1, "sequence": request.get("sequence")}
    if request.get("version") != 1:
        return {**envelope, "type": "error", "message": f"version {request.get('version')!r}"}
    try:
        return {**envelope, "type": request["type"], **handler(request)}
    except Exception as exc:  # noqa: BLE001 - tell the gateway instead of dying
        return {**envelope, "type": "error", "message": f"{type(exc).__name__}: {exc}"}


def serve(
    endpoint: str,
    handler: Handler,
    *,
    allow_remote: bool = False,
    max_requests: int | None = None,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Answer requests at ``endpoint`` until ``max_requests`` were served (forever if None).

    Parameters
    ----------
    endpoint : str
        ``tcp://127.0.0.1:PORT`` to bind (``PORT`` may be ``*``: a free port).
    handler : callable
        The strategy (:data:`Handler`).
    allow_remote : bool
        Allow binding a non-loopback address.
    max_requests : int, optional
        Stop after this many requests.
    announce : callable, optional
        Called with the bound endpoint once the socket is bound (e.g. to print it).

    Returns
    -------
    int
        Number of requests served.

    """
    if not endpoint.endswith(":*"):
        check_endpoint(endpoint, allow_remote)
    socket = zmq.Context.instance().socket(zmq.REP)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(endpoint)
    if announce is not None:
        announce(socket.getsockopt_string(zmq.LAST_ENDPOINT))
    served = 0
    try:
        while max_requests is None or served < max_requests:
            raw = socket.recv()
            try:
                request = json.loads(raw)
            except ValueError:
                reply = {"version": 1, "type": "error", "message": "request is not JSON"}
            else:
                reply = reply_to(request, handler)
            socket.send(json.dumps(reply, allow_nan=False).encode())
            served += 1
    finally:
        socket.close(linger=0)
    return served


def main(argv: list[str] | None = None) -> int:
    """Command line: serve :class:`MeritOrderAgent` at ``--endpoint``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--max-requests", type=int, default=None)
    args = parser.parse_args(argv)

    def announce(bound: str) -> None:
        sys.stdout.write(f"ready {bound}\n")
        sys.stdout.flush()

    serve(args.endpoint, MeritOrderAgent(), allow_remote=args.allow_remote,
          max_requests=args.max_requests, announce=announce)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
