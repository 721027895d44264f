"""LinDistFlow accuracy the way the DSO uses it, against pandapower's AC power flow.

The DSO linearises the feeder losses once per interval at
:func:`~gridlayers.dso.offer_blocks.midpoint_operating_point` (forecast fixed injections,
every device at the midpoint of its offer), decides the award's set-points with that model,
and the physics layer then runs the AC power flow at those set-points with the *actual*
loads and weather. Here, on the bundled SimBench feeders with their DER
(``scenarios/default.yaml``) at night, in the morning and at noon, the linear model of
that interval (``solve_power_flow(p, q, operating_point=point, relinearise=0)``, what the
pyomo block computes) is compared with :class:`gridlayers.grid.Feeder` (pandapower
``runpp``) on the same injections at

* the linearisation point itself (sanity: ~1e-8 pu, the DistFlow equations are exact);
* the award: a real Total-DSO disaggregation of the least-cost award at 30 $/MWh,
  decided with the midpoint model only (no re-linearisation at the solution);
* the actuals: actual loads and PV, devices realising those set-points (device physics);
* every DER injection +30 % and -30 % from the linearisation point.

The bounds (``BOUNDS``, quoted in ``docs/distribution-opf.md``, "Accuracy away from the
linearisation point") are the errors measured on these cases with a margin of about 2x,
so the test fails if the model gets worse. Two checks show that it can fail: evaluated
lossless (``operating_point=None``, plain LinDistFlow) or with the losses linearised at
the wrong point (the feeder's construction-time base point: SimBench study-case loads, no
DER), every case breaks them. If the DSO re-linearises at its own solution
(``max_relinearisations``), its final model is also checked at its final award.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pandas as pd
import pytest

from gridlayers.agents.dso_setup import build_dso
from gridlayers.grid.feeder import Feeder
from gridlayers.lda import build_lda
from gridlayers.scenarios import load_scenario

pytest.importorskip("simbench")

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"
FEEDERS = ("rural", "semiurban", "urban")
#: Quarter-hour intervals of 1 June 2016: 02:00, 08:00, 12:00.
INTERVALS = {"night": 8, "morning": 32, "noon": 48}
PRICE_USD_PER_MWH = 30.0
DER_CHANGE = 0.3
#: Flows at or below this (MW) are near zero: relative errors are not bounded there.
SMALL_FLOW_MW = 0.5

#: Evaluation point -> (max |V_lin - V_ac| over buses in pu, max |P_lin - P_ac| of the
#: interface export in MW). Measured maxima over the 9 cases (pandapower 3.5.6):
#: lin. point 1.3e-8 pu / 5.6e-6 MW; award 2.7e-5 pu / 0.0040 MW; actuals 2.6e-5 pu /
#: 0.0039 MW; DER +-30 % 1.5e-7 pu / 2.7e-5 MW. Bounds: about twice that, except at the
#: linearisation point (1e-6 pu: the docs' figure there).
BOUNDS: dict[str, tuple[float, float]] = {
    "lin. point": (1e-6, 1e-4),
    "award": (6e-5, 0.008),
    "actuals": (6e-5, 0.008),
    "DER +30%": (3e-7, 6e-5),
    "DER -30%": (3e-7, 6e-5),
}
#: Max |P_lin - P_ac| / |P_ac| where |P_ac| > SMALL_FLOW_MW (-); measured 0.67 % (award,
#: rural at night, 0.59 MW export).
REL_BOUND = 0.015

Errors = dict[str, tuple[float, float, float]]  # point -> (max |dV| pu, dP MW, P_ac MW)


def _award_at_price(curve, price: float) -> float:
    """Least-cost interface export at ``price`` (MW): every block priced below it."""
    return curve.p_min_mw + sum(b.quantity_mw for b in curve.blocks if b.price_usd_per_mwh < price)


class _Case:
    """One LDA: its Total-DSO core (as the DSO agent builds it) and its physics layer."""

    def __init__(self, scenario, name: str) -> None:
        self.m = build_lda(scenario, name)
        self.dso = build_dso(self.m, max_blocks=10)
        self.ac = Feeder(self.m.net, self.m.config.limits)
        self.devices = {d.device_id: d for d in self.m.devices}

    def evaluate(self, which: str, k: int, der: dict[str, float], models: dict) -> dict:
        """AC power flow of interval ``k`` (``which`` loads and PV, DER at ``der`` MW) against
        the linear model at each base point of ``models``: ``{label: (max |dV| pu,
        P_lin - P_ac MW, P_ac MW)}``.
        """
        prof = self.m.forecast if which == "forecast" else self.m.actual
        sgen = pd.Series(0.0, index=self.m.net.sgen.index)
        sgen[prof.sgen_p_mw.columns] = prof.sgen_p_mw.iloc[k].to_numpy()
        for dev, p in der.items():
            sgen[self.m.der_sgen[dev]] = p
        res_ac = self.ac.run(prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], sgen.to_numpy())
        assert res_ac.converged
        feeder = self.dso.feeder
        p, q = feeder.injections_from_net(self.ac.net)  # exactly the AC run's injections
        p_ac = -res_ac.p_import_mw
        out = {}
        for label, point in models.items():
            lin = feeder.solve_power_flow(p, q, operating_point=point, relinearise=0)
            dv = float((lin.vm_pu - res_ac.vm_pu.loc[lin.vm_pu.index]).abs().max())
            out[label] = (dv, lin.interface_p_mw - p_ac, p_ac)
        return out


def _measure(case: _Case, k: int) -> dict:
    """Run interval ``k`` as the DSO does; return the errors per model and evaluation point.

    ``"model"`` is the DSO's pre-decision model (losses at the forecast midpoint),
    ``"lossless"`` plain LinDistFlow, ``"wrong point"`` losses linearised at the feeder's
    construction-time point; ``"relin"`` (if the DSO re-linearises at its solution) the
    DSO's final model at its own final set-points.
    """
    m, dso = case.m, case.dso
    iv = m.interval(k)
    fc, act = m.conditions(k, "forecast"), m.conditions(k, "actual")
    offers = {}
    for agg in m.aggregators.values():
        offers.update(agg.device_offers(iv, fc))
    p_fixed, q_fixed = m.fixed_injections(k, "forecast")
    vr = dso.virtual_resource(p_fixed, q_fixed, offers)
    point = dso.operating_point  # the pre-decision model: forecast midpoint
    award = _award_at_price(vr.curve, PRICE_USD_PER_MWH)
    relin_max = dso.max_relinearisations
    dso.max_relinearisations = 0  # decide with the midpoint model only
    pre = dso.disaggregate(award, PRICE_USD_PER_MWH)
    mid = {d: 0.5 * (c.p_min_mw + c.p_max_mw) for d, c in offers.items()}
    realised = {  # devices replace their (immutable) state on dispatch: dispatch copies
        d: copy.copy(case.devices[d]).dispatch(p, iv, act[d], fc[d]).p_mw
        for d, p in pre.setpoints_mw.items()
    }
    models = {"model": point, "lossless": None, "wrong point": dso.feeder.base_point}
    runs = {
        "lin. point": ("forecast", mid),
        "award": ("forecast", pre.setpoints_mw),
        "actuals": ("actual", realised),
        "DER +30%": ("forecast", {d: (1 + DER_CHANGE) * p for d, p in mid.items()}),
        "DER -30%": ("forecast", {d: (1 - DER_CHANGE) * p for d, p in mid.items()}),
    }
    out: dict = {label: {} for label in models}
    for label, (which, der) in runs.items():
        for model, err in case.evaluate(which, k, der, models).items():
            out[model][label] = err
    out["dso_export_mw"] = pre.interface_p_mw
    dso.max_relinearisations = relin_max  # the DSO's own re-linearisation at its solution
    final = dso.disaggregate(award, PRICE_USD_PER_MWH)
    out["relin"] = case.evaluate("forecast", k, final.setpoints_mw, {"award": dso.operating_point})
    return out


def _violations(errors: Errors) -> list[str]:
    """Evaluation points whose error is above the documented bound."""
    out = []
    for label, (dv, dp, p_ac) in errors.items():
        dv_max, dp_max = BOUNDS[label]
        if dv > dv_max:
            out.append(f"{label}: |dV| {dv:.2e} pu > {dv_max:.0e}")
        if abs(dp) > dp_max:
            out.append(f"{label}: |dP| {abs(dp):.4f} MW > {dp_max}")
        if abs(p_ac) > SMALL_FLOW_MW and abs(dp) / abs(p_ac) > REL_BOUND:
            out.append(f"{label}: |dP/P| {abs(dp / p_ac):.2%} > {REL_BOUND:.1%} (P {p_ac:.2f} MW)")
    return out


@pytest.fixture(scope="module")
def measured() -> dict:
    """Errors per (feeder, interval): ``{"model" | "lossless" | "wrong point": Errors}``."""
    scenario = load_scenario(SCENARIO)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in FEEDERS:
            case = _Case(scenario, name)
            for when, k in INTERVALS.items():
                out[name, when] = _measure(case, k)
    return out


def _table(measured: dict, model: str) -> str:
    rows = [
        f"{name:9s} {when:7s} {label:10s} dV {dv:.1e}  dP {dp:+.4f} MW  P {p_ac:+8.3f} MW"
        for (name, when), per_model in measured.items()
        for label, (dv, dp, p_ac) in per_model[model].items()
    ]
    return "\n".join(rows)


def test_the_evaluated_model_is_the_dsos(measured: dict) -> None:
    """The direct solve at the award reproduces the DSO LP's own interface export."""
    for key, per_model in measured.items():
        _, dp, p_ac = per_model["model"]["award"]
        assert abs(p_ac + dp - per_model["dso_export_mw"]) < 1e-6, key


