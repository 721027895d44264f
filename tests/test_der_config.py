"""DER config: penetration rules on a SimBench MV feeder, determinism, validation."""

from __future__ import annotations

import math

import pydantic
import pytest
import yaml

from gridlayers.der import (
    Battery,
    DERConfig,
    EVFleet,
    FlexibleLoad,
    PVPlant,
    build_devices,
    conditions_from_profiles,
    peak_load_from_net,
)

CONFIG_YAML = """
id_prefix: "lda1/"
strategy: truthful
devices:
  - {type: pv, id: pv_park, bus: 3, rated_mw: 2.0, profile: PV3}
  - {type: battery, bus: 3, power_mw: 1.0, energy_mwh: 2.0, initial_soc_pu: 0.3}
penetration:
  - {type: pv, share_of_load_buses: 0.4, kw_per_kw_peak_load: 1.2}
  - {type: battery, share_of_load_buses: 0.2, kw_per_kw_peak_load: 0.5, hours: 2}
  - {type: flexible_load, share_of_load_buses: 0.3, share_of_bus_load: 0.2,
     shift_kw_per_kw_peak_load: 0.1, shift_hours: 3}
  - {type: ev_fleet, share_of_load_buses: 0.25, vehicles_per_mw_peak_load: 40, charger_kw: 7.4}
"""


@pytest.fixture(scope="module")
def net():
    simbench = pytest.importorskip("simbench")
    return simbench.get_simbench_net("1-MV-rural--0-sw")


@pytest.fixture(scope="module")
def config():
    return DERConfig.model_validate(yaml.safe_load(CONFIG_YAML))


def test_rules_place_right_share_and_size(net, config):
    peaks = {b: 1.5 * p for b, p in peak_load_from_net(net).items()}
    devices = build_devices(config, net, peaks, seed=3)
    load_buses = sorted(b for b, p in peaks.items() if p > 0)
    n = len(load_buses)
    by_rule = {}
    for d in devices[2:]:
        rule = int(d.device_id.split("_bus")[0].rsplit("_", 1)[1])
        by_rule.setdefault(rule, []).append(d)
    kinds = {0: PVPlant, 1: Battery, 2: FlexibleLoad, 3: EVFleet}
    for i, rule in enumerate(config.penetration):
        placed = by_rule.get(i, [])
        assert len(placed) == math.floor(rule.share_of_load_buses * n + 0.5)
        assert len({d.bus for d in placed}) == len(placed)
        assert all(isinstance(d, kinds[i]) and d.bus in load_buses for d in placed)
    for d in by_rule[0]:
        assert d.params.rated_mw == pytest.approx(1.2 * peaks[d.bus])
    for d in by_rule[1]:
        assert d.params.power_mw == pytest.approx(0.5 * peaks[d.bus])
        assert d.params.energy_mwh == pytest.approx(2 * 0.5 * peaks[d.bus])
    for d in by_rule[2]:
        assert d.params.shift_up_max_mw == pytest.approx(0.1 * peaks[d.bus])
        assert d.params.shift_energy_max_mwh == pytest.approx(0.3 * peaks[d.bus])
    for d in by_rule[3]:
        assert d.params.n_vehicles == max(1, round(40 * peaks[d.bus]))
        assert d.sessions.charger_mw[0] == pytest.approx(0.0074)
    pv_park, bat = devices[:2]
    assert pv_park.device_id == "pv_park"
    assert pv_park.params.rated_mw == 2.0
    assert bat.device_id == "lda1/battery_dev1_bus3"
    assert bat.soc_pu == pytest.approx(0.3)


def test_devices_per_bus_splits_each_bus_sizing_and_keeps_totals(net, config):
    one = build_devices(config, net, seed=3)
    data = config.model_dump()
    for rule in data["penetration"]:
        rule["devices_per_bus"] = 4
    four = build_devices(DERConfig.model_validate(data), net, seed=3)
    ruled = [d for d in one if "_bus" in d.device_id and "_dev" not in d.device_id]
    assert len(four) == len(one) + 3 * len(ruled)
    assert len({d.device_id for d in four}) == len(four)
    assert {d.device_id for d in one} <= {d.device_id for d in four}  # N=1 ids unchanged

    def total(devices, kind, field):
        return sum(getattr(d.params, field) for d in devices if isinstance(d, kind))

    for kind, field in [
        (PVPlant, "rated_mw"),
        (Battery, "power_mw"),
        (Battery, "energy_mwh"),
        (FlexibleLoad, "shift_up_max_mw"),
        (FlexibleLoad, "share_of_bus_load"),
    ]:
        assert total(four, kind, field) == pytest.approx(total(one, kind, field)), (kind, field)
    buses = {d.bus for d in one if isinstance(d, PVPlant) and d in ruled}
    assert buses == {d.bus for d in four if isinstance(d, PVPlant) and "_bus" in d.device_id}


