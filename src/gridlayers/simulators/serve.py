"""Run one partition's LDA-level simulators in processes of their own (mosaik cmd / connect).

A partition of a run's LDAs is served by three mosaik simulators, one per kind:

=============  ==========================================  ===========
kind           simulator                                   port offset
=============  ==========================================  ===========
``aggregator`` :class:`gridlayers.agents.aggregator.AggregatorSim`  0
``dso``        :class:`gridlayers.agents.dso.DSOSim`                1
``feeder``     :class:`gridlayers.simulators.feeder.FeederSim`      2
=============  ==========================================  ===========

- ``cmd`` (``simulators.lda: cmd``): mosaik starts ``python -m gridlayers.simulators.serve
  KIND HOST:PORT`` once per simulator; it connects back to mosaik.
- ``connect`` (``simulators.lda: connect``): ``gridlayers serve --port PORT`` (on this or
  another machine, after the scenario's LDA models can be built there) starts the three
  simulators as servers on ``PORT``, ``PORT+1`` and ``PORT+2``, bound to loopback unless
  ``--host`` says otherwise; mosaik connects to them at ``simulators.addresses``. They
  serve one run and exit.

Each simulator builds (or loads from the start-up cache) the LDA models it is given in
``create``, from the scenario mosaik passes in ``init``, so every process computes the
same values and a partitioned run equals the in-process one.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys

import mosaik_api_v3

#: Simulator class of each kind, and its port offset in a served partition.
KINDS = {
    "aggregator": ("gridlayers.agents.aggregator:AggregatorSim", 0),
    "dso": ("gridlayers.agents.dso:DSOSim", 1),
    "feeder": ("gridlayers.simulators.feeder:FeederSim", 2),
}


def simulator(kind: str) -> mosaik_api_v3.Simulator:
    """Return a new simulator of ``kind`` (a key of :data:`KINDS`)."""
    if kind not in KINDS:
        msg = f"unknown simulator kind {kind!r}; known: {', '.join(KINDS)}"
        raise ValueError(msg)
    module, cls = KINDS[kind][0].split(":")
    return getattr(importlib.import_module(module), cls)()


def _serving(kind: str) -> mosaik_api_v3.Simulator:
    """Return a new simulator of ``kind`` for a process that serves only that kind.

    The process keeps only the profiles that kind reads
    (:data:`gridlayers.agents.lda_cache.ROLE_READS`).
    """
    from gridlayers.agents import lda_cache

    lda_cache.PROCESS_ROLE = kind
    return simulator(kind)


def command(kind: str) -> str:
    """Return mosaik's ``cmd`` starter line for ``kind`` (``%(addr)s`` filled by mosaik)."""
    return f"{sys.executable} -m gridlayers.simulators.serve {kind} %(addr)s"


def serve_partition(host: str, port: int, timeout_s: int, runs: int = 0) -> int:
    """Serve one partition's three simulators on ``host:port..port+2``.

    Parameters
    ----------
    host : str
        Address to bind (``127.0.0.1`` keeps them reachable from this machine only).
    port : int
        Port of the aggregator simulator; the DSO and feeder simulators use the next two.
    timeout_s : int
        Seconds each simulator waits for mosaik to connect before giving up.
    runs : int
        mosaik worlds to serve (one per paradigm of a scenario) before returning; 0
        serves until a simulator fails or times out.

    Returns
    -------
    int
        0 if every simulator ended normally, else the first non-zero exit code.

    """
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "gridlayers.simulators.serve",
                "--serve",
                kind,
                host,
                str(port + offset),
                str(timeout_s),
                str(runs),
            ]
        )
        for kind, (_, offset) in KINDS.items()
    ]
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c), 0)


def _serve(kind: str, host: str, port: int, timeout_s: int, runs: int) -> None:
    """Serve ``runs`` mosaik worlds (0: until failure), a fresh simulator for each."""
    served = 0
    while runs == 0 or served < runs:
        sim = _serving(kind)
        asyncio.run(mosaik_api_v3.run_as_server(sim, host, port, start_timeout=timeout_s))
        served += 1


def main() -> None:
    """``python -m gridlayers.simulators.serve KIND [mosaik options] HOST:PORT`` (cmd).

    ``--serve KIND HOST PORT TIMEOUT RUNS`` serves as :func:`serve_partition` does.
    """
    if len(sys.argv) == 7 and sys.argv[1] == "--serve":
        kind, host, port, timeout_s, runs = sys.argv[2:]
        _serve(kind, host, int(port), int(timeout_s), int(runs))
        return
    if len(sys.argv) < 2 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(KINDS)}}} [options] HOST:PORT")
    kind = sys.argv.pop(1)
    mosaik_api_v3.start_simulation(_serving(kind), f"gridlayers {kind} simulator")


if __name__ == "__main__":
    main()
