"""LinDistFlow feeder model against pandapower AC power flow (independent truth)."""

from __future__ import annotations

import copy
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pyomo.environ as pyo
import pytest

from gridlayers.dso import LinDistFlowFeeder, MeshedFeederError, dlmp_usd_per_mwh, extract_state

simbench = pytest.importorskip("simbench")

BUNDLED = ("1-MV-rural--0-sw", "1-MV-semiurb--0-sw", "1-MV-urban--0-sw")
VM_TOL_PU = 0.005
P_TOL = 0.01


def _load_simbench(code: str, cache_dir: Path) -> pp.pandapowerNet:
    """Return a SimBench net, pickled in pytest's cache (``get_simbench_net`` takes seconds)."""
    path = cache_dir / f"{code}.pkl"
    if path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    net = simbench.get_simbench_net(code)
    with path.open("wb") as fh:
        pickle.dump(net, fh)
    return net


@pytest.fixture(scope="module")
def bundled(request: pytest.FixtureRequest) -> dict:
    """Load each bundled SimBench feeder, its profiles and its model once per module."""
    cache = {}
    cache_dir = Path(request.config.cache.mkdir("gridlayers-simbench"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for code in BUNDLED:
            net = _load_simbench(code, cache_dir)
            prof = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
            cache[code] = (net, prof, LinDistFlowFeeder(net), copy.deepcopy(net))
    return cache


def _apply_step(net: pp.pandapowerNet, prof: dict, step: int) -> None:
    net.load["p_mw"] = prof[("load", "p_mw")].loc[step, net.load.index].to_numpy()
    net.load["q_mvar"] = prof[("load", "q_mvar")].loc[step, net.load.index].to_numpy()
    net.sgen["p_mw"] = prof[("sgen", "p_mw")].loc[step, net.sgen.index].to_numpy()


def _case_step(prof: dict, case: str) -> int:
    net_load = prof[("load", "p_mw")].sum(axis=1) - prof[("sgen", "p_mw")].sum(axis=1)
    return int(net_load.idxmax() if case == "peak" else net_load.idxmin())


def _errors(result, net: pp.pandapowerNet) -> tuple[float, float]:
    vm_err = float((result.vm_pu - net.res_bus.vm_pu.loc[result.vm_pu.index]).abs().max())
    p_ac = float(-net.res_ext_grid.p_mw.sum())
    return vm_err, abs(result.interface_p_mw - p_ac) / abs(p_ac)


@pytest.mark.parametrize("case", ["peak", "reverse"])
@pytest.mark.parametrize("code", BUNDLED)
def test_accuracy_against_ac(bundled: dict, code: str, case: str) -> None:
    net, prof, feeder, _ = bundled[code]
    step = _case_step(prof, case)
    _apply_step(net, prof, step - 1)
    previous = feeder.solve_power_flow(*feeder.injections_from_net(net)).point
    _apply_step(net, prof, step)
    pp.runpp(net)
    p_mw, q_mvar = feeder.injections_from_net(net)
    # default: losses linearised around the lossless solution of the same injections
    vm_err, p_err = _errors(feeder.solve_power_flow(p_mw, q_mvar), net)
    assert vm_err <= VM_TOL_PU
    assert p_err <= P_TOL
    # as in operation: linearised around the previous quarter-hour's state
    vm_prev, p_prev = _errors(
        feeder.solve_power_flow(p_mw, q_mvar, operating_point=previous, relinearise=0), net
    )
    assert vm_prev <= VM_TOL_PU
    assert p_prev <= P_TOL
    # the loss model is what makes the interface flow accurate
    _, p_plain = _errors(feeder.solve_power_flow(p_mw, q_mvar, relinearise=0), net)
    assert p_plain > 2 * max(p_err, p_prev)
    loading_err = (
        feeder.solve_power_flow(p_mw, q_mvar).loading_percent.loc["line"]
        - net.res_line.loading_percent
    )
    assert float(loading_err.abs().max()) < 0.5


def _opf(feeder: LinDistFlowFeeder, pv_bus: int, enforce: bool) -> pyo.ConcreteModel:
    model = pyo.ConcreteModel()
    model.feeder = pyo.Block()
    model.PV = pyo.Var(bounds=(0.0, 8.0), doc="PV injection (MW)")
    feeder.add_to_model(model.feeder, controllable_p_mw={pv_bus: model.PV}, enforce_limits=enforce)
    model.obj = pyo.Objective(expr=-50.0 * model.feeder.InterfaceP + 1.0 * model.PV)
    model.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    return model


@pytest.mark.parametrize("enforce", [True, False])
def test_opf_curtails_pv_at_voltage_limit(bundled: dict, enforce: bool) -> None:
    net = copy.deepcopy(bundled[BUNDLED[0]][3])
    feeder = LinDistFlowFeeder(net)  # study-case loads and sgens as bundled
    p_mw, q_mvar = feeder.injections_from_net(net)
    base = feeder.solve_power_flow(p_mw, q_mvar)
    pv_bus = int(base.vm_pu.idxmin())
    model = _opf(feeder, pv_bus, enforce)
    feeder.set_fixed_injections(model.feeder, p_mw, q_mvar)
    feeder.set_operating_point(model.feeder, base.point)
    solver = pyo.SolverFactory("appsi_highs")
    solver.solve(model)
    # re-linearise losses around the OPF solution and re-solve in place
    feeder.set_operating_point(model.feeder, extract_state(feeder, model.feeder).point)
    solver.solve(model)
    state = extract_state(feeder, model.feeder)
    dlmp = dlmp_usd_per_mwh(model.feeder)
    assert dlmp[feeder.root_bus] == pytest.approx(50.0, abs=1e-6)
    if not enforce:
        assert pyo.value(model.PV) == pytest.approx(8.0)
        assert state.vm_pu.max() > 1.06
        return
    assert pyo.value(model.PV) < 7.0
    assert state.vm_pu.max() == pytest.approx(1.05, abs=1e-6)
    assert abs(dlmp[pv_bus] - 50.0) > 10.0
    assert dlmp[pv_bus] == pytest.approx(1.0, abs=1e-6)  # curtailed PV is marginal there
    pp.create_sgen(net, pv_bus, p_mw=pyo.value(model.PV))
    pp.runpp(net)
    assert net.res_bus.vm_pu.max() == pytest.approx(1.05, abs=VM_TOL_PU)
    assert -net.res_ext_grid.p_mw.sum() == pytest.approx(state.interface_p_mw, rel=P_TOL)


def _fixed_model(feeder: LinDistFlowFeeder) -> pyo.ConcreteModel:
    model = pyo.ConcreteModel()
    model.feeder = pyo.Block()
    feeder.add_to_model(model.feeder, enforce_limits=False)
    model.obj = pyo.Objective(expr=-model.feeder.InterfaceP)
    return model


def test_update_in_place_equals_fresh_build(bundled: dict) -> None:
    net, prof, feeder, _ = bundled[BUNDLED[1]]
    steps = (_case_step(prof, "peak"), _case_step(prof, "reverse"))
    injections = []
    for step in steps:
        _apply_step(net, prof, step)
        injections.append(feeder.injections_from_net(net))
    solver = pyo.SolverFactory("appsi_highs")
    updated = _fixed_model(feeder)
    feeder.set_fixed_injections(updated.feeder, *injections[0])
    solver.solve(updated)
    first_vm = pyo.value(updated.feeder.VmSq[feeder.buses[-1]])
    handles = {b: updated.feeder.PBalance[b] for b in feeder.buses}
    n_cons = updated.nconstraints()
    feeder.set_fixed_injections(updated.feeder, *injections[1])
    solver.solve(updated)
    fresh = _fixed_model(feeder)
    feeder.set_fixed_injections(fresh.feeder, *injections[1])
    pyo.SolverFactory("appsi_highs").solve(fresh)
    assert all(updated.feeder.PBalance[b] is handles[b] for b in feeder.buses)
    assert updated.nconstraints() == n_cons
    assert pyo.value(updated.feeder.VmSq[feeder.buses[-1]]) != pytest.approx(first_vm, abs=1e-4)
    for b in feeder.buses:
        assert pyo.value(updated.feeder.VmSq[b]) == pytest.approx(
            pyo.value(fresh.feeder.VmSq[b]), abs=1e-8
        )
    assert pyo.value(updated.feeder.InterfaceP) == pytest.approx(
        pyo.value(fresh.feeder.InterfaceP), abs=1e-8
    )
    # the pyomo block and the direct solver are the same linear model
    direct = feeder.solve_power_flow(
        *injections[1], operating_point=feeder.base_point, relinearise=0
    )
    assert pyo.value(updated.feeder.InterfaceP) == pytest.approx(direct.interface_p_mw, abs=1e-6)
    vm_block = extract_state(feeder, updated.feeder).vm_pu
    assert np.allclose(vm_block.to_numpy(), direct.vm_pu.loc[vm_block.index].to_numpy(), atol=1e-8)


def _three_bus() -> pp.pandapowerNet:
    """0 --(4+8j ohm)-- 1 --(4+8j ohm)-- 2 at 20 kV, 1 MVA base (Z_base = 400 ohm)."""
    net = pp.create_empty_network(sn_mva=1.0)
    buses = [pp.create_bus(net, vn_kv=20.0) for _ in range(3)]
    pp.create_ext_grid(net, buses[0], vm_pu=1.0)
    for f, t in ((0, 1), (1, 2)):
        pp.create_line_from_parameters(
            net,
            f,
            t,
            length_km=1.0,
            r_ohm_per_km=4.0,
            x_ohm_per_km=8.0,
            c_nf_per_km=0.0,
            max_i_ka=0.4,
        )
    pp.create_load(net, 1, p_mw=1.0, q_mvar=0.5)
    pp.create_load(net, 2, p_mw=2.0, q_mvar=1.0)
    return net


def test_three_bus_by_hand() -> None:
    net = _three_bus()
    feeder = LinDistFlowFeeder(net)
    p_mw, q_mvar = feeder.injections_from_net(net)
    assert p_mw.to_dict() == {0: 0.0, 1: -1.0, 2: -2.0}
    plain = feeder.solve_power_flow(p_mw, q_mvar, relinearise=0)
    # r = 0.01 pu, x = 0.02 pu; w1 = 1 - 2(0.01*3 + 0.02*1.5); w2 = w1 - 2(0.01*2 + 0.02*1)
    assert plain.vm_pu[1] == pytest.approx(math.sqrt(0.88), abs=1e-12)
    assert plain.vm_pu[2] == pytest.approx(math.sqrt(0.80), abs=1e-12)
    assert plain.interface_p_mw == pytest.approx(-3.0, abs=1e-12)
    # iterating the loss linearisation converges to the exact AC solution (radial network)
    exact = feeder.solve_power_flow(p_mw, q_mvar, relinearise=6)
    pp.runpp(net, tolerance_mva=1e-10)
    assert np.allclose(exact.vm_pu.to_numpy(), net.res_bus.vm_pu.to_numpy(), atol=1e-8)
    assert exact.interface_p_mw == pytest.approx(-net.res_ext_grid.p_mw.sum(), abs=1e-8)
    assert exact.losses_p_mw == pytest.approx(net.res_line.pl_mw.sum(), abs=1e-8)


def test_dlmp_includes_marginal_losses() -> None:
    feeder = LinDistFlowFeeder(_three_bus())
    model = _fixed_model(feeder)
    model.obj.deactivate()
    model.cost = pyo.Objective(expr=-50.0 * model.feeder.InterfaceP)
    model.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    feeder.set_fixed_injections(model.feeder, *feeder.injections_from_net(_three_bus()))
    pyo.SolverFactory("appsi_highs").solve(model)
    dlmp = dlmp_usd_per_mwh(model.feeder)
    assert dlmp[0] == pytest.approx(50.0)
    assert 50.0 < dlmp[1] < dlmp[2]


def test_meshed_feeder_is_rejected() -> None:
    net = _three_bus()
    pp.create_line_from_parameters(
        net, 0, 2, length_km=1.0, r_ohm_per_km=4.0, x_ohm_per_km=8.0, c_nf_per_km=0.0, max_i_ka=0.4
    )
    with pytest.raises(MeshedFeederError, match="line"):
        LinDistFlowFeeder(net)


@pytest.mark.parametrize("ext_grid", [0, 1])
def test_mv_oberrhein_with_tap_changers(ext_grid: int) -> None:
    net = pn.mv_oberrhein()
    pp.runpp(net)
    feeder = LinDistFlowFeeder(net, ext_grid=ext_grid)
    assert not np.allclose(feeder.network.tap_p, 1.0)  # off-nominal taps are modelled
    result = feeder.solve_power_flow(*feeder.injections_from_net(net))
    vm_err = (result.vm_pu - net.res_bus.vm_pu.loc[result.vm_pu.index]).abs().max()
    assert vm_err <= VM_TOL_PU
    assert result.interface_p_mw == pytest.approx(-net.res_ext_grid.p_mw.at[ext_grid], rel=P_TOL)


def test_injections_from_net_signs() -> None:
    net = _three_bus()
    pp.create_sgen(net, 2, p_mw=0.5, q_mvar=0.1)
    pp.create_storage(net, 1, p_mw=0.3, max_e_mwh=1.0)  # charging (load-positive)
    pp.create_load(net, 2, p_mw=9.0, in_service=False)
    p_mw, q_mvar = LinDistFlowFeeder(net).injections_from_net(net)
    assert p_mw.to_dict() == pytest.approx({0: 0.0, 1: -1.3, 2: -1.5})
    assert q_mvar.to_dict() == pytest.approx({0: 0.0, 1: -0.5, 2: -0.9})
    assert isinstance(p_mw, pd.Series)