def test_same_seed_same_devices(net, config):
    def fingerprint(devs):
        return [(d.device_id, d.bus, repr(d.params)) for d in devs]

    a = build_devices(config, net, seed=11)
    b = build_devices(config, net, seed=11)
    c = build_devices(config, net, seed=12)
    assert fingerprint(a) == fingerprint(b)
    evs_a = [d for d in a if isinstance(d, EVFleet)]
    evs_b = [d for d in b if isinstance(d, EVFleet)]
    assert all(
        (x.sessions.arrival_min == y.sessions.arrival_min).all()
        for x, y in zip(evs_a, evs_b, strict=True)
    )
    assert fingerprint(a) != fingerprint(c)


def test_conditions_from_profiles(net, config):
    devices = build_devices(config, net, seed=1)
    loads = {b: 2.0 for b in net.bus.index}
    cond = conditions_from_profiles(devices, {"PV3": 0.5}, loads)
    for d in devices:
        if isinstance(d, PVPlant):
            assert cond[d.device_id].pv_available_pu == 0.5
        if isinstance(d, FlexibleLoad):
            assert cond[d.device_id].load_baseline_mw == pytest.approx(0.4)


def test_validation_errors(net):
    with pytest.raises(pydantic.ValidationError):
        DERConfig.model_validate(
            {
                "penetration": [
                    {
                        "type": "pv",
                        "share_of_load_buses": 0.4,
                        "kw_per_kw_peak_load": 1,
                        "colour": "red",
                    }
                ]
            }
        )
    with pytest.raises(pydantic.ValidationError):
        DERConfig.model_validate({"penetration": [{"type": "wind", "share_of_load_buses": 0.4}]})
    with pytest.raises(pydantic.ValidationError):
        DERConfig.model_validate({"strategy": "greedy"})
    with pytest.raises(pydantic.ValidationError):
        DERConfig.model_validate(
            {
                "devices": [
                    {
                        "type": "battery",
                        "bus": 1,
                        "power_mw": 1,
                        "energy_mwh": 1,
                        "initial_soc_pu": 0.95,
                    }
                ]
            }
        )
    bad_bus = DERConfig.model_validate({"devices": [{"type": "pv", "bus": 99999, "rated_mw": 1}]})
    with pytest.raises(ValueError, match="not in the feeder"):
        build_devices(bad_bus, net)


def test_docs_example_parses():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "der.md"
    text = doc.read_text()  # the DER reference must exist and its example must stay valid
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    DERConfig.model_validate(yaml.safe_load(block)["der"])


def test_build_aggregators_groups_devices(net):
    cfg = DERConfig.model_validate(
        yaml.safe_load("""
devices:
  - {type: pv, bus: 3, rated_mw: 1.0, aggregator: utility}
penetration:
  - {type: pv, share_of_load_buses: 0.3, kw_per_kw_peak_load: 1.0, aggregator: solarco}
  - {type: battery, share_of_load_buses: 0.1, kw_per_kw_peak_load: 0.5, hours: 2}
""")
    )
    from gridlayers.der import build_aggregators

    aggs = build_aggregators(cfg, net, seed=5)
    assert sorted(aggs) == ["aggregator", "solarco", "utility"]
    assert [d.device_id for d in aggs["utility"].devices] == ["pv_dev0_bus3"]
    assert all(isinstance(d, PVPlant) for d in aggs["solarco"].devices)
    assert all(isinstance(d, Battery) for d in aggs["aggregator"].devices)
    total = sum(len(a.devices) for a in aggs.values())
    assert total == len(build_devices(cfg, net, seed=5))


def test_ev_unmet_energy_penalty_reaches_the_fleet():
    import pandapower as pp

    small = pp.create_empty_network()
    pp.create_bus(small, vn_kv=20.0, index=4)
    cfg = DERConfig.model_validate(
        {
            "devices": [
                {"type": "ev_fleet", "bus": 4, "n_vehicles": 2},
                {
                    "type": "ev_fleet",
                    "bus": 4,
                    "n_vehicles": 2,
                    "id": "ev_b",
                    "unmet_energy_penalty_usd_per_mwh": 250.0,
                },
            ]
        }
    )
    default, custom = build_devices(cfg, small, peak_load_mw_by_bus={})
    assert default.params.unmet_energy_penalty_usd_per_mwh == 500.0
    assert custom.params.unmet_energy_penalty_usd_per_mwh == 250.0
    with pytest.raises(pydantic.ValidationError):
        DERConfig.model_validate(
            {
                "devices": [
                    {
                        "type": "ev_fleet",
                        "bus": 4,
                        "n_vehicles": 1,
                        "unmet_energy_penalty_usd_per_mwh": -1.0,
                    }
                ]
            }
        )
