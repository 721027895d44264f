"""Feeder physics: recycled, warm-started AC power flow vs a plain runpp per interval.

Prints ms per interval for both on one day of each bundled SimBench MV feeder and the
ratio plain/recycled (higher is better for gridlayers).
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
        feeder = Feeder(net, LimitsConfig())
        feeder.run(prof.load_p_mw.iloc[0], prof.load_q_mvar.iloc[0], prof.sgen_p_mw.iloc[0])
        t0 = time.perf_counter()
        for k in range(96):
            feeder.run(prof.load_p_mw.iloc[k], prof.load_q_mvar.iloc[k], prof.sgen_p_mw.iloc[k])
        ours = (time.perf_counter() - t0) / 96
        plain = copy.deepcopy(net)
        t0 = time.perf_counter()
        for k in range(96):
            plain.load["p_mw"] = prof.load_p_mw.iloc[k].to_numpy()
            plain.load["q_mvar"] = prof.load_q_mvar.iloc[k].to_numpy()
            plain.sgen["p_mw"] = prof.sgen_p_mw.iloc[k].to_numpy()
            pp.runpp(plain)
        ref = (time.perf_counter() - t0) / 96
        print(
            f"{code:22s} recycled {ours * 1e3:6.1f} ms  plain runpp {ref * 1e3:6.1f} ms  "
            f"ratio {ref / ours:4.2f}x"
        )


if __name__ == "__main__":
    main()
