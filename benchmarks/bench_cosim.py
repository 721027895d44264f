"""Co-simulation overhead: the default scenario through mosaik vs the same cores in a plain loop.

Without DER (so both do exactly the same work under ``passive``).

Both compute the same intervals: the forward clearing on the forecast bulk load with each
LDA's forecast import (linear feeder model), the feeders' AC power flows, and the
real-time stage on the actual bulk load and the realised imports. Prints wall seconds
for each and the ratio mosaik/plain, plus the start-up time (network and profile
loading) that both share.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from gridlayers.agents.dso_setup import linear_feeder
from gridlayers.domain import BidCurve
from gridlayers.grid import Feeder
from gridlayers.grid.forecast import bulk_load_forecast
from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.lda import build_lda
from gridlayers.market import TransmissionMarket
from gridlayers.results.store import ResultStore

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"


def plain_loop(scenario) -> tuple[float, float]:
    t0 = time.perf_counter()
    net = transmission_network(scenario.transmission)
    segments = scenario.transmission.cost_segments
    interfaces = {lda.name: lda.interface_bus for lda in scenario.ldas}
    forward = TransmissionMarket(
        net, participants={f"dso:{a}": b for a, b in interfaces.items()}, cost_segments=segments
    )
    real_time = TransmissionMarket(net, cost_segments=segments)
    scale = load_scale(scenario.transmission.load_profile, scenario.horizon)
    base = (net.load.p_mw * net.load.scaling).to_numpy()
    actual = scale[:, None] * base[None, :]
    fc = bulk_load_forecast(actual, scenario.forecast.bulk_load_error_std, scenario.seed)
    models = {lda.name: build_lda(scenario, lda.name) for lda in scenario.ldas}
    physics = {name: (Feeder(m.net, m.config.limits), m.actual) for name, m in models.items()}
    linear = {name: linear_feeder(m) for name, m in models.items()}
    setup = time.perf_counter() - t0
    for k in range(scenario.horizon.intervals):
        bids = {}
        for name, m in models.items():
            p, q = m.fixed_injections(k, "forecast")
            export = linear[name].solve_power_flow(p, q).interface_p_mw
            bids[f"dso:{name}"] = BidCurve.fixed(float(export))
        forward.clear(load_p_mw=pd.Series(fc[k], index=net.load.index), bids=bids)
        extra = {}
        for lda in scenario.ldas:
            feeder, prof = physics[lda.name]
            r = feeder.run(prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k])
            extra[lda.interface_bus] = r.p_import_mw
        real_time.clear(load_p_mw=pd.Series(actual[k], index=net.load.index), extra_load_mw=extra)
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
