"""Accuracy of the DSO's LinDistFlow model away from its linearisation point, over one day.

For every LDA of ``scenarios/default.yaml`` and ``scenarios/congested.yaml`` and every
quarter hour, the Total-DSO core does what the DSO agent does: the aggregators offer on
forecasts, :meth:`DSOOperator.virtual_resource` linearises the losses at
:func:`~gridlayers.dso.offer_blocks.midpoint_operating_point` (forecast fixed injections,
every device at the midpoint of its offer), the interface award is the least-cost one at
30 $/MWh (every virtual-resource block priced below it) and
:meth:`DSOOperator.disaggregate` turns it into device set-points; the devices then follow
their set-points under actual weather (device physics, so their states evolve over the
day as in the co-simulation). The linear model of the interval
(``solve_power_flow(p, q, operating_point=point, relinearise=0)``, what the pyomo block
computes) is compared with the physics layer (:class:`gridlayers.grid.Feeder`, pandapower
``runpp``) on the same injections at:

* ``lin. point``: the linearisation point itself (forecast, devices at their midpoints);
* ``award``: forecast loads and PV, devices at the set-points decided with that model
  alone (``max_relinearisations = 0``: the pre-decision model);
* ``actuals``: actual loads and PV, devices realising those set-points;
* ``DER +30%`` / ``DER -30%``: forecast, every device at 1.3 / 0.7 times its midpoint;
* with ``--extremes``: every device at the low / high end of its offer.

If the DSO re-linearises at its own solution (``DSOOperator.max_relinearisations > 0``),
the rows ``award re-lin.`` / ``actuals re-lin.`` evaluate its final model (losses at its
final base point) at its final set-points, with forecast and with actual loads and PV.
Those set-points drive the devices' states. The lossless model (plain LinDistFlow,
``operating_point=None``) is shown for reference.

Run: ``.venv/bin/python benchmarks/bench_lindistflow_accuracy.py [scenario.yaml ...]
[--extremes] [--serial]`` (one LDA per process on up to 2 cores; ``--serial``: one).
"""

from __future__ import annotations

import copy
import os
import sys
import time
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from gridlayers.agents.dso_setup import build_dso
from gridlayers.dso import InfeasibleDSOError
from gridlayers.dso.linear_system import interface_flow_pu, solve_linear_branch_flow
from gridlayers.grid.feeder import Feeder
from gridlayers.lda import build_lda
from gridlayers.scenarios import load_scenario

#: ``--extremes`` adds every device at the low / high end of its offer (two more AC runs).
EXTREMES = "--extremes" in sys.argv[1:]
#: ``--serial`` runs in this process; by default one LDA per process on up to 2 cores.
WORKERS = 1 if "--serial" in sys.argv[1:] else min(2, os.cpu_count() or 1)
SCENARIOS = [a for a in sys.argv[1:] if not a.startswith("--")] or [
    "scenarios/default.yaml",
    "scenarios/congested.yaml",
]
#: Interface price at which the award is the least-cost one ($/MWh).
PRICE_USD_PER_MWH = 30.0
#: Relative change of every device injection around the linearisation point (-).
DER_CHANGE = 0.3
#: Interface flows at or below this (MW, absolute) count as near zero for relative errors.
SMALL_FLOW_MW = 0.5


def award_at_price(curve, price_usd_per_mwh: float) -> float:
    """Least-cost interface export at ``price``: every block priced below it (MW)."""
    cleared = sum(b.quantity_mw for b in curve.blocks if b.price_usd_per_mwh < price_usd_per_mwh)
    return curve.p_min_mw + cleared