def test_exact_at_the_linearisation_point(measured: dict) -> None:
    """Sanity: at its own linearisation point the model is the AC power flow (~1e-8 pu)."""
    for key, per_model in measured.items():
        dv, dp, _ = per_model["model"]["lin. point"]
        assert dv < 1e-6, key
        assert abs(dp) < 1e-4, key


def test_accuracy_away_from_the_linearisation_point(measured: dict) -> None:
    """Award, actuals and DER +-30 %: within the documented bounds (docs/distribution-opf.md)."""
    bad = [
        f"{key}: {v}"
        for key, per_model in measured.items()
        for v in _violations(per_model["model"])
    ]
    assert not bad, "\n".join(bad) + "\n" + _table(measured, "model")


def test_the_bounds_catch_a_lossless_model(measured: dict) -> None:
    """Plain LinDistFlow (losses not linearised) breaks the bounds: the test can fail."""
    bad = [key for key, per_model in measured.items() if _violations(per_model["lossless"])]
    assert len(bad) == len(measured), _table(measured, "lossless")


def test_the_bounds_catch_a_wrong_linearisation_point(measured: dict) -> None:
    """Losses linearised at the construction-time point instead of the interval's break them."""
    bad = [key for key, per_model in measured.items() if _violations(per_model["wrong point"])]
    assert len(bad) == len(measured), _table(measured, "wrong point")


def test_dso_relinearised_at_its_solution_is_exact_at_the_award(measured: dict) -> None:
    """The DSO re-linearises at its solution, so its final model is exact at its award."""
    for key, per_model in measured.items():
        dv, dp, _ = per_model["relin"]["award"]
        assert dv < 1e-6, key
        assert abs(dp) < 1e-4, key
