"""Feeder physics: gridlayers' two AC power-flow backends vs a plain runpp per interval.

On one day of each bundled SimBench MV feeder prints ms per interval for the lean
solver (``gridlayers.grid.acpf``, the default), pandapower's recycled warm-started
``runpp`` (the fallback backend) and a plain ``runpp``, and the ratios
plain/lean and recycled/lean (higher is better for the lean solver).
"""

from __future__ import annotations

import copy
import datetime as dt
import time

import pandapower as pp

from gridlayers.grid import Feeder, feeder_profiles
from gridlayers.grid.networks import simbench_feeder
from gridlayers.scenarios.schema import FeederConfig, HorizonConfig, LimitsConfig

DAY = HorizonConfig(start=dt.datetime(2016, 6, 1), intervals=96, interval_min=15)


def main() -> None:
    for code in ("1-MV-rural--0-sw", "1-MV-semiurb--0-sw", "1-MV-urban--0-sw"):
        net, _ = simbench_feeder(code)
        prof = feeder_profiles(net, FeederConfig(simbench=code), DAY)
        lean = _per_interval(Feeder(net, LimitsConfig()), prof)
        recycled = _per_interval(Feeder(net, LimitsConfig(), "pandapower"), prof)
        plain = copy.deepcopy(net)
        t0 = time.perf_counter()
        for k in range(96):
            plain.load["p_mw"] = prof.load_p_mw.iloc[k].to_numpy()
            plain.load["q_mvar"] = prof.load_q_mvar.iloc[k].to_numpy()
            plain.sgen["p_mw"] = prof.sgen_p_mw.iloc[k].to_numpy()
            pp.runpp(plain)
        ref = (time.perf_counter() - t0) / 96
        print(
            f"{code:22s} lean {lean * 1e3:5.2f} ms  recycled runpp {recycled * 1e3:5.1f} ms  "
            f"plain runpp {ref * 1e3:5.1f} ms  plain/lean {ref / lean:5.1f}x  "
            f"recycled/lean {recycled / lean:5.1f}x"
        )


def _per_interval(feeder: Feeder, prof) -> float:
    """Seconds per interval over the day, after one warm-up step."""
    load_p, load_q, sgen_p = (
        f.to_numpy() for f in (prof.load_p_mw, prof.load_q_mvar, prof.sgen_p_mw)
    )
    feeder.run(load_p[0], load_q[0], sgen_p[0])
    t0 = time.perf_counter()
    for k in range(96):
        feeder.run(load_p[k], load_q[k], sgen_p[k])
    return (time.perf_counter() - t0) / 96


if __name__ == "__main__":
    main()
