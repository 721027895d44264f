"""TSO market clearing vs pandapower's own DC-OPF (rundcopp) and a hand-solved 3-bus net."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from gridlayers.market import clear_pandapower

REL_TOL = 1e-4

# (case, {line index: max_loading_percent}, {trafo index: max_loading_percent}).
# Limits are ~70% of the branch's loading in the uncongested rundcopp solution.
CONGESTED = {
    "case9": (pn.case9, {6: 37.7}, {}),
    "case30": (pn.case30, {28: 44.7}, {}),
    "case118": (pn.case118, {6: 3.1}, {0: 2.4}),
}


def _rundcopp(net) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(net)


def _congested(name):
    factory, lines, trafos = CONGESTED[name]
    net = factory()
    for i, lim in lines.items():
        net.line.loc[i, "max_loading_percent"] = lim
    for i, lim in trafos.items():
        net.trafo.loc[i, "max_loading_percent"] = lim
    return net


def _compare(net):
    """Clear with gridlayers and pandapower; return (lmp rel dev, cost rel dev)."""
    ours = clear_pandapower(net)
    _rundcopp(net)
    lam = net.res_bus.lam_p
    lmp_dev = float(np.max(np.abs(ours.lmp_usd_per_mwh - lam) / np.abs(lam)))
    cost_dev = abs(ours.cost_usd_per_h - net.res_cost) / abs(net.res_cost)
    return ours, lmp_dev, cost_dev


@pytest.mark.parametrize("name", list(CONGESTED))
def test_congested_lmps_and_cost_match_rundcopp(name):
    net = _congested(name)
    ours, lmp_dev, cost_dev = _compare(net)
    lam = net.res_bus.lam_p
    # the test is only meaningful if congestion actually binds
    assert lam.max() / lam.min() - 1.0 > 0.01
    at_limit = [(net.res_line.loading_percent[i] >= lim - 1e-3) for i, lim in
                CONGESTED[name][1].items()]
    assert any(at_limit)
    assert lmp_dev < REL_TOL, lmp_dev
    assert cost_dev < REL_TOL, cost_dev
    np.testing.assert_allclose(ours.line_p_mw, net.res_line.p_from_mw, atol=1e-4)
    np.testing.assert_allclose(ours.trafo_p_mw, net.res_trafo.p_hv_mw, atol=1e-4)
    np.testing.assert_allclose(ours.gen_p_mw["gen"], net.res_gen.p_mw, atol=1e-4)
    np.testing.assert_allclose(ours.gen_p_mw["ext_grid"], net.res_ext_grid.p_mw, atol=1e-4)
    assert ours.unserved_mw.abs().max() < 1e-6


@pytest.mark.parametrize("factory", [pn.case9, pn.case30, pn.case118])
def test_uncongested_lmps_and_cost_match_rundcopp(factory):
    net = factory()
    ours, lmp_dev, cost_dev = _compare(net)
    assert lmp_dev < REL_TOL
    assert cost_dev < REL_TOL
    # uncongested and lossless: a single system price
    assert ours.lmp.max() - ours.lmp.min() < 1e-4 * ours.lmp.mean()


def _triangle(limit_02_mw: float = 50.0, load_mw: float = 100.0):
    """3 buses, 3 identical lines; cheap ext_grid at 0 (10 $/MWh), gen at 1 (30 $/MWh),
    load at 2. Line 0-2 limited to ``limit_02_mw``."""
    net = pp.create_empty_network(sn_mva=100.0)
    buses = [pp.create_bus(net, vn_kv=110.0) for _ in range(3)]
    big_i_ka = 10.0
    for f, t in [(0, 1), (1, 2), (0, 2)]:
        i_ka = limit_02_mw / (110.0 * math.sqrt(3)) if (f, t) == (0, 2) else big_i_ka
        pp.create_line_from_parameters(net, buses[f], buses[t], length_km=1.0, r_ohm_per_km=0.0,
                                       x_ohm_per_km=0.4, c_nf_per_km=0.0, max_i_ka=i_ka,
                                       max_loading_percent=100.0)
    pp.create_ext_grid(net, buses[0], min_p_mw=0.0, max_p_mw=200.0)
    pp.create_gen(net, buses[1], p_mw=0.0, min_p_mw=0.0, max_p_mw=200.0, controllable=True)
    pp.create_load(net, buses[2], p_mw=load_mw)
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=10.0)
    pp.create_poly_cost(net, 0, "gen", cp1_eur_per_mw=30.0)
    return net


def test_hand_solved_three_bus_congestion():
    """Hand solution: flow_02 = 2/3 g0 + 1/3 g1 <= 50, g0 + g1 = 100 -> g0 = g1 = 50.

    LMPs: bus 0 = 10, bus 1 = 30; one more MW at bus 2 needs dg0 = -1, dg1 = +2 to keep
    flow_02 at its limit, so LMP_2 = -10 + 2*30 = 50 $/MWh. Cost = 10*50 + 30*50 = 2000 $/h.
    """
    res = clear_pandapower(_triangle())
    np.testing.assert_allclose(res.lmp.to_numpy(), [10.0, 30.0, 50.0], atol=1e-6)
    assert res.cost == pytest.approx(2000.0, abs=1e-6)
    assert res.gen_p_mw["ext_grid"][0] == pytest.approx(50.0, abs=1e-6)
    assert res.gen_p_mw["gen"][0] == pytest.approx(50.0, abs=1e-6)
    assert res.line_p_mw[2] == pytest.approx(50.0, abs=1e-6)  # line 0-2 at its limit


def test_hand_solved_three_bus_uncongested():
    """With line 0-2 at 200 MW everything comes from the 10 $/MWh ext_grid."""
    res = clear_pandapower(_triangle(limit_02_mw=200.0))
    np.testing.assert_allclose(res.lmp.to_numpy(), [10.0, 10.0, 10.0], atol=1e-6)
    assert res.cost == pytest.approx(1000.0, abs=1e-6)
    assert res.line_p_mw[2] == pytest.approx(200.0 / 3.0, abs=1e-6)


def test_unserved_load_priced_at_voll():
    """400 MW capacity but a 500 MW load: 100 MW shed, LMP at the load bus ~ VOLL."""
    res = clear_pandapower(_triangle(limit_02_mw=1000.0, load_mw=500.0), voll_usd_per_mwh=5000.0)
    assert res.unserved_mw[2] == pytest.approx(100.0, abs=1e-4)
    assert res.lmp[2] == pytest.approx(5000.0, rel=1e-3)


def test_phase_shifter_tap_and_shunt_match_rundcopp():
    """Triangle + a phase-shifting, tapped 110/110 kV trafo in parallel to line 0-2, a bus
    shunt and a fixed sgen: exercises shift, tap, GS and non-controllable injections."""
    net = _triangle(limit_02_mw=60.0)
    pp.create_transformer_from_parameters(
        net, 0, 2, sn_mva=40.0, vn_hv_kv=110.0, vn_lv_kv=110.0, vkr_percent=0.1,
        vk_percent=8.0, pfe_kw=0.0, i0_percent=0.0, shift_degree=3.0, tap_side="hv",
        tap_neutral=0, tap_min=-5, tap_max=5, tap_step_percent=1.5, tap_pos=2,
        max_loading_percent=100.0)
    pp.create_shunt(net, 1, q_mvar=0.0, p_mw=4.0)
    pp.create_sgen(net, 2, p_mw=7.0, controllable=False)
    ours, lmp_dev, cost_dev = _compare(net)
    assert net.res_bus.lam_p.max() / net.res_bus.lam_p.min() - 1.0 > 0.01
    assert lmp_dev < REL_TOL
    assert cost_dev < REL_TOL
    np.testing.assert_allclose(ours.trafo_p_mw, net.res_trafo.p_hv_mw, atol=1e-3)
    np.testing.assert_allclose(ours.line_p_mw, net.res_line.p_from_mw, atol=1e-3)
    assert ours.gen_p_mw["sgen"][0] == pytest.approx(7.0)
