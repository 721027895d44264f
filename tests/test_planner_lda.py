"""LDA/DER extension: hand-computed optima with a binding interface."""

from __future__ import annotations

import pytest

from conftest import simple_config
from gridlayers.planner import (
    InterfaceConfig,
    LDAConfig,
    LDAExtensionConfig,
    LDAOperationalParams,
    PlannerConfig,
    build_model,
    solve_model,
    with_lda_operational,
)
from gridlayers.planner.config import DERBatteryConfig, DERPVConfig, capital_recovery_factor
from gridlayers.planner.lda import update_operational
from gridlayers.planner.report import summarize_model
from gridlayers.planner.toy import toy_inputs

DAYS_PER_YEAR = 365.0
LOSS = 0.1
GRID_COST = 100.0  # $/MWh of the only transmission-level unit


def lda_config(upgrade_max_mw: float = 0.0, adder: float = 0.0) -> PlannerConfig:
    lda = LDAConfig(
        name="feeder1",
        zone="Z",
        load_share=1.0,
        interface=InterfaceConfig(
            capacity_mw=60.0,
            upgrade_max_mw=upgrade_max_mw,
            upgrade_capex_usd_per_mw=1e5,
            life_years=40,
        ),
        pv=DERPVConfig(capex_usd_per_mw=1e6, fom_usd_per_mw_yr=0.0),
        battery=DERBatteryConfig(power_capex_usd_per_mw=1e9),
        financing_rate=0.08,
        der_life_years=25,
        operational=LDAOperationalParams(loss_factor=LOSS, operating_cost_adder_usd_per_mwh=adder),
    )
    return simple_config(lda=LDAExtensionConfig(ldas=[lda]))


def lda_inputs():  # noqa: ANN201
    """One zone, one hour: 100 MW load, all inside the LDA; PV availability 1.0."""
    return toy_inputs(
        demand_mw={"Z": [100.0]},
        units=[{"zone": "Z", "pmax_mw": 1000.0, "cost_usd_per_mwh": GRID_COST}],
        cf_pv=[1.0],
    )


def solve(config: PlannerConfig):  # noqa: ANN201
    inputs = lda_inputs()
    m = build_model(inputs, config)
    res = solve_model(m, mip_gap=config.mip_gap)
    return m, res, summarize_model(m, inputs, config)


@pytest.mark.parametrize("adder", [0.0, 5.0])
def test_der_pv_fills_gap_when_interface_binds(adder: float) -> None:
    # Import capped at 60 MW delivers 60 * (1 - 0.1) = 54 MW; PV must cover 46 MW.
    # PV annuity (8%, 25 y) 93,679 $/MW-yr > grid 365 * 100 / 0.9 = 40,556 $/MW-yr,
    # so the interface binds and PV is exactly the residual.
    crf_der = capital_recovery_factor(0.08, 25)
    pv_mw = 100.0 - 60.0 * (1.0 - LOSS)
    expected = DAYS_PER_YEAR * 60.0 * (GRID_COST + adder) + crf_der * 1e6 * pv_mw
    m, res, summary = solve(lda_config(adder=adder))
    assert res.objective == pytest.approx(expected, rel=1e-7)
    out = summary["ldas"]["feeder1"]
    assert out["der_pv_mw"] == pytest.approx(pv_mw, rel=1e-7)
    assert out["interface_peak_import_mw"] == pytest.approx(60.0, rel=1e-7)
    assert out["interface_upgrade_mw"] == pytest.approx(0.0, abs=1e-7)


def test_interface_upgrade_beats_der_when_cheap() -> None:
    # Upgrade annuity (5%, 40 y) on 1e5 $/MW = 5,828 $/MW-yr; delivered energy then
    # costs (5,828 + 36,500) / 0.9 = 47,031 $/MW-yr < PV 93,679: upgrade, no PV.
    crf_if = capital_recovery_factor(0.05, 40)
    upgrade = 100.0 / (1.0 - LOSS) - 60.0
    expected = DAYS_PER_YEAR * GRID_COST * 100.0 / (1.0 - LOSS) + crf_if * 1e5 * upgrade
    _m, res, summary = solve(lda_config(upgrade_max_mw=200.0))
    assert res.objective == pytest.approx(expected, rel=1e-7)
    out = summary["ldas"]["feeder1"]
    assert out["der_pv_mw"] == pytest.approx(0.0, abs=1e-6)
    assert out["interface_upgrade_mw"] == pytest.approx(upgrade, rel=1e-7)


def test_operational_params_replace_and_update_in_place() -> None:
    config = lda_config()
    new = LDAOperationalParams(
        loss_factor=0.2, operating_cost_adder_usd_per_mwh=0.0, flex_availability_by_hour=[0.5] * 24
    )
    replanned = with_lda_operational(config, {"feeder1": new})
    assert replanned.lda.ldas[0].operational.loss_factor == 0.2
    assert config.lda.ldas[0].operational.loss_factor == LOSS  # original untouched
    crf_der = capital_recovery_factor(0.08, 25)
    expected = DAYS_PER_YEAR * 60.0 * GRID_COST + crf_der * 1e6 * (100.0 - 60.0 * 0.8)
    _m, res, _s = solve(replanned)
    assert res.objective == pytest.approx(expected, rel=1e-7)
    # The same change applied to a built model (mutable params) gives the same optimum.
    inputs = lda_inputs()
    m = build_model(inputs, config)
    update_operational(m, {"feeder1": new})
    assert solve_model(m, mip_gap=1e-9).objective == pytest.approx(expected, rel=1e-7)


def test_operational_params_validate_hours() -> None:
    with pytest.raises(ValueError, match="24 values"):
        LDAOperationalParams(flex_availability_by_hour=[1.0] * 23)
