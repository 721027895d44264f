"""The bundled transmission calibration: realistic prices, congestion that binds sometimes,
and the calibrated net cleared exactly as pandapower's rundcopp clears it.

Each bundled scenario's net is built as a run builds it (``transmission_network`` of the
scenario's transmission section, bulk loads = ``p_mw * scaling`` times ``load_scale``) and
its 96 intervals are cleared with the scenario's ``cost_segments``. The uncalibrated case
fails the same checks (``test_uncalibrated_case_fails_the_checks``).
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from conftest import REPO, write_scenario
from gridlayers.grid.calibration import meshed_branches, read_technology_table
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.market import TransmissionMarket
from gridlayers.scenarios import ScenarioError, load_scenario

SCENARIOS = ("default", "congested")
#: Realistic mean interface LMP ($/MWh) over the day.
MEAN_LMP_RANGE = (20.0, 80.0)
#: Interface LMP spread ($/MWh) that counts as "LMPs differ between LDAs".
SPREAD_USD_PER_MWH = 1.0
#: Relative LMP tolerance against rundcopp (measured: ~1e-8).
RUNDCOPP_REL_TOL = 1e-6


@dataclass(frozen=True)
class DayResult:
    net: pp.pandapowerNet
    load_mw: np.ndarray  # (96, n_load) bulk load per interval
    interface_lmp: np.ndarray  # (96, n_lda) $/MWh
    binding: list[list[str]]  # branches at their limit per interval


def _branch_limits_mw(net: pp.pandapowerNet) -> tuple[np.ndarray, np.ndarray]:
    line, trafo = net.line, net.trafo
    vn = net.bus.vn_kv.loc[line.from_bus].to_numpy()
    line_mw = (
        line.max_loading_percent / 100 * line.max_i_ka * line.df * line.parallel * vn * math.sqrt(3)
    ).to_numpy()
    trafo_mw = (
        trafo.max_loading_percent / 100 * trafo.sn_mva * trafo.df * trafo.parallel
    ).to_numpy()
    return line_mw, trafo_mw


def _clear_day(
    net: pp.pandapowerNet, scale: np.ndarray, buses: list[int], cost_segments: int | None
) -> DayResult:
    market = TransmissionMarket(net, cost_segments=cost_segments)
    base = (net.load.p_mw * net.load.scaling).to_numpy()
    line_mw, trafo_mw = _branch_limits_mw(net)
    lmps, binding = [], []
    for factor in scale:
        res = market.clear(load_p_mw=base * factor)
        assert res.unserved_mw.sum() < 1e-6
        lmps.append(res.lmp.loc[buses].to_numpy())
        lines = np.flatnonzero(np.abs(res.line_p_mw) >= line_mw - 1e-4)
        trafos = np.flatnonzero(np.abs(res.trafo_p_mw) >= trafo_mw - 1e-4)
        at_limit = [f"line {i}" for i in lines] + [f"trafo {i}" for i in trafos]
        binding.append(at_limit)
    return DayResult(net, np.outer(scale, base), np.array(lmps), binding)


#: Cleared days per distinct (transmission, horizon, interface buses): the bundled
#: scenarios share their transmission section, so the day is cleared once.
_DAYS: dict[tuple[str, str, tuple[int, ...]], DayResult] = {}


def _bundled(name: str) -> DayResult:
    scenario = load_scenario(REPO / "scenarios" / f"{name}.yaml")
    tr = scenario.transmission
    buses = tuple(lda.interface_bus for lda in scenario.ldas)
    key = (tr.model_dump_json(), scenario.horizon.model_dump_json(), buses)
    if key not in _DAYS:
        scale = load_scale(tr.load_profile, scenario.horizon)
        _DAYS[key] = _clear_day(transmission_network(tr), scale, list(buses), tr.cost_segments)
    return _DAYS[key]


def _congested(day: DayResult) -> np.ndarray:
    """Intervals with a branch at its limit and interface LMPs more than 1 $/MWh apart."""
    spread = np.ptp(day.interface_lmp, axis=1)
    return np.array([bool(b) for b in day.binding]) & (spread > SPREAD_USD_PER_MWH)


@pytest.mark.parametrize("name", SCENARIOS)
def test_mean_interface_lmp_is_realistic(name: str) -> None:
    means = _bundled(name).interface_lmp.mean(axis=0)
    assert np.all((means >= MEAN_LMP_RANGE[0]) & (means <= MEAN_LMP_RANGE[1])), means


@pytest.mark.parametrize("name", SCENARIOS)
def test_congestion_binds_in_some_but_not_all_intervals(name: str) -> None:
    day = _bundled(name)
    congested = _congested(day)
    assert 0 < congested.sum() < len(congested)
    assert not all(day.binding)  # some intervals are uncongested
    # where it binds, the LDAs see prices several $/MWh apart
    assert np.ptp(day.interface_lmp, axis=1).max() > 5.0


@pytest.mark.parametrize("name", SCENARIOS)
def test_congested_interval_matches_rundcopp(name: str) -> None:
    """Exact quadratic costs (cost_segments=None) against pandapower on the calibrated net."""
    day = _bundled(name)
    k = int(np.argmax(np.where(_congested(day), np.ptp(day.interface_lmp, axis=1), -1.0)))
    net = day.net
    ours = TransmissionMarket(net, cost_segments=None).clear(load_p_mw=day.load_mw[k])
    ref = copy.deepcopy(net)
    ref.load["p_mw"] = day.load_mw[k] / ref.load.scaling.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(ref)
    lam = ref.res_bus.lam_p
    assert np.ptp(lam) > 5.0  # congested in pandapower's solution too
    np.testing.assert_allclose(ours.lmp, lam, rtol=RUNDCOPP_REL_TOL)
    assert ours.cost == pytest.approx(ref.res_cost, rel=RUNDCOPP_REL_TOL)
    np.testing.assert_allclose(ours.line_p_mw, ref.res_line.p_from_mw, atol=1e-4)
    line_mw, _ = _branch_limits_mw(net)
    assert np.any(np.abs(ref.res_line.p_from_mw) >= line_mw - 1e-4)


def test_uncalibrated_case_fails_the_checks() -> None:
    """The same checks on the case as shipped: ~5.7 $/MWh and no congestion."""
    scenario = load_scenario(REPO / "scenarios" / "default.yaml")
    raw = scenario.transmission.model_copy(
        update={
            "load_scaling": 1.0,
            "generator_technologies": None,
            "marginal_cost_usd_per_mwh": None,
            "availability": None,
            "meshed_branch_rating_factor": 1.0,
        }
    )
    scale = load_scale(raw.load_profile, scenario.horizon)
    buses = [lda.interface_bus for lda in scenario.ldas]
    day = _clear_day(transmission_network(raw), scale, buses, raw.cost_segments)
    assert day.interface_lmp.mean() < MEAN_LMP_RANGE[0]
    assert not _congested(day).any()


def test_calibration_edits_the_net() -> None:
    scenario = load_scenario(REPO / "scenarios" / "default.yaml")
    tr = scenario.transmission
    net = transmission_network(tr)
    raw = transmission_network(
        tr.model_copy(
            update={
                "load_scaling": 1.0,
                "generator_technologies": None,
                "marginal_cost_usd_per_mwh": None,
                "availability": None,
                "meshed_branch_rating_factor": 1.0,
            }
        )
    )
    np.testing.assert_allclose(net.load.scaling, tr.load_scaling * raw.load.scaling)
    table = read_technology_table(tr.generator_technologies)
    poly = net.poly_cost.set_index(["et", "element"])
    for row in table.itertuples(index=False):
        cp1 = poly.loc[(row.element, row.index), "cp1_eur_per_mw"]
        assert cp1 == tr.marginal_cost_usd_per_mwh[row.technology]
        factor = tr.availability.get(row.technology, 1.0)
        assert net[row.element].max_p_mw[row.index] == pytest.approx(
            factor * raw[row.element].max_p_mw[row.index]
        )
    assert (net.poly_cost.cp2_eur_per_mw2 == raw.poly_cost.cp2_eur_per_mw2).all()
    lines, trafos = meshed_branches(raw)
    ratio = net.line.max_loading_percent / raw.line.max_loading_percent
    np.testing.assert_allclose(ratio[lines], tr.meshed_branch_rating_factor)
    assert (ratio.drop(lines) == 1.0).all()  # radial load taps keep their rating
    trafo_ratio = net.trafo.max_loading_percent / raw.trafo.max_loading_percent
    assert (trafo_ratio.drop(trafos) == 1.0).all()  # e.g. generator step-ups
    assert 63 not in trafos  # the nuclear unit's step-up transformer is radial


# (transmission edit, field named in the error, words in the message)
BAD = [
    ({"availability": {"wind": 1.5}}, "transmission.availability", "between 0 and 1"),
    (
        {"marginal_cost_usd_per_mwh": {"coal": 20.0}},
        "transmission.marginal_cost_usd_per_mwh",
        "no marginal cost",
    ),
    ({"availability": {"hydro": 0.5}}, "transmission.availability", "not in"),
    ({"generator_technologies": "nowhere"}, "transmission.generator_technologies", "bundled"),
    ({"generator_technologies": "missing.csv"}, "transmission.generator_technologies", "not found"),
    (
        {"generator_technologies": None},
        "transmission.marginal_cost_usd_per_mwh",
        "needs generator_technologies",
    ),
    ({"load_scaling": 0}, "transmission.load_scaling", "greater than"),
    (
        {"meshed_branch_rating_factor": -1},
        "transmission.meshed_branch_rating_factor",
        "greater than",
    ),
]


@pytest.mark.parametrize(("edit", "field", "words"), BAD)
def test_invalid_calibration_is_a_scenario_error(
    tmp_path: Path, default_data: dict, edit: dict, field: str, words: str
) -> None:
    default_data["transmission"].update(edit)
    file = write_scenario(tmp_path, default_data)
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert info.value.field == field
    assert words in str(info.value)


def test_user_technology_table_is_read_relative_to_the_scenario(
    tmp_path: Path, default_data: dict
) -> None:
    bundled = read_technology_table("activsg200")
    (tmp_path / "tech").mkdir()
    bundled[["element", "index", "technology"]].to_csv(tmp_path / "tech" / "t.csv", index=False)
    default_data["transmission"]["generator_technologies"] = "tech/t.csv"
    scenario = load_scenario(write_scenario(tmp_path, default_data))
    assert scenario.transmission.generator_technologies == str(tmp_path / "tech" / "t.csv")
    net = transmission_network(scenario.transmission)
    assert net.poly_cost.cp1_eur_per_mw.max() == pytest.approx(35.57)


def test_table_for_another_case_is_rejected() -> None:
    scenario = load_scenario(REPO / "scenarios" / "default.yaml")
    other = scenario.transmission.model_copy(update={"case": "case118"})
    with pytest.raises(ValueError, match="activsg200"):
        transmission_network(other)
