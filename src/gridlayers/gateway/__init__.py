"""Gateway to agents outside the co-simulation (any language) over ZeroMQ and JSON.

``protocol``   message format version 1: requests, strict reply parsing (no sockets)
``transport``  REQ client with the lazy-pirate reset, loopback-only endpoints by default
``dso``        :class:`~gridlayers.gateway.dso.ExternalDSO`, registered as DSO strategy
               ``"external"`` (falls back to a built-in strategy on time-out or bad reply)
``client``     an example agent and :func:`~gridlayers.gateway.client.serve`

See ``docs/external-agents.md``. Needs ``pyzmq``; nothing is pickled.
"""
