"""ZeroMQ transport of the gateway: a REQ client with the lazy-pirate reset, loopback checks.

The co-simulation side is a ``REQ`` socket that *connects* to the external agent, which
*binds* a ``REP`` (or ``ROUTER``) socket. A ``REQ`` socket that sent a request must receive
a reply before it may send again; if the agent never answers, the socket is stuck. The
lazy-pirate pattern (ZeroMQ guide, chapter 4) therefore closes it with ``linger=0`` after
a time-out and opens a fresh one for the next request, so the next interval works and a
late reply to the abandoned request is never read as the answer to a new one (the
sequence number guards against that as well).

Only JSON crosses the socket (:mod:`gridlayers.gateway.protocol`); nothing is pickled.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import zmq

from gridlayers.gateway.protocol import dumps, loads

#: Largest reply accepted (bytes); bigger ones are refused by ZeroMQ before parsing.
MAX_REPLY_BYTES = 64 * 1024 * 1024


class GatewayTimeout(TimeoutError):
    """The external agent did not reply within the time-out."""


def check_endpoint(endpoint: str, allow_remote: bool = False) -> str:
    """Return ``endpoint`` if it may be used; raise ``ValueError`` otherwise.

    Parameters
    ----------
    endpoint : str
        ZeroMQ endpoint ``tcp://HOST:PORT`` (or ``ipc://PATH``, which is local).
    allow_remote : bool
        Allow a TCP host that is not a loopback address (``127.0.0.0/8``, ``::1``,
        ``localhost``). Off by default: the agent's decisions enter the co-simulation
        unauthenticated and unencrypted.

    """
    parts = urlsplit(endpoint)
    if parts.scheme == "ipc" and (parts.netloc or parts.path):
        return endpoint
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        msg = f"endpoint {endpoint!r} must be tcp://HOST:PORT (e.g. tcp://127.0.0.1:5555)"
        raise ValueError(msg)
    if allow_remote or _is_loopback(parts.hostname):
        return endpoint
    msg = (
        f"endpoint {endpoint!r} is not a loopback address; set allow_remote: true in "
        "dso_params to accept decisions from another machine"
    )
    raise ValueError(msg)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name or an interface name (tcp://eth0:5555)
        return False


class LazyPirateClient:
    """One ``REQ`` connection to an external agent, reset after every time-out.

    Parameters
    ----------
    endpoint : str
        Where the agent's ``REP`` socket is bound (checked by :func:`check_endpoint`).
    timeout_ms : int
        How long to wait for each reply (ms).
    allow_remote : bool
        See :func:`check_endpoint`.

    """

    def __init__(self, endpoint: str, timeout_ms: int, allow_remote: bool = False) -> None:
        self.endpoint = check_endpoint(endpoint, allow_remote)
        if timeout_ms <= 0:
            msg = f"timeout_ms must be > 0, got {timeout_ms}"
            raise ValueError(msg)
        self.timeout_ms = int(timeout_ms)
        self._context = zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self.resets = 0

    def _connect(self) -> zmq.Socket:
        if self._socket is None:
            socket = self._context.socket(zmq.REQ)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES)
            socket.connect(self.endpoint)
            self._socket = socket
        return self._socket

    def reset(self) -> None:
        """Close the socket without waiting (``linger=0``); the next request reconnects."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
            self.resets += 1

    def request(self, message: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        """Send one request and return ``(reply, round_trip_seconds)``.

        Raises
        ------
        GatewayTimeout
            No reply within ``timeout_ms``; the socket has been reset.
        ProtocolError
            The reply is not a JSON object (after a full round trip, so the socket can be
            used again as it is).

        """
        socket = self._connect()
        start = time.perf_counter()
        socket.send(dumps(message))
        if not socket.poll(self.timeout_ms, zmq.POLLIN):
            self.reset()
            msg = f"no reply from {self.endpoint} within {self.timeout_ms} ms"
            raise GatewayTimeout(msg)
        raw = socket.recv()
        return loads(raw), time.perf_counter() - start

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
