"""Co-simulation overhead: the default scenario through mosaik vs the same cores in a plain loop.

Both compute the same intervals (feeder AC power flows, then the TSO clearing with the
realised imports). Prints wall seconds for each and the ratio mosaik/plain, plus the
start-up time (network and profile loading) that both share.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from gridlayers.grid import build_lda_physics
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.market import TransmissionMarket
from gridlayers.results.store import ResultStore
from gridlayers.scenarios import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"


def plain_loop(scenario) -> float:
    t0 = time.perf_counter()
    net = transmission_network(scenario.transmission)
    market = TransmissionMarket(net)
    scale = load_scale(scenario.transmission.load_profile, scenario.horizon)
    physics = {lda.name: build_lda_physics(scenario, lda.name) for lda in scenario.ldas}
    setup = time.perf_counter() - t0
    for k in range(scenario.horizon.intervals):
        extra = {}
        for lda in scenario.ldas:
            feeder, prof = physics[lda.name]
            r = feeder.run(prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k])
            extra[lda.interface_bus] = r.p_import_mw
        market.clear(load_p_mw=net.load.p_mw * net.load.scaling * scale[k], extra_load_mw=extra)
    return time.perf_counter() - t0, setup


def main() -> None:
    from gridlayers.cosim import run_world

    scenario = load_scenario(SCENARIO)
    plain, setup = plain_loop(scenario)
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "r.duckdb")
        t0 = time.perf_counter()
        run_world(scenario, "passive", store)
        cosim = time.perf_counter() - t0
        store.close()
    n = scenario.horizon.intervals
    print(f"default scenario, {n} intervals, {len(scenario.ldas)} LDAs")
    print(f"plain loop     {plain:6.1f} s (of which set-up {setup:.1f} s)")
    print(f"mosaik + store {cosim:6.1f} s")
    print(
        f"ratio mosaik/plain {cosim / plain:4.2f}x; per interval "
        f"{(cosim - setup) / n * 1e3:.0f} ms vs {(plain - setup) / n * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
