"""Co-simulation overhead: the default scenario through mosaik vs the same cores in a plain loop.

Without DER (so both do exactly the same work: passive feeders and the TSO clearing).

Both compute the same intervals (feeder AC power flows, then the TSO clearing with the
realised imports). Prints wall seconds for each and the ratio mosaik/plain, plus the
start-up time (network and profile loading) that both share.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from gridlayers.grid import Feeder
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.lda import build_lda
from gridlayers.market import TransmissionMarket
from gridlayers.results.store import ResultStore

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"


def plain_loop(scenario) -> float:
    t0 = time.perf_counter()
    net = transmission_network(scenario.transmission)
    market = TransmissionMarket(net, cost_segments=scenario.transmission.cost_segments)
    scale = load_scale(scenario.transmission.load_profile, scenario.horizon)
    models = {lda.name: build_lda(scenario, lda.name) for lda in scenario.ldas}
    physics = {name: (Feeder(m.net, m.config.limits), m.actual) for name, m in models.items()}
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
    import yaml

    from gridlayers.cosim import run_world
    from gridlayers.scenarios.schema import Scenario

    data = yaml.safe_load(SCENARIO.read_text())
    for lda in data["ldas"]:
        lda.pop("der", None)
    data["paradigms"] = ["passive"]
    scenario = Scenario.model_validate(data)
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
