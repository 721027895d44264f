"""The feeder simulator core against a direct pandapower.runpp on the same inputs."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandapower as pp
import pandapower.toolbox as tb
import pytest
import simbench as sb

from gridlayers.grid import Feeder, feeder_profiles
from gridlayers.grid.networks import simbench_feeder
from gridlayers.grid.profiles import window
from gridlayers.scenarios.schema import FeederConfig, HorizonConfig, LimitsConfig

CODES = ["1-MV-rural--0-sw", "1-MV-semiurb--0-sw", "1-MV-urban--0-sw"]
DAY = HorizonConfig(start=dt.datetime(2016, 6, 1), intervals=96, interval_min=15)


def _direct(net: pp.pandapowerNet, prof, k: int) -> pp.pandapowerNet:
    ref = copy.deepcopy(net)
    ref.load["p_mw"] = prof.load_p_mw.iloc[k].to_numpy()
    ref.load["q_mvar"] = prof.load_q_mvar.iloc[k].to_numpy()
    ref.sgen["p_mw"] = prof.sgen_p_mw.iloc[k].to_numpy()
    pp.runpp(ref)
    return ref


@pytest.mark.parametrize("code", CODES)
def test_feeder_equals_direct_runpp_over_a_day(code: str) -> None:
    net, _ = simbench_feeder(code)
    prof = feeder_profiles(net, FeederConfig(simbench=code), DAY)
    feeder = Feeder(net, LimitsConfig())
    for k in range(0, 96, 7):  # recycled, warm-started runs between checks
        result = feeder.run(
            prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k]
        )
        ref = _direct(net, prof, k)
        assert result.converged
        np.testing.assert_allclose(result.vm_pu, ref.res_bus.vm_pu, atol=1e-8)
        np.testing.assert_allclose(
            result.line_loading_percent, ref.res_line.loading_percent, atol=1e-6
        )
        assert result.p_import_mw == pytest.approx(ref.res_ext_grid.p_mw.iloc[0], abs=1e-7)
        assert result.q_import_mvar == pytest.approx(ref.res_ext_grid.q_mvar.iloc[0], abs=1e-7)
        losses = ref.res_line.pl_mw.sum() + ref.res_trafo.pl_mw.sum()
        assert result.losses_mw == pytest.approx(losses, abs=1e-9)
        # energy balance of the realised interval: import = load - generation + losses
        balance = ref.load.p_mw.sum() - ref.sgen.p_mw.sum() + losses
        assert result.p_import_mw == pytest.approx(balance, abs=1e-6)


def test_violation_counts_match_pandapower_toolbox() -> None:
    net, _ = simbench_feeder(CODES[0])
    prof = feeder_profiles(net, FeederConfig(simbench=CODES[0], sgen_scaling=6.0), DAY)
    limits = LimitsConfig(vm_min_pu=0.98, vm_max_pu=1.03, max_loading_percent=40.0)
    feeder = Feeder(net, limits)
    k = 52  # 13:00, high PV
    result = feeder.run(prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k])
    ref = _direct(net, prof, k)
    expected_v = len(tb.violated_buses(ref, limits.vm_min_pu, limits.vm_max_pu))
    expected_t = len(tb.overloaded_lines(ref, limits.max_loading_percent)) + int(
        (ref.res_trafo.loading_percent > limits.max_loading_percent).sum()
    )
    assert result.voltage_violations == expected_v > 0
    assert result.thermal_violations == expected_t > 0


def test_nonconvergence_is_flagged_and_the_run_continues() -> None:
    net, _ = simbench_feeder(CODES[0])
    prof = feeder_profiles(net, FeederConfig(simbench=CODES[0]), DAY)
    feeder = Feeder(net, LimitsConfig())
    ok = feeder.run(prof.load_p_mw.iloc[0], prof.load_q_mvar.iloc[0], prof.sgen_p_mw.iloc[0])
    absurd = prof.load_p_mw.iloc[0] * 400.0  # far beyond the feeder's voltage collapse point
    bad = feeder.run(absurd, prof.load_q_mvar.iloc[0], prof.sgen_p_mw.iloc[0])
    assert ok.converged
    assert not bad.converged
    assert bad.retried
    assert np.isnan(bad.vm_min_pu)
    assert bad.vm_pu.isna().all()
    lossless = absurd.sum() - prof.sgen_p_mw.iloc[0].sum()
    assert bad.p_import_mw == pytest.approx(lossless)
    again = feeder.run(prof.load_p_mw.iloc[1], prof.load_q_mvar.iloc[1], prof.sgen_p_mw.iloc[1])
    ref = _direct(net, prof, 1)
    assert again.converged
    assert again.p_import_mw == pytest.approx(ref.res_ext_grid.p_mw.iloc[0], abs=1e-7)


def test_simbench_profiles_match_simbench_absolute_values() -> None:
    code = CODES[1]
    raw = sb.get_simbench_net(code)
    absolute = sb.get_absolute_values(raw, profiles_instead_of_study_cases=True)
    net, _ = simbench_feeder(code)
    prof = feeder_profiles(net, FeederConfig(simbench=code, load_scaling=1.5), DAY)
    first = (dt.datetime(2016, 6, 1) - dt.datetime(2016, 1, 1)).days * 96
    np.testing.assert_allclose(
        prof.load_p_mw.to_numpy(),
        1.5 * absolute[("load", "p_mw")].iloc[first : first + 96].to_numpy(),
    )
    np.testing.assert_allclose(
        prof.sgen_p_mw.to_numpy(), absolute[("sgen", "p_mw")].iloc[first : first + 96].to_numpy()
    )


def test_window_resamples_and_wraps() -> None:
    year = np.arange(35136, dtype=float)
    hourly = HorizonConfig(start=dt.datetime(2016, 1, 1, 1), intervals=3, interval_min=60)
    np.testing.assert_allclose(window(year, hourly), [5.5, 9.5, 13.5])  # mean of 4 quarter-hours
    five = HorizonConfig(start=dt.datetime(2016, 1, 1), intervals=4, interval_min=5)
    np.testing.assert_allclose(window(year, five), [0, 0, 0, 1])
    end = HorizonConfig(start=dt.datetime(2016, 12, 31, 23, 30), intervals=3, interval_min=15)
    np.testing.assert_allclose(window(year, end), [35134, 35135, 0])
