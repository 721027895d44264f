"""Benchmark the DSO paradigm core (Total DSO in place vs rebuilt; Total TSO vs Total DSO).

(i) One SimBench MV feeder with 30 DER devices (15 PV, 15 batteries at random buses):
per-interval ``virtual_resource`` + ``disaggregate`` with one ``DSOOperator`` updated in
place vs a new ``DSOOperator`` every interval.
(ii) case9 with three SimBench MV feeders (rural, semiurb, urban; 30 devices each) at
buses 4, 6, 8: one Total TSO clear (feeders embedded as ``FeederMarketExtension``) vs one
Total DSO clear (3 virtual resources + market with 3 participants + 3 disaggregations),
both updated in place over several intervals.

Run: ``.venv/bin/python benchmarks/bench_paradigm_core.py [n_intervals]``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandapower.networks as pn
import pandas as pd

from gridlayers.domain import BidBlock, BidCurve
from gridlayers.dso import DSOOperator, LinDistFlowFeeder
from gridlayers.grid.networks import simbench_feeder
from gridlayers.market import ClearingError, TransmissionMarket

N_STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 24
FIRST_STEP = 4 * 24 * 180 + 4 * 8  # a summer day from 08:00
CODES = {"1-MV-rural--0-sw": 4, "1-MV-semiurb--0-sw": 6, "1-MV-urban--0-sw": 8}
N_DEVICES = 30


class Lda:
    """One feeder, its profiles and 30 hand-built DER offers."""

    def __init__(self, code: str, seed: int) -> None:
        self.net, self.prof = simbench_feeder(code)
        self.feeder = LinDistFlowFeeder(self.net)
        rng = np.random.default_rng(seed)
        buses = rng.choice(self.feeder.buses[1:], N_DEVICES, replace=False)
        self.devices = {f"der{i}": int(b) for i, b in enumerate(buses)}
        self.size_mw = rng.uniform(0.05, 0.3, N_DEVICES)

    def inputs(self, step: int) -> tuple[pd.Series, pd.Series, dict[str, BidCurve]]:
        """Fixed injections (MW, Mvar) and offers of one quarter hour."""
        net = self.net
        net.load["p_mw"] = self.prof[("load", "p_mw")].iloc[step].to_numpy()
        net.load["q_mvar"] = self.prof[("load", "q_mvar")].iloc[step].to_numpy()
        net.sgen["p_mw"] = self.prof[("sgen", "p_mw")].iloc[step].to_numpy()
        p, q = self.feeder.injections_from_net(net)
        pv_factor = float(net.sgen.p_mw.sum() / max(net.sgen.sn_mva.sum(), 1e-9))
        offers = {}
        for i, dev in enumerate(self.devices):
            size = float(self.size_mw[i])
            if i % 2 == 0:
                offers[dev] = BidCurve(0.0, (BidBlock(size * pv_factor, 1.0 + i * 0.1),))
            else:
                offers[dev] = BidCurve(
                    -size, (BidBlock(size, 15.0 + i * 0.2), BidBlock(size, 40.0 + i * 0.5))
                )
        return p, q, offers


def _interval(dso: DSOOperator, lda: Lda, step: int) -> str:
    p, q, offers = lda.inputs(step)
    vr = dso.virtual_resource(p, q, offers)
    dso.disaggregate(vr.p_min_mw + 0.5 * (vr.p_max_mw - vr.p_min_mw), 30.0)
    return vr.method


def bench_total_dso(lda: Lda) -> None:
    """(i) in place vs rebuilt."""
    dso = DSOOperator(lda.feeder, lda.devices)
    _interval(dso, lda, FIRST_STEP)  # first solve loads the model into HiGHS
    start = time.perf_counter()
    methods = [_interval(dso, lda, FIRST_STEP + k) for k in range(N_STEPS)]
    in_place = (time.perf_counter() - start) / N_STEPS
    start = time.perf_counter()
    for k in range(N_STEPS):
        _interval(DSOOperator(lda.feeder, lda.devices), lda, FIRST_STEP + k)
    rebuilt = (time.perf_counter() - start) / N_STEPS
    print(
        f"(i) Total DSO, {len(lda.feeder.buses)} model buses, {N_DEVICES} devices, "
        f"{dso.n_variables} vars / {dso.n_constraints} cons"
    )
    print(f"    intervals with a binding limit (sampled curve): {methods.count('sampled')}")
    print(f"    virtual_resource + disaggregate in place: {1e3 * in_place:7.1f} ms/interval")
    print(f"    rebuilt every interval:                   {1e3 * rebuilt:7.1f} ms/interval")
    print(f"    rebuilt / in place:                       {rebuilt / in_place:7.1f} x")


def bench_tso_vs_dso(ldas: dict[str, Lda]) -> None:
    """(ii) Total TSO clear with 3 embedded feeders vs Total DSO clear."""
    dsos = {c: DSOOperator(lda.feeder, lda.devices) for c, lda in ldas.items()}
    exts = {c: dsos[c].market_extension(CODES[c], name=c.split("-")[2]) for c in ldas}
    tso = TransmissionMarket(pn.case9(), extensions=list(exts.values()))
    dso_market = TransmissionMarket(pn.case9(), participants={c: CODES[c] for c in ldas})
    t_tso, t_dso, costs, failed = [], [], [], 0
    for k in range(N_STEPS + 1):
        inputs = {c: lda.inputs(FIRST_STEP + k) for c, lda in ldas.items()}
        start = time.perf_counter()
        for c, (p, q, offers) in inputs.items():
            exts[c].set_interval(p, q, offers)
        try:
            res_tso = tso.clear()
        except ClearingError:  # HiGHS QP "solve error" (see docs/dso.md, limitations)
            res_tso, failed = None, failed + 1
        t1 = time.perf_counter()
        vrs = {c: dsos[c].virtual_resource(*inputs[c]) for c in ldas}
        res = dso_market.clear(bids={c: vr.curve for c, vr in vrs.items()})
        total = res.cost_usd_per_h
        for c, vr in vrs.items():
            award = res.awards_mw[c]
            dis = dsos[c].disaggregate(award, float(res.lmp_usd_per_mwh[CODES[c]]))
            total += dis.cost_usd_per_h - vr.curve.cost_usd_per_h(award)
        t2 = time.perf_counter()
        if k > 0:  # skip the first (model loading) interval
            t_tso.append(t1 - start)
            t_dso.append(t2 - t1)
            if res_tso is not None:
                costs.append((res_tso.cost_usd_per_h, total))
    a, b = np.mean(t_tso), np.mean(t_dso)
    rel = max(abs(x - y) / abs(x) for x, y in costs)
    print(
        f"(ii) case9 + 3 feeders ({sum(len(lda.feeder.buses) for lda in ldas.values())} "
        f"model buses, {3 * N_DEVICES} devices)"
    )
    print(
        f"    Total TSO problem: {tso.n_variables} vars / {tso.n_constraints} cons; "
        f"Total DSO TSO problem: {dso_market.n_variables} vars / "
        f"{dso_market.n_constraints} cons; per DSO: {dsos[next(iter(ldas))].n_variables} "
        "vars"
    )
    print(f"    Total TSO clear (set_interval x3 + clear):     {1e3 * a:7.1f} ms/interval")
    print(
        f"    Total DSO (3 x VR + clear + 3 x disaggregate): {1e3 * b:7.1f} ms/interval "
        "(sequential; DSOs could run in parallel)"
    )
    print(f"    Total TSO / Total DSO time:                    {a / b:7.2f}")
    print(f"    Total TSO clears failed (HiGHS QP solve error): {failed} of {N_STEPS + 1}")
    print(
        f"    total cost Total DSO vs Total TSO: max rel. difference {rel:.2e} "
        f"(TSO cheaper by {np.mean([(y - x) / x for x, y in costs]):.2e} on average)"
    )


def main() -> None:
    warnings.simplefilter("ignore")
    ldas = {code: Lda(code, seed) for seed, code in enumerate(CODES)}
    bench_total_dso(ldas["1-MV-rural--0-sw"])
    bench_tso_vs_dso(ldas)


if __name__ == "__main__":
    main()
