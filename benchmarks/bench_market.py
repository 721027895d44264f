"""Benchmark: 96 market clearings on case118, in place vs rebuilt, and pandapower rundcopp.

Run: ``.venv/bin/python benchmarks/bench_market.py [n_intervals]``
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from gridlayers.market import TransmissionMarket


def _load_profiles(net, n: int) -> list:
    """Daily-shaped load scaling (0.7..1.1) with 2% per-load noise, one Series per interval."""
    rng = np.random.default_rng(42)
    base = net.load.p_mw * net.load.scaling
    shape = 0.9 + 0.2 * np.sin(np.linspace(0.0, 2.0 * np.pi, n, endpoint=False) - np.pi / 2)
    return [base * s * rng.normal(1.0, 0.02, len(base)) for s in shape]


def main(n: int = 96) -> None:
    net = pn.case118()
    net.line.loc[6, "max_loading_percent"] = 3.1  # make congestion bind (as in the tests)
    profiles = _load_profiles(net, n)

    t0 = time.perf_counter()
    market = TransmissionMarket(net)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    in_place = [market.clear(load_p_mw=p) for p in profiles]
    in_place_s = time.perf_counter() - t0
    solve_s = sum(r.solve_seconds for r in in_place)

    t0 = time.perf_counter()
    rebuilt = [TransmissionMarket(net).clear(load_p_mw=p) for p in profiles]
    rebuild_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    pp_cost = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in profiles:
            net.load["p_mw"] = p.to_numpy()
            net.load["scaling"] = 1.0
            pp.rundcopp(net)
            pp_cost.append(float(net.res_cost))
    pp_s = time.perf_counter() - t0

    cost_dev = max(abs(a.cost - b.cost) / b.cost for a, b in zip(in_place, rebuilt, strict=True))
    pp_dev = max(abs(a.cost - c) / c for a, c in zip(in_place, pp_cost, strict=True))
    print(
        f"case118, {n} intervals, {market.n_variables} variables, "
        f"{market.n_constraints} constraints"
    )
    print(f"build once                : {build_s:8.3f} s")
    print(
        f"in place (1 market)       : {in_place_s:8.3f} s  ({1e3 * in_place_s / n:6.1f} ms/clear,"
        f" of which solve+update {1e3 * solve_s / n:6.1f} ms)"
    )
    print(f"rebuilt every interval    : {rebuild_s:8.3f} s  ({1e3 * rebuild_s / n:6.1f} ms/clear)")
    print(f"ratio rebuilt / in place  : {rebuild_s / in_place_s:8.2f}x")
    print(f"pandapower rundcopp       : {pp_s:8.3f} s  ({1e3 * pp_s / n:6.1f} ms/run)")
    print(f"max rel cost dev in-place vs rebuilt: {cost_dev:.1e}; vs rundcopp: {pp_dev:.1e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 96)
