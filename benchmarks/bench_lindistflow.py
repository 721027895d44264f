"""Benchmark the LinDistFlow feeder model over 96 quarter-hours of one SimBench feeder.

(i) build once + update mutable Params + re-solve (persistent APPSI HiGHS) vs
(ii) rebuild the pyomo model every interval; and the direct linear power flow
vs pandapower ``runpp``. Run: ``.venv/bin/python benchmarks/bench_lindistflow.py [code]``.
"""

from __future__ import annotations

import copy
import sys
import time
import warnings

import pandapower as pp
import pyomo.environ as pyo
import simbench

from gridlayers.dso import LinDistFlowFeeder, extract_state

CODE = sys.argv[1] if len(sys.argv) > 1 else "1-MV-urban--0-sw"
N_STEPS = 96
PRICE_USD_PER_MWH = 50.0


def build(feeder: LinDistFlowFeeder, sgen_buses: list[int]) -> pyo.ConcreteModel:
    """OPF: every sgen bus has a free, curtailable PV; import is bought at the root price."""
    m = pyo.ConcreteModel()
    m.PV_BUSES = pyo.Set(initialize=sgen_buses)
    m.pv_avail_mw = pyo.Param(m.PV_BUSES, mutable=True, initialize=0.0, doc="available PV (MW)")
    m.PV = pyo.Var(m.PV_BUSES, within=pyo.NonNegativeReals, doc="PV injection (MW)")
    m.PVCap = pyo.Constraint(m.PV_BUSES, rule=lambda m, b: m.PV[b] <= m.pv_avail_mw[b])
    m.feeder = pyo.Block()
    feeder.add_to_model(m.feeder, controllable_p_mw={b: m.PV[b] for b in sgen_buses})
    m.obj = pyo.Objective(expr=-PRICE_USD_PER_MWH * m.feeder.InterfaceP)
    return m


def main() -> None:
    warnings.simplefilter("ignore")
    net = simbench.get_simbench_net(CODE)
    prof = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    lp, lq, sg = prof[("load", "p_mw")], prof[("load", "q_mvar")], prof[("sgen", "p_mw")]
    start = int((lp.sum(axis=1) - sg.sum(axis=1)).idxmax()) // 96 * 96  # the peak day
    steps = range(start, start + N_STEPS)
    feeder = LinDistFlowFeeder(net)
    sgen_buses = sorted({feeder.bus_node_bus[int(b)] for b in net.sgen.bus})
    loads_only = copy.deepcopy(net)
    loads_only.sgen["in_service"] = False

    def inputs(step: int):
        loads_only.load["p_mw"] = lp.loc[step].to_numpy()
        loads_only.load["q_mvar"] = lq.loc[step].to_numpy()
        avail = sg.loc[step].groupby(net.sgen.bus.map(feeder.bus_node_bus).to_numpy()).sum()
        return (*feeder.injections_from_net(loads_only), avail)

    data = [inputs(s) for s in steps]

    # (i) build once, update in place
    t0 = time.perf_counter()
    model = build(feeder, sgen_buses)
    solver = pyo.SolverFactory("appsi_highs")
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p_mw, q_mvar, avail in data:
        feeder.set_fixed_injections(model.feeder, p_mw, q_mvar)
        model.pv_avail_mw.store_values(avail.to_dict())
        solver.solve(model)
        feeder.set_operating_point(model.feeder, extract_state(feeder, model.feeder).point)
    t_update = time.perf_counter() - t0

    # (ii) rebuild every interval
    t0 = time.perf_counter()
    for p_mw, q_mvar, avail in data:
        fresh = build(feeder, sgen_buses)
        feeder.set_fixed_injections(fresh.feeder, p_mw, q_mvar)
        fresh.pv_avail_mw.store_values(avail.to_dict())
        pyo.SolverFactory("appsi_highs").solve(fresh)
    t_rebuild = time.perf_counter() - t0

    # direct linear power flow vs pandapower AC
    full = [(lp.loc[s].to_numpy(), lq.loc[s].to_numpy(), sg.loc[s].to_numpy()) for s in steps]
    pp.runpp(net)  # JIT warm-up
    t0 = time.perf_counter()
    for load_p, load_q, sgen_p in full:
        net.load["p_mw"], net.load["q_mvar"], net.sgen["p_mw"] = load_p, load_q, sgen_p
        pp.runpp(net, init="results")
    t_ac = time.perf_counter() - t0
    t0 = time.perf_counter()
    for load_p, load_q, sgen_p in full:
        net.load["p_mw"], net.load["q_mvar"], net.sgen["p_mw"] = load_p, load_q, sgen_p
        feeder.solve_power_flow(*feeder.injections_from_net(net))
    t_lin = time.perf_counter() - t0
    t0 = time.perf_counter()
    point = feeder.base_point
    for load_p, load_q, sgen_p in full:
        net.load["p_mw"], net.load["q_mvar"], net.sgen["p_mw"] = load_p, load_q, sgen_p
        point = feeder.solve_power_flow(
            *feeder.injections_from_net(net), operating_point=point, relinearise=0
        ).point
    t_lin0 = time.perf_counter() - t0

    n = N_STEPS
    print(
        f"feeder {CODE}: {len(feeder.buses)} model buses, {len(sgen_buses)} PV buses, {n} intervals"
    )
    print(f"OPF build once          : {1e3 * t_build:8.1f} ms")
    print(f"OPF update + re-solve   : {1e3 * t_update / n:8.1f} ms/interval")
    ratio = t_rebuild / t_update
    print(
        f"OPF rebuild + solve     : {1e3 * t_rebuild / n:8.1f} ms/interval"
        f"  (rebuild/update {ratio:.1f}x)"
    )
    print(f"pandapower runpp        : {1e3 * t_ac / n:8.2f} ms/interval")
    for label, t in (("linear PF (2 passes)   ", t_lin), ("linear PF (prev. point)", t_lin0)):
        print(f"{label} : {1e3 * t / n:8.2f} ms/interval  (runpp/linear {t_ac / t:.1f}x)")


if __name__ == "__main__":
    main()