class LdaProbe:
    """One LDA's DSO core, its physics layer and the evaluation of its linear model."""

    def __init__(self, scenario, name: str) -> None:
        self.m = build_lda(scenario, name)
        self.dso = build_dso(self.m, max_blocks=10)
        self.ac = Feeder(self.m.net, self.m.config.limits)
        self.devices = {d.device_id: d for d in self.m.devices}
        self.dso_vs_direct_mw = 0.0  # DSO LP interface flow vs direct solve at the award
        self.infeasible_at: list[int] = []  # intervals where the DSO LP was infeasible
        feeder, net = self.dso.feeder, self.m.net
        rn = feeder.network
        # element -> model node incidence (every load/sgen is in service, scaling 1: checked
        # against feeder.injections_from_net on the first evaluation)
        self._load_node = net.load.bus.map(rn.bus_node).to_numpy()
        self._sgen_node = net.sgen.bus.map(rn.bus_node).to_numpy()
        self._bus_index = np.array(sorted(rn.bus_node))
        self._bus_node = np.array([rn.bus_node[b] for b in self._bus_index])
        self._sgen_rows = pd.Index(net.sgen.index)
        self._der_rows = {d: self._sgen_rows.get_loc(i) for d, i in self.m.der_sgen.items()}
        self._checked = self._lean_checked = False

    def _sgen(self, prof, k: int, der: dict[str, float]) -> np.ndarray:
        values = np.zeros(len(self._sgen_rows))
        values[self._sgen_rows.get_indexer(prof.sgen_p_mw.columns)] = prof.sgen_p_mw.iloc[k]
        for dev, p in der.items():
            values[self._der_rows[dev]] = p
        return values

    def _node_injections(self, load_p, load_q, sgen_p) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per model node (pu), from the arrays handed to the AC run."""
        rn = self.dso.feeder.network
        p = np.bincount(self._sgen_node, sgen_p, rn.n_nodes)
        p -= np.bincount(self._load_node, load_p, rn.n_nodes)
        q = -np.bincount(self._load_node, load_q, rn.n_nodes)
        if not self._checked:  # the same injections as the model's own reader
            p_ref, q_ref = self.dso.feeder.injections_from_net(self.ac.net)
            buses = self.dso.feeder.buses
            assert np.allclose(p_ref.reindex(buses).to_numpy(), p)
            assert np.allclose(q_ref.reindex(buses).to_numpy(), q)
            self._checked = True
        return p / rn.base_mva, q / rn.base_mva

    def evaluate(self, which: str, k: int, der: dict[str, float], points: dict) -> dict:
        """Return ``{model label: (max |dV| pu, P_lin - P_ac MW, P_ac MW)}`` at one point.

        Each linear evaluation is ``solve_power_flow(p, q, operating_point=point,
        relinearise=0)`` (voltages of every energised bus, interface export), computed
        through its two public parts without the loading table.
        """
        prof = self.m.forecast if which == "forecast" else self.m.actual
        load_p = prof.load_p_mw.iloc[k].to_numpy()
        load_q = prof.load_q_mvar.iloc[k].to_numpy()
        sgen_p = self._sgen(prof, k, der)
        res_ac = self.ac.run(load_p, load_q, sgen_p)
        if not res_ac.converged:
            msg = f"{self.m.name} interval {k}: AC power flow did not converge"
            raise RuntimeError(msg)
        vm_ac = res_ac.vm_pu.to_numpy()[self.m.net.bus.index.get_indexer(self._bus_index)]
        p_pu, q_pu = self._node_injections(load_p, load_q, sgen_p)
        feeder, rn = self.dso.feeder, self.dso.feeder.network
        p_ac = -res_ac.p_import_mw
        out = {}
        for label, point in points.items():
            state = solve_linear_branch_flow(rn, p_pu, q_pu, feeder.loss_coefficients(point))
            dv = float(np.abs(np.sqrt(state.w_pu)[self._bus_node] - vm_ac).max())
            p_lin = interface_flow_pu(rn, p_pu, q_pu, state)[0] * rn.base_mva
            out[label] = (dv, p_lin - p_ac, p_ac)
            if not self._lean_checked:  # the same numbers as the public direct solve
                ref = feeder.solve_power_flow(
                    pd.Series(p_pu * rn.base_mva, index=feeder.buses),
                    pd.Series(q_pu * rn.base_mva, index=feeder.buses),
                    operating_point=point,
                    relinearise=0,
                )
                ref_dv = (ref.vm_pu - res_ac.vm_pu.loc[ref.vm_pu.index]).abs().max()
                assert abs(ref_dv - dv) < 1e-12
                assert abs(ref.interface_p_mw - p_lin) < 1e-9
                self._lean_checked = point is not None
        return out

    def _realise(self, k: int, setpoints: dict[str, float], fc, act, *, advance: bool) -> dict:
        """Realised injection per device under actual conditions (MW, device physics).

        ``advance=False`` dispatches a shallow copy (devices replace their immutable state
        on dispatch), leaving the device where it is.
        """
        iv = self.m.interval(k)
        out = {}
        for d, p in setpoints.items():
            dev = self.devices[d] if advance else copy.copy(self.devices[d])  # state: replaced
            out[d] = dev.dispatch(p, iv, act[d], fc[d]).p_mw
        return out

    def _check_dso(self, result, errors: tuple[float, float, float]) -> None:
        """Track |DSO LP interface export - direct solve of the same model| (MW)."""
        p_direct = errors[1] + errors[2]
        self.dso_vs_direct_mw = max(self.dso_vs_direct_mw, abs(result.interface_p_mw - p_direct))

    def interval(self, k: int) -> dict[str, dict]:
        """Run interval ``k`` as the DSO does; return the errors per evaluation point."""
        m, dso = self.m, self.dso
        iv = m.interval(k)
        fc, act = m.conditions(k, "forecast"), m.conditions(k, "actual")
        offers = {}
        for agg in m.aggregators.values():
            offers.update(agg.device_offers(iv, fc))
            agg.pending.pop(k, None)
        p_fixed, q_fixed = m.fixed_injections(k, "forecast")
        mid = {d: 0.5 * (c.p_min_mw + c.p_max_mw) for d, c in offers.items()}
        relin_max = getattr(dso, "max_relinearisations", 0)  # re-linearising DSO, if any
        out: dict[str, dict] = {}
        final = None
        try:
            vr = dso.virtual_resource(p_fixed, q_fixed, offers)
            point = dso.operating_point  # pre-decision model: forecast midpoint
            award = award_at_price(vr.curve, PRICE_USD_PER_MWH)
            if relin_max:
                dso.max_relinearisations = 0
            pre = dso.disaggregate(award, PRICE_USD_PER_MWH)  # decided with that model only
            if relin_max:
                dso.max_relinearisations = relin_max
                final = dso.disaggregate(award, PRICE_USD_PER_MWH)
        except InfeasibleDSOError:
            self.infeasible_at.append(k)
            point, pre = dso.operating_point, None
            if relin_max:
                dso.max_relinearisations = relin_max
        models = {"model": point, "lossless": None}
        if pre is not None:
            out["award"] = self.evaluate("forecast", k, pre.setpoints_mw, models)
            self._check_dso(pre, out["award"]["model"])
            realised = self._realise(k, pre.setpoints_mw, fc, act, advance=final is None)
            out["actuals"] = self.evaluate("actual", k, realised, models)
        if final is not None:
            relin = {"relin": dso.operating_point}
            out["award re-lin."] = self.evaluate("forecast", k, final.setpoints_mw, relin)
            self._check_dso(final, out["award re-lin."]["relin"])
            realised = self._realise(k, final.setpoints_mw, fc, act, advance=True)
            out["actuals re-lin."] = self.evaluate("actual", k, realised, relin)
        if pre is None:  # the agent falls back to a network-blind split: devices at midpoints
            self._realise(k, mid, fc, act, advance=True)
        out["lin. point"] = self.evaluate("forecast", k, mid, models)
        for label, factor in (
            (f"DER +{DER_CHANGE:.0%}", 1 + DER_CHANGE),
            (f"DER -{DER_CHANGE:.0%}", 1 - DER_CHANGE),
        ):
            out[label] = self.evaluate(
                "forecast", k, {d: factor * p for d, p in mid.items()}, models
            )
        if EXTREMES:
            for label, end in (("DER at min", "p_min_mw"), ("DER at max", "p_max_mw")):
                der = {d: getattr(c, end) for d, c in offers.items()}
                out[label] = self.evaluate("forecast", k, der, models)
        return out


POINT_ORDER = (
    "lin. point",
    "award",
    "award re-lin.",
    "actuals",
    "actuals re-lin.",
    f"DER +{DER_CHANGE:.0%}",
    f"DER -{DER_CHANGE:.0%}",
    "DER at min",
    "DER at max",
)


def _pct(x: float) -> str:
    return "–" if np.isnan(x) else f"{100 * x:.2f} %"


def summarise(errors: list[tuple[float, float, float]]) -> dict[str, float]:
    """Max/p95 voltage error, max interface error and relative errors by flow size."""
    dv = np.array([e[0] for e in errors])
    dp = np.abs([e[1] for e in errors])
    p_ac = np.abs([e[2] for e in errors])
    large, small = p_ac > SMALL_FLOW_MW, p_ac <= SMALL_FLOW_MW
    rel = dp / np.maximum(p_ac, 1e-9)
    return {
        "n": len(errors),
        "dv_max": dv.max(),
        "dv_p95": np.percentile(dv, 95),
        "dp_max": dp.max(),
        "rel_large": rel[large].max() if large.any() else np.nan,
        "rel_small": rel[small].max() if small.any() else np.nan,
        "n_small": int(small.sum()),
    }


def measure_lda(path: str, name: str) -> tuple[str, dict, str]:
    """Run one LDA over the horizon; return (scenario name, errors by point and model, note)."""
    warnings.simplefilter("ignore")
    scenario = load_scenario(path)
    probe = LdaProbe(scenario, name)
    errors: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for k in range(scenario.horizon.intervals):
        for point, per_model in probe.interval(k).items():
            for model, err in per_model.items():
                errors[point][model].append(err)
    relin = errors.get("award re-lin.", {}).get("relin", [])
    note = (
        f"{scenario.name}/{name}: DSO LP vs direct solve of its model at the award "
        f"{probe.dso_vs_direct_mw:.1e} MW; infeasible DSO intervals: "
        f"{probe.infeasible_at or 'none'}"
    )
    if relin:
        inexact = sum(e[0] > 1e-6 for e in relin)
        note += f"; re-linearised award with |dV| > 1e-6 pu in {inexact} of {len(relin)} intervals"
    return scenario.name, {p: {m: list(v) for m, v in e.items()} for p, e in errors.items()}, note


def main() -> None:
    start = time.perf_counter()
    jobs = [(path, lda.name) for path in SCENARIOS for lda in load_scenario(path).ldas]
    if WORKERS == 1:
        results = [measure_lda(path, name) for path, name in jobs]
    else:
        with ProcessPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(measure_lda, *zip(*jobs, strict=True)))
    seconds = time.perf_counter() - start

    print(
        f"LinDistFlow (losses linearised at the forecast midpoint, as the DSO does) vs "
        f"pandapower AC; award at {PRICE_USD_PER_MWH:.0f} $/MWh; |dV| max over buses per "
        f"interval, then max / 95th percentile over intervals; dP = P_lin - P_ac (interface "
        f"export); relative dP split at |P_ac| = {SMALL_FLOW_MW} MW (n = intervals at or "
        f"below it). 're-lin.': the DSO's final model, re-linearised at its own solution."
    )
    print()
    print(
        "| scenario | feeder | evaluated at | n | max abs dV [pu] | p95 abs dV [pu] "
        "| max abs dP [MW] | max rel dP, abs(P)>0.5 MW | max rel dP, abs(P)<=0.5 MW (n) "
        "| lossless: max abs dV [pu] | lossless: max abs dP [MW] |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (_, lda), (scen, errors, _) in zip(jobs, results, strict=True):
        for point in sorted(errors, key=POINT_ORDER.index):
            per_model = errors[point]
            s = summarise(per_model["model" if "model" in per_model else "relin"])
            loss = summarise(per_model["lossless"]) if "lossless" in per_model else None
            loss_cols = f"{loss['dv_max']:.1e} | {loss['dp_max']:.4f}" if loss else "– | –"
            print(
                f"| {scen} | {lda} | {point} | {s['n']} | {s['dv_max']:.1e} "
                f"| {s['dv_p95']:.1e} | {s['dp_max']:.4f} | {_pct(s['rel_large'])} "
                f"| {_pct(s['rel_small'])} ({s['n_small']}) | {loss_cols} |"
            )
    print()
    for _, _, note in results:
        print(note)
    print(f"wall time {seconds:.0f} s ({WORKERS} processes)")


if __name__ == "__main__":
    main()
