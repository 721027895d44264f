"""Thin mosaik 3 adapters around the gridlayers cores (mosaik_api_v3 simulators).

Each module can also run as its own process: ``python -m gridlayers.simulators.<name> ADDR``
(the ``cmd`` starter) or ``... -r HOST:PORT`` (the ``connect`` starter).
"""
