"""AC voltages at the set-points each paradigm dispatches (pure cores, no mosaik).

The congested scenario's rural LDA (``scenarios/congested.yaml``, 1-MV-rural--0-sw with
6 kW PV per kW of peak load) at its interface bus of the scenario's transmission system
(the only LDA; bulk load as profiled, no bulk forecast error). For each quarter hour of a
window (default 08:00-16:00) every paradigm decides on the *forecast* and its devices
are dispatched; the set-points then go to pandapower ``runpp`` (the physics layer's
:class:`gridlayers.grid.feeder.Feeder`) twice:

* ``fc=act``: loads, non-DER generation and PV availability as forecast;
* ``actual``: the scenario's actual values (forecast errors as in a run).

Each paradigm keeps its own device state (batteries, flexible loads, EVs), advanced with
the actual conditions. The DSO is configured by ``--margin`` (voltage margin, pu) and
``--relinearise`` (maximum re-linearisations at the solution; 0 = the behaviour before
re-linearisation existed: losses linearised at the interval's midpoint point only).

Run: ``.venv/bin/python benchmarks/bench_dso_ac_limits.py [--margin 0.002]
[--relinearise 3] [--start 32] [--n 32]``.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import time
import warnings

import numpy as np
import pandas as pd

from gridlayers.agents.dso_setup import build_dso
from gridlayers.domain import BidCurve
from gridlayers.dso.extension import FeederMarketExtension
from gridlayers.grid.feeder import Feeder
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.lda import LDAModel, build_lda
from gridlayers.market import TransmissionMarket
from gridlayers.scenarios.load import load_scenario

SCENARIO = load_scenario("scenarios/congested.yaml")
LDA = {"name": "rural"}


def _build(margin: float, relin: int) -> tuple[LDAModel, object]:
    scenario = SCENARIO
    model = build_lda(scenario, LDA["name"])
    limits = model.config.limits
    if "voltage_margin_pu" in type(limits).model_fields:
        model.config = model.config.model_copy(
            update={"limits": limits.model_copy(update={"voltage_margin_pu": margin})}
        )
    elif margin:
        msg = "this checkout has no LimitsConfig.voltage_margin_pu"
        raise SystemExit(msg)
    dso = build_dso(model, max_blocks=10)
    if hasattr(dso, "max_relinearisations"):
        dso.max_relinearisations = relin
    elif relin:
        msg = "this checkout's DSOOperator does not re-linearise"
        raise SystemExit(msg)
    return model, dso


class Paradigm:
    """One paradigm's DSO/market/devices for the window."""

    def __init__(self, name: str, model: LDAModel, dso: object, relin: int) -> None:
        self.name, self.model, self.dso, self.relin = name, copy.deepcopy(model), dso, relin
        bus = model.config.interface_bus
        self.bus = bus
        devices = {d.device_id: int(d.bus) for d in self.model.devices}
        tr = SCENARIO.transmission
        net = transmission_network(tr)
        base = (net.load.p_mw * net.load.scaling).to_numpy(float)
        self.bulk = load_scale(tr.load_profile, SCENARIO.horizon)[:, None] * base[None, :]
        self.load_index = net.load.index
        seg = {"cost_segments": tr.cost_segments} if hasattr(tr, "cost_segments") else {}
        if name == "total_tso":
            kwargs = {"blocks_per_device": dso.blocks_per_device, "name": "rural"}
            if "slack_penalty_usd_per_mwh" in inspect.signature(FeederMarketExtension).parameters:
                kwargs["slack_penalty_usd_per_mwh"] = model.config.limits.slack_penalty_usd_per_mwh
            self.ext = FeederMarketExtension(dso.feeder, devices, self.bus, **kwargs)
            self.market = TransmissionMarket(net, extensions=[self.ext], **seg)
        elif name == "total_dso":
            self.market = TransmissionMarket(net, participants={"lda": self.bus}, **seg)
        else:
            parts = {"firm": self.bus} | {a: self.bus for a in self.model.aggregators}
            self.market = TransmissionMarket(net, participants=parts, **seg)

    def setpoints(self, k: int) -> tuple[dict[str, float], dict]:
        m = self.model
        iv, fc = m.interval(k), m.conditions(k, "forecast")
        offers = {d.device_id: d.offer(iv, fc[d.device_id]) for d in m.devices}
        p, q = m.fixed_injections(k, "forecast")
        info = {}
        load = pd.Series(self.bulk[k], index=self.load_index)
        if self.name == "total_tso":
            self.ext.set_interval(p, q, offers)
            self.market.clear(load_p_mw=load)
            for it in range(self.relin):
                change = self.ext.relinearise_at_solution()
                info[f"dv{it}"] = change
                if change < 1e-5:
                    break
                self.market.clear(load_p_mw=load)
            return self.ext.setpoints_mw(), info
        if self.name == "total_dso":
            vr = self.dso.virtual_resource(p, q, offers)
            res = self.market.clear(load_p_mw=load, bids={"lda": vr.curve})
            award, lmp = res.awards_mw["lda"], float(res.lmp_usd_per_mwh[self.bus])
            dis = self.dso.disaggregate(award, lmp)
            info["miss_mw"] = dis.interface_p_mw - award
            return dis.setpoints_mw, info
        firm = float(self.dso.feeder.solve_power_flow(p, q).interface_p_mw)
        bids = {"firm": BidCurve.fixed(firm)}
        for name, agg in m.aggregators.items():
            bids[name] = agg.portfolio_offer(iv, fc)
        res = self.market.clear(load_p_mw=load, bids=bids)
        lmp = float(res.lmp_usd_per_mwh[self.bus])
        proposed = {}
        for name, agg in m.aggregators.items():
            proposed.update(agg.setpoints(res.awards_mw[name], offers))
        red = self.dso.redispatch(proposed, p, q, offers, lmp)
        info["pred"] = red.violations_predicted
        return red.setpoints_mw, info


