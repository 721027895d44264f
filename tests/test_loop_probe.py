"""Flexibility probe (DSOOperator.interface_range) against LinDistFlow and AC power flow."""

from __future__ import annotations

import copy

import pandapower as pp
import pytest

from conftest import rural_feeder_by_voltage
from gridlayers.domain import BidBlock, BidCurve
from gridlayers.dso import DSOOperator
from gridlayers.dso.offer_blocks import device_setpoints

VM_AC_TOL_PU = 0.005

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _battery(p_mw: float) -> BidCurve:
    return BidCurve(-p_mw, (BidBlock(p_mw, 20.0), BidBlock(p_mw, 60.0)))


@pytest.fixture(scope="module")
def feeder_case() -> dict:
    """Rural study-case feeder; a PV plant at the weakest bus, two batteries beside it."""
    case = rural_feeder_by_voltage()
    weak = [int(b) for b in case.pop("vm").index[:3]]
    return {**case, "devices": {"pv": weak[0], "bat0": weak[1], "bat1": weak[2]}}


def _dso(case: dict) -> DSOOperator:
    return DSOOperator(case["feeder"], case["devices"], blocks_per_device=4)


def _ac_vm_max(case: dict, setpoints: dict[str, float]) -> float:
    net = copy.deepcopy(case["net"])
    for dev, bus in case["devices"].items():
        pp.create_sgen(net, bus, p_mw=setpoints[dev], q_mvar=0.0)
    pp.runpp(net)
    return float(net.res_bus.vm_pu.max())


def test_fixed_devices_give_a_point_equal_to_the_linear_flow(feeder_case: dict) -> None:
    dso = _dso(feeder_case)
    setpoints = {"pv": 0.5, "bat0": -0.2, "bat1": 0.1}
    lo, hi = dso.interface_range(
        feeder_case["p"], feeder_case["q"], {d: BidCurve.fixed(v) for d, v in setpoints.items()}
    )
    assert hi - lo == pytest.approx(0.0, abs=1e-6)
    p = feeder_case["p"].copy()
    for dev, bus in feeder_case["devices"].items():
        p.loc[bus] = p.get(bus, 0.0) + setpoints[dev]
    flow = feeder_case["feeder"].solve_power_flow(
        p, feeder_case["q"], operating_point=dso.operating_point, relinearise=0
    )
    assert lo == pytest.approx(flow.interface_p_mw, abs=1e-6)


def test_uncongested_range_is_the_offered_range_up_to_losses(feeder_case: dict) -> None:
    dso = _dso(feeder_case)
    offers = {"pv": BidCurve.fixed(0.0), "bat0": _battery(0.3), "bat1": _battery(0.3)}
    lo, hi = dso.interface_range(feeder_case["p"], feeder_case["q"], offers)
    assert hi - lo == pytest.approx(1.2, rel=0.03)  # delivery factors near 1


def test_congested_range_is_narrower_and_its_extreme_holds_in_ac(feeder_case: dict) -> None:
    """6 MW PV held at the weakest bus leaves the batteries less than half their range."""
    dso = _dso(feeder_case)
    offers = {"pv": BidCurve.fixed(0.0), "bat0": _battery(3.0), "bat1": _battery(3.0)}
    lo, hi = dso.interface_range(feeder_case["p"], feeder_case["q"], offers)
    free = hi - lo
    offers["pv"] = BidCurve.fixed(6.0)
    lo, hi = dso.interface_range(feeder_case["p"], feeder_case["q"], offers)
    assert hi - lo < 0.5 * free
    max_export = device_setpoints(dso.model)  # the LP solved last: maximum export
    assert max_export["pv"] == pytest.approx(6.0)
    assert _ac_vm_max(feeder_case, max_export) <= 1.05 + VM_AC_TOL_PU
