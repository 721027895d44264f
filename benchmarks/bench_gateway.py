"""Benchmark the external-agent gateway against the in-process Total DSO, per call.

One LDA of ``scenarios/default.yaml`` (default ``rural``) is driven through the Total DSO
flow for ``n`` quarter-hours from midnight, as in ``bench_dso.py``: forecast inputs and
offers -> ``virtual_resource`` -> award (midpoint of the range, 23 $/MWh) ->
``disaggregate``. Each interval runs twice on the same inputs: with the built-in
``optimal`` strategy (in process) and with ``external``, whose agent
(``python -m gridlayers.gateway.client``, the example merit-order agent) runs in another
process on loopback. The devices are then dispatched at the optimal set-points (untimed).

Printed in ms per call (mean, median, max over the timed intervals; the first interval is
left out): the optimal strategy's ``virtual_resource`` and ``disaggregate``; the
external strategy's whole call, and of it the socket round trip (JSON encoding, ZeroMQ
both ways, the agent's decoding, decision and encoding, decoding the reply).

Run: ``.venv/bin/python benchmarks/bench_gateway.py [n_intervals] [lda]`` (default 48 rural).
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from gridlayers.agents.dso_setup import BLOCKS_PER_DEVICE, build_dso, device_buses, linear_feeder
from gridlayers.dso.strategies import make_dso
from gridlayers.lda import build_lda
from gridlayers.scenarios.load import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"
N_INTERVALS = int(sys.argv[1]) if len(sys.argv) > 1 else 48
LDA = sys.argv[2] if len(sys.argv) > 2 else "rural"
PRICE_USD_PER_MWH = 23.0


def _start_agent() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridlayers.gateway.client", "--endpoint", "tcp://127.0.0.1:*"],
        stdout=subprocess.PIPE,
        text=True,
    )
    word, endpoint = proc.stdout.readline().split()
    assert word == "ready", word
    return proc, endpoint


def main() -> None:
    warnings.simplefilter("ignore")
    lda = build_lda(load_scenario(SCENARIO), LDA)
    optimal = build_dso(lda, max_blocks=10)
    proc, endpoint = _start_agent()
    external = make_dso(
        "external", linear_feeder(lda), device_buses(lda), endpoint=endpoint, lda_name=LDA,
        timeout_ms=5000, blocks_per_device=BLOCKS_PER_DEVICE, max_blocks=10,
    )  # fmt: skip
    rows = []  # ms: opt VR, opt dis, ext VR, ext dis, ext VR round trip, ext dis round trip
    try:
        for k in range(N_INTERVALS):
            iv, forecast = lda.interval(k), lda.conditions(k, "forecast")
            offers = {d.device_id: d.offer(iv, forecast[d.device_id]) for d in lda.devices}
            p_fixed, q_fixed = lda.fixed_injections(k, "forecast")
            t0 = time.perf_counter()
            vr = optimal.virtual_resource(p_fixed, q_fixed, offers)
            t1 = time.perf_counter()
            award = 0.5 * (vr.p_min_mw + vr.p_max_mw)
            result = optimal.disaggregate(award, PRICE_USD_PER_MWH)
            t2 = time.perf_counter()
            rt0 = external.stats["round_trip_seconds"]
            external.virtual_resource(p_fixed, q_fixed, offers)
            t3 = time.perf_counter()
            rt1 = external.stats["round_trip_seconds"]
            external.disaggregate(award, PRICE_USD_PER_MWH)
            t4 = time.perf_counter()
            rt2 = external.stats["round_trip_seconds"]
            if k:
                rows.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, rt1 - rt0, rt2 - rt1))
            actual = lda.conditions(k, "actual")
            for dev in lda.devices:
                offer = offers[dev.device_id]
                p_set = min(max(result.setpoints_mw[dev.device_id], offer.p_min_mw), offer.p_max_mw)
                dev.dispatch(p_set, iv, actual[dev.device_id], forecast[dev.device_id])
    finally:
        external.close()
        proc.kill()
        proc.wait()
    ms = 1e3 * np.array(rows)
    print(f"{LDA}: {len(lda.devices)} devices, {len(rows)} timed intervals; ms per call")
    labels = ("optimal virtual_resource", "optimal disaggregate", "external offer (whole)",
              "external award (whole)", "  of it round trip", "  of it round trip")  # fmt: skip
    order = (0, 1, 2, 4, 3, 5)
    for i in order:
        col = ms[:, i]
        print(f"{labels[i]:<26} mean {col.mean():7.2f}  median {np.median(col):7.2f}  "
              f"max {col.max():7.2f}")  # fmt: skip
    fallbacks = external.stats["fallbacks"]
    print(f"external: {external.stats['accepted']:.0f} replies accepted, {fallbacks:.0f} fallbacks")


if __name__ == "__main__":
    main()