def _ac(model: LDAModel, feeder: Feeder, k: int, setpoints: dict[str, float], which: str) -> dict:
    """Dispatch copies of the devices and run AC; return max vm and violations."""
    iv = model.interval(k)
    cond, fc = model.conditions(k, which), model.conditions(k, "forecast")
    realised = {}
    for d in model.devices:
        dev = copy.deepcopy(d)
        realised[d.device_id] = dev.dispatch(
            setpoints[d.device_id], iv, cond[d.device_id], fc[d.device_id]
        ).p_mw
    prof = model.forecast if which == "forecast" else model.actual
    sgen = pd.Series(0.0, index=model.net.sgen.index)
    sgen[prof.sgen_p_mw.columns] = prof.sgen_p_mw.iloc[k].to_numpy()
    for dev, p in realised.items():
        sgen[model.der_sgen[dev]] = p
    res = feeder.run(prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], sgen)
    return {
        "vm_max": res.vm_max_pu,
        "vm_min": res.vm_min_pu,
        "viol": res.voltage_violations,
        "load": res.max_loading_percent,
        "th": res.thermal_violations,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--relinearise", type=int, default=0)
    parser.add_argument("--start", type=int, default=32)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--paradigms", default="total_tso,total_dso,minimal_dso")
    parser.add_argument("--lda", default="rural")
    args = parser.parse_args()
    LDA["name"] = args.lda
    warnings.simplefilter("ignore")
    model, dso = _build(args.margin, args.relinearise)
    limits = model.config.limits
    print(
        f"margin {args.margin} pu, relinearise {args.relinearise}, "
        f"limit {limits.vm_min_pu}-{limits.vm_max_pu} pu"
    )
    names = args.paradigms.split(",")
    runs = {n: Paradigm(n, model, dso, args.relinearise) for n in names}
    feeders = {w: Feeder(model.net, limits) for w in ("forecast", "actual")}
    rows = []
    for k in range(args.start, args.start + args.n):
        for name, run in runs.items():
            t0 = time.perf_counter()
            setpoints, info = run.setpoints(k)
            dt = time.perf_counter() - t0
            row = {"k": k, "paradigm": name, "seconds": dt, **info}
            row["der_mwh"] = sum(setpoints.values()) * run.model.interval_min / 60.0
            for which in ("forecast", "actual"):
                out = _ac(run.model, feeders[which], k, setpoints, which)
                row.update({f"{key}_{which}": v for key, v in out.items()})
            rows.append(row)
            # advance the paradigm's device state with the actual conditions
            m = run.model
            iv, act, fc = m.interval(k), m.conditions(k, "actual"), m.conditions(k, "forecast")
            for d in m.devices:
                d.dispatch(setpoints[d.device_id], iv, act[d.device_id], fc[d.device_id])
    df = pd.DataFrame(rows)
    vmax = limits.vm_max_pu
    pd.set_option("display.width", 200)
    summary = []
    for name, g in df.groupby("paradigm", sort=False):
        for which, label in (("forecast", "fc=act"), ("actual", "actual")):
            over = np.maximum(g[f"vm_max_{which}"] - vmax, 0.0)
            summary.append(
                {
                    "paradigm": name,
                    "case": label,
                    "max vm [pu]": round(g[f"vm_max_{which}"].max(), 5),
                    "max over [pu]": f"{over.max():.1e}",
                    "intervals over": int((over > 0).sum()),
                    "bus-intervals over": int(g[f"viol_{which}"].sum()),
                    "max loading %": round(g[f"load_{which}"].max(), 1),
                    "s/interval": round(g["seconds"].mean(), 3),
                    "DER MWh": round(g["der_mwh"].sum(), 3),
                    "dV fc error p95/max [pu]": "{:.5f}/{:.5f}".format(
                        *np.percentile(g["vm_max_actual"] - g["vm_max_forecast"], [95, 100])
                    ),
                }
            )
    print(pd.DataFrame(summary).to_string(index=False))
    extra = [c for c in df.columns if c in ("miss_mw", "pred") or c.startswith("dv")]
    if extra:
        print(df.groupby("paradigm")[extra].agg(["min", "max"]).to_string())


if __name__ == "__main__":
    main()
