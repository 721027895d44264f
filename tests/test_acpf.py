"""The lean AC power flow against pandapower's runpp, away from its set-up point.

Each solver is set up once on the profile of 00:00 and then solves other intervals,
with PV tripled and a battery-like storage element, warm-started from the previous
interval, as the feeder simulator uses it. pandapower solves each case from
scratch with a tight tolerance.
"""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandapower as pp
import pytest

from gridlayers.grid import Feeder, feeder_profiles
from gridlayers.grid.acpf import ACPowerFlow, UnsupportedNetwork
from gridlayers.grid.networks import simbench_feeder
from gridlayers.scenarios.schema import FeederConfig, HorizonConfig, LimitsConfig

DAY = HorizonConfig(start=dt.datetime(2016, 6, 1), intervals=96, interval_min=15)
#: The bundled scenarios' MV feeders and one LV feeder of each kind.
CODES = [
    "1-MV-rural--0-sw",
    "1-MV-semiurb--0-sw",
    "1-MV-urban--0-sw",
    "1-LV-rural1--0-sw",
    "1-LV-semiurb4--0-sw",
    "1-LV-urban6--0-sw",
]


def _varied(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """Add a storage unit at the last bus, double a transformer, drop a line."""
    net.trafo.at[net.trafo.index[0], "parallel"] = 2
    pp.create_storage(net, bus=net.bus.index[-1], p_mw=0.0, max_e_mwh=1.0, q_mvar=0.01)
    meshed = net.line.index[net.line.in_service][-1]
    net.line.at[meshed, "in_service"] = False
    return net


@pytest.mark.parametrize("code", CODES)
def test_lean_power_flow_matches_runpp_away_from_its_setup_point(code: str) -> None:
    net, _ = simbench_feeder(code)
    net = _varied(net)
    prof = feeder_profiles(net, FeederConfig(simbench=code), DAY)
    lean = ACPowerFlow(copy.deepcopy(net))
    ref = copy.deepcopy(net)
    storage_mw = 0.05 if "MV" in code else 0.005
    checked = 0
    for k in range(3, 96, 9):
        lp = prof.load_p_mw.iloc[k].to_numpy()
        lq = prof.load_q_mvar.iloc[k].to_numpy()
        sg = prof.sgen_p_mw.iloc[k].to_numpy() * 3.0
        st = np.array([storage_mw * (-1) ** k])
        sol = lean.solve(lp, lq, sg, st)
        ref.load["p_mw"], ref.load["q_mvar"], ref.sgen["p_mw"] = lp, lq, sg
        ref.storage["p_mw"] = st
        pp.runpp(ref, tolerance_mva=1e-10, init="dc")
        assert sol.converged
        np.testing.assert_allclose(sol.vm_pu, ref.res_bus.vm_pu, atol=1e-8)
        np.testing.assert_allclose(sol.va_degree, ref.res_bus.va_degree, atol=1e-6)
        assert sol.ext_grid_p_mw == pytest.approx(ref.res_ext_grid.p_mw.iloc[0], abs=1e-8)
        assert sol.ext_grid_q_mvar == pytest.approx(ref.res_ext_grid.q_mvar.iloc[0], abs=1e-8)
        np.testing.assert_allclose(
            sol.line_loading_percent, ref.res_line.loading_percent, atol=1e-5
        )
        np.testing.assert_allclose(
            sol.trafo_loading_percent, ref.res_trafo.loading_percent, atol=1e-5
        )
        np.testing.assert_allclose(sol.line_pl_mw, ref.res_line.pl_mw, atol=1e-9)
        np.testing.assert_allclose(sol.trafo_pl_mw, ref.res_trafo.pl_mw, atol=1e-9)
        # flows sum the mismatch (up to 1e-9 MVA per bus) of the buses they feed
        np.testing.assert_allclose(sol.line_p_from_mw, ref.res_line.p_from_mw, atol=1e-7)
        np.testing.assert_allclose(sol.line_q_from_mvar, ref.res_line.q_from_mvar, atol=1e-7)
        np.testing.assert_allclose(sol.trafo_p_hv_mw, ref.res_trafo.p_hv_mw, atol=1e-7)
        np.testing.assert_allclose(sol.trafo_q_hv_mvar, ref.res_trafo.q_hv_mvar, atol=1e-7)
        checked += 1
    assert checked == 11


def test_voltage_controlled_generator_is_refused_and_the_feeder_falls_back() -> None:
    net, _ = simbench_feeder(CODES[0])
    pp.create_gen(net, bus=net.bus.index[-1], p_mw=0.5, vm_pu=1.01)
    with pytest.raises(UnsupportedNetwork, match="gen"):
        ACPowerFlow(copy.deepcopy(net))
    feeder = Feeder(net, LimitsConfig())  # falls back to runpp, same answers
    result = feeder.run(net.load.p_mw, net.load.q_mvar, net.sgen.p_mw)
    ref = copy.deepcopy(net)
    pp.runpp(ref)
    assert result.converged
    assert result.vm_pu.loc[net.gen.bus.iloc[0]] == pytest.approx(1.01, abs=1e-9)
    assert result.p_import_mw == pytest.approx(ref.res_ext_grid.p_mw.iloc[0], abs=1e-7)


def test_backends_agree_on_a_feeder_run() -> None:
    net, _ = simbench_feeder(CODES[2])
    prof = feeder_profiles(net, FeederConfig(simbench=CODES[2], sgen_scaling=4.0), DAY)
    lean, classic = Feeder(net, LimitsConfig()), Feeder(net, LimitsConfig(), "pandapower")
    for k in (10, 50, 52, 90):
        args = (prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k])
        a, b = lean.run(*args), classic.run(*args)
        assert a.voltage_violations == b.voltage_violations
        assert a.thermal_violations == b.thermal_violations
        assert a.max_loading_percent == pytest.approx(b.max_loading_percent, abs=1e-5)
        assert a.vm_max_pu == pytest.approx(b.vm_max_pu, abs=1e-8)
        assert a.losses_mw == pytest.approx(b.losses_mw, abs=1e-8)
        for flow in ("line_p_from_mw", "line_q_from_mvar", "trafo_p_hv_mw", "trafo_q_hv_mvar"):
            np.testing.assert_allclose(getattr(a, flow), getattr(b, flow), atol=1e-8)
    with pytest.raises(ValueError, match="backend"):
        Feeder(net, LimitsConfig(), "fast")
