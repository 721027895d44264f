"""The standalone FeederSimulator through mosaik, against pandapower on the same inputs."""

from __future__ import annotations

import copy
from typing import Any

import mosaik
import mosaik_api_v3
import numpy as np
import pandapower as pp
import pytest

from gridlayers.grid.networks import simbench_feeder

CODE = "1-LV-rural1--0-sw"
START_ROW = 152 * 96 + 48  # 2016-06-01 12:00 (leap year), a sunny noon
RECEIVED: list[dict[str, Any]] = []


class Source(mosaik_api_v3.Simulator):
    """Injects 20 kW at one bus in every step after the first."""

    def __init__(self) -> None:
        super().__init__(
            {
                "api_version": "3.0",
                "type": "time-based",
                "models": {"Source": {"public": True, "params": [], "attrs": ["P[MW]"]}},
            }
        )

    def create(self, num: int, model: str) -> list[dict[str, Any]]:
        return [{"eid": "pv", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int:
        self._t = time
        return time + 900

    def get_data(self, outputs: dict[str, Any]) -> dict[str, Any]:
        return {"pv": {"P[MW]": 0.0 if self._t == 0 else 0.02}}


class Sink(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(
            {
                "api_version": "3.0",
                "type": "event-based",
                "models": {"Sink": {"public": True, "any_inputs": True, "params": [], "attrs": []}},
            }
        )

    def create(self, num: int, model: str) -> list[dict[str, Any]]:
        return [{"eid": "sink", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> None:
        RECEIVED.append(inputs["sink"])


def test_standalone_feeder_plays_its_profiles_and_takes_bus_inputs() -> None:
    RECEIVED.clear()
    world = mosaik.World(
        {
            "Feeder": {"python": "gridlayers.simulators.feeder:FeederSimulator"},
            "Source": {"python": "test_feeder_simulator:Source"},
            "Sink": {"python": "test_feeder_simulator:Sink"},
        },
        skip_greetings=True,
    )
    feeder = world.start("Feeder", step_size=900, start="2016-06-01 12:00:00").Feeder(simbench=CODE)
    net, year = simbench_feeder(CODE)
    bus = int(net.bus.index[-1])
    child = {c.eid.split(".")[-1]: c for c in feeder.children}
    source = world.start("Source").Source()
    sink = world.start("Sink").Sink()
    world.connect(source, child[f"Bus-{bus}"], ("P[MW]", "P_gen[MW]"))
    world.connect(feeder, sink, "P_import[MW]", "converged[-]")
    world.connect(child[f"Bus-{bus}"], sink, "Vm[pu]")
    world.run(until=3 * 900, print_progress=False)
    assert len(RECEIVED) == 3
    for k, row in enumerate(RECEIVED):
        ref = copy.deepcopy(net)
        r = START_ROW + k
        ref.load["p_mw"] = year[("load", "p_mw")].iloc[r].to_numpy()
        ref.load["q_mvar"] = year[("load", "q_mvar")].iloc[r].to_numpy()
        ref.sgen["p_mw"] = year[("sgen", "p_mw")].iloc[r].to_numpy()
        if k > 0:
            pp.create_sgen(ref, bus, 0.02)
        pp.runpp(ref)
        (p_import,) = row["P_import[MW]"].values()
        (vm,) = row["Vm[pu]"].values()
        assert p_import == pytest.approx(ref.res_ext_grid.p_mw.iloc[0], abs=1e-7)
        assert vm == pytest.approx(ref.res_bus.vm_pu.at[bus], abs=1e-8)
        assert all(row["converged[-]"].values())
    assert np.diff([next(iter(r["P_import[MW]"].values())) for r in RECEIVED]).any()
