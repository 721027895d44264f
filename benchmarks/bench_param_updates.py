"""Benchmark compiled Param pushes (``gridlayers.highs_params``) against pyomo's own updates.

Two copies of each model are solved on the same inputs, interval by interval alternately
(so machine load hits both alike): one re-solved the gridlayers way
(:class:`~gridlayers.highs_params.ParamUpdater`: compiled Param pushes, cached
objectives, direct primal loading), the reference through pyomo's persistent interface
(``update_parameters``, ``set_objective``, ``solution_loader.load_vars``), as before.
Results must agree to the bit; the script exits with an error otherwise.

(i) Total DSO, one SimBench MV feeder with 30 devices: ``virtual_resource`` +
``disaggregate`` per interval (3 LPs). (ii) Total TSO: case9 with three feeders embedded
(:class:`~gridlayers.dso.FeederMarketExtension`), ``set_interval`` x3 + ``clear``.

Run: ``.venv/bin/python benchmarks/bench_param_updates.py [n_intervals]``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandapower.networks as pn
from bench_paradigm_core import CODES, FIRST_STEP, Lda

from gridlayers.dso import DSOOperator
from gridlayers.market import TransmissionMarket

N_STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 16


class PyomoUpdates:
    """Stand-in for ``ParamUpdater`` that drives pyomo's persistent interface (reference)."""

    def __init__(self, solver) -> None:
        self.solver = solver

    def push(self) -> None:
        self.solver.update_parameters()

    def set_objective(self, objective) -> None:
        self.solver.set_objective(objective)

    def var_updated(self, var) -> None:
        pass

    def load_vars(self) -> None:
        self.solver._load_vars()  # noqa: SLF001 - the direct solve leaves no results object


def _use_pyomo(holder) -> None:
    """Switch a solved PersistentLP or TransmissionMarket to the reference updates."""
    holder._updater = PyomoUpdates(holder._updater.solver)  # noqa: SLF001


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _check(same: bool, what: str) -> None:
    if not same:
        sys.exit(f"compiled and pyomo updates disagree: {what}")


def bench_dso(lda: Lda) -> None:
    """(i) DSOOperator: virtual resource + disaggregation per interval."""
    fast, ref = DSOOperator(lda.feeder, lda.devices), DSOOperator(lda.feeder, lda.devices)

    inputs = [lda.inputs(FIRST_STEP + k) for k in range(N_STEPS + 1)]  # not timed

    def interval(dso: DSOOperator, k: int):
        p, q, offers = inputs[k]
        vr = dso.virtual_resource(p, q, offers)
        dis = dso.disaggregate(vr.p_min_mw + 0.4 * (vr.p_max_mw - vr.p_min_mw), 30.0)
        return vr.curve, dis.setpoints_mw, dis.dlmp_usd_per_mwh.to_numpy()

    for dso in (fast, ref):  # first interval loads each model into HiGHS
        interval(dso, 0)
    _use_pyomo(ref._lp)  # noqa: SLF001
    t_fast, t_ref = [], []
    for k in range(1, N_STEPS + 1):
        a, ta = _timed(interval, fast, k)
        b, tb = _timed(interval, ref, k)
        _check(a[0] == b[0] and a[1] == b[1] and np.array_equal(a[2], b[2]), f"DSO step {k}")
        t_fast.append(ta)
        t_ref.append(tb)
    f, r = np.mean(t_fast), np.mean(t_ref)
    print(f"(i) Total DSO, {len(lda.feeder.buses)} model buses, {fast.n_constraints} rows")
    print(f"    pyomo updates (reference):  {1e3 * r:7.1f} ms/interval")
    print(f"    compiled updates:           {1e3 * f:7.1f} ms/interval   {r / f:5.2f} x faster")


def bench_tso(ldas: dict[str, Lda]) -> None:
    """(ii) Total TSO market with three embedded feeders (LP costs)."""

    def build():
        exts = {
            c: DSOOperator(lda.feeder, lda.devices).market_extension(CODES[c], name=f"f{i}")
            for i, (c, lda) in enumerate(ldas.items())
        }
        return exts, TransmissionMarket(pn.case9(), extensions=list(exts.values()), cost_segments=8)

    inputs = [
        {c: lda.inputs(FIRST_STEP + k) for c, lda in ldas.items()} for k in range(N_STEPS + 1)
    ]

    def interval(exts, market, k):
        for c, args in inputs[k].items():
            exts[c].set_interval(*args)
        res = market.clear()
        return res.lmp_usd_per_mwh.to_numpy(), [e.setpoints_mw() for e in exts.values()]

    fast, ref = build(), build()
    for exts, market in (fast, ref):
        interval(exts, market, 0)
    _use_pyomo(ref[1])
    t_fast, t_ref = [], []
    for k in range(1, N_STEPS + 1):
        a, ta = _timed(interval, *fast, k)
        b, tb = _timed(interval, *ref, k)
        _check(np.array_equal(a[0], b[0], equal_nan=True) and a[1] == b[1], f"TSO step {k}")
        t_fast.append(ta)
        t_ref.append(tb)
    f, r = np.mean(t_fast), np.mean(t_ref)
    print(f"(ii) Total TSO, case9 + 3 feeders, {fast[1].n_constraints} rows")
    print(f"    pyomo updates (reference):  {1e3 * r:7.1f} ms/interval")
    print(f"    compiled updates:           {1e3 * f:7.1f} ms/interval   {r / f:5.2f} x faster")


def main() -> None:
    warnings.simplefilter("ignore")
    ldas = {code: Lda(code, seed) for seed, code in enumerate(CODES)}
    bench_dso(ldas["1-MV-rural--0-sw"])
    bench_tso(ldas)


if __name__ == "__main__":
    main()
