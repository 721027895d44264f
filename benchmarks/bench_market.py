"""Benchmarks of the TSO market clearing.

``.venv/bin/python benchmarks/bench_market.py [n_intervals]``: 96 clearings on case118,
in place vs rebuilt, and pandapower rundcopp.

``.venv/bin/python benchmarks/bench_market.py default [n_intervals] [--dump FILE]``: per
clearing cost on the default scenario's system (ACTIVSg200, as calibrated): a forward
market with one participant per LDA (synthetic multi-block bid curves) and a real-time
market with the LDAs' imports as extra load, cleared alternately as in a run. Prints ms
per clearing, ms inside ``highspy.Highs.run`` and the rest; ``--dump`` writes every
result (LMPs, dispatch, flows, awards, costs, statuses) to an ``.npz`` for exact
before/after comparisons.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd

from gridlayers.domain import BidBlock, BidCurve
from gridlayers.market import ClearingResult, TransmissionMarket

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"


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
    with _HighsRunTimer() as highs:
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
        f" of which solve+update {1e3 * solve_s / n:6.1f} ms, in Highs.run"
        f" {1e3 * highs.seconds / n:6.1f} ms)"
    )
    print(f"rebuilt every interval    : {rebuild_s:8.3f} s  ({1e3 * rebuild_s / n:6.1f} ms/clear)")
    print(f"ratio rebuilt / in place  : {rebuild_s / in_place_s:8.2f}x")
    print(f"pandapower rundcopp       : {pp_s:8.3f} s  ({1e3 * pp_s / n:6.1f} ms/run)")
    print(f"max rel cost dev in-place vs rebuilt: {cost_dev:.1e}; vs rundcopp: {pp_dev:.1e}")


def _synthetic_bid(rng: np.random.Generator) -> BidCurve:
    """A DSO-like offer: a withdrawal floor and 1-8 blocks at rising prices (MW, $/MWh)."""
    n_blocks = int(rng.integers(1, 9))
    prices = np.sort(rng.uniform(-10.0, 60.0, n_blocks))
    blocks = tuple(
        BidBlock(float(q), float(c))
        for q, c in zip(rng.uniform(0, 4, n_blocks), prices, strict=True)
    )
    return BidCurve(p_min_mw=float(-rng.uniform(5.0, 30.0)), blocks=blocks)


class _HighsRunTimer:
    """Accumulates the wall time spent inside ``highspy.Highs.run`` (s) while active."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> _HighsRunTimer:
        import highspy

        self._original = original = highspy.Highs.run

        def timed(highs, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            try:
                return original(highs, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        highspy.Highs.run = timed
        return self

    def __exit__(self, *exc: object) -> None:
        import highspy

        highspy.Highs.run = self._original


def _flatten(result: ClearingResult) -> dict[str, np.ndarray]:
    """Every number of a clearing result as float arrays (status as its name's bytes)."""
    out = {
        "lmp": result.lmp_usd_per_mwh.to_numpy(float),
        "cost": np.array([result.cost_usd_per_h, result.generation_cost_usd_per_h]),
        "line": result.line_p_mw.to_numpy(float),
        "trafo": result.trafo_p_mw.to_numpy(float),
        "awards": np.array(list(result.awards_mw.values()), dtype=float),
        "unserved": result.unserved_mw.to_numpy(float),
        "node_lmp": result.node_lmp_usd_per_mwh,
        "unit": result.unit_p_mw,
        "bulk": result.node_bulk_withdrawal_mw,
        "extra": result.node_extra_withdrawal_mw,
        "branch": result.branch_flow_mw,
        "status": np.frombuffer(result.status.encode(), dtype=np.uint8).astype(float),
    }
    for table, series in result.gen_p_mw.items():
        out[f"gen_{table}"] = series.to_numpy(float)
        out[f"gen_{table}_index"] = series.index.to_numpy(float)
    return out


def per_clearing(n: int = 96, dump: str | None = None) -> None:
    """Time forward + real-time clearings on the default scenario's transmission system."""
    import yaml

    from gridlayers.grid.forecast import bulk_load_forecast
    from gridlayers.grid.networks import transmission_network
    from gridlayers.grid.profiles import load_scale
    from gridlayers.scenarios.schema import Scenario

    data = yaml.safe_load(SCENARIO.read_text())
    data["horizon"]["intervals"] = n
    scenario = Scenario.model_validate(data)
    net = transmission_network(scenario.transmission)
    segments = scenario.transmission.cost_segments
    interfaces = {f"dso:{lda.name}": lda.interface_bus for lda in scenario.ldas}
    t0 = time.perf_counter()
    forward = TransmissionMarket(net, participants=interfaces, cost_segments=segments)
    real_time = TransmissionMarket(net, cost_segments=segments)
    build_s = time.perf_counter() - t0
    scale = load_scale(scenario.transmission.load_profile, scenario.horizon)
    base = (net.load.p_mw * net.load.scaling).to_numpy()
    actual = scale[:, None] * base[None, :]
    fc = bulk_load_forecast(actual, scenario.forecast.bulk_load_error_std, scenario.seed)
    rng = np.random.default_rng(7)
    bids = [{p: _synthetic_bid(rng) for p in interfaces} for _ in range(n)]
    extra = [{b: float(rng.uniform(5.0, 30.0)) for b in interfaces.values()} for _ in range(n)]
    index = net.load.index
    results: list[ClearingResult] = []
    first_s = 0.0
    with _HighsRunTimer() as highs:
        t0 = time.perf_counter()
        for k in range(n):
            results.append(forward.clear(load_p_mw=pd.Series(fc[k], index=index), bids=bids[k]))
            results.append(
                real_time.clear(load_p_mw=pd.Series(actual[k], index=index), extra_load_mw=extra[k])
            )
            if k == 0:  # the first clear of each market lets pyomo build the HiGHS model
                first_s, first_highs = time.perf_counter() - t0, highs.seconds
        total_s = time.perf_counter() - t0
    steady = 2 * (n - 1)
    per = 1e3 * (total_s - first_s) / steady
    in_highs = 1e3 * (highs.seconds - first_highs) / steady
    print(
        f"default system ({len(net.bus)} buses, {len(interfaces)} LDAs, cost_segments={segments}): "
        f"forward {forward.n_variables} vars / {forward.n_constraints} cons; build both "
        f"{build_s:.2f} s, first clear of both {1e3 * first_s:.0f} ms"
    )
    print(
        f"{steady} later clearings: {per:6.2f} ms per clearing, {in_highs:6.2f} ms inside "
        f"Highs.run, rest {per - in_highs:6.2f} ms"
    )
    if dump:
        arrays = {
            f"{i:04d}_{key}": v for i, r in enumerate(results) for key, v in _flatten(r).items()
        }
        np.savez(dump, **arrays)
        print(f"{len(results)} results -> {dump}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "default":
        dump_to = args[args.index("--dump") + 1] if "--dump" in args else None
        positional = [a for a in args[1:] if a != "--dump" and a != dump_to]
        per_clearing(int(positional[0]) if positional else 96, dump_to)
    else:
        main(int(args[0]) if args else 96)
