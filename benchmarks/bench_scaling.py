"""Scaling curve: Total TSO vs Minimal DSO vs Total DSO as DER multiply.

One command: ``python benchmarks/bench_scaling.py [--ldas 3 10 30] [--der-share 0.25 1.0]
[--intervals 6] [--csv scaling.csv]``.

Each point is the default scenario with its LDAs repeated at other 115 kV buses
(:func:`gridlayers.scenarios.variants.many_ldas`) and every DER type placed on
``der-share`` × (its default share) of the load buses (capped at all of them), run for
``--intervals`` quarter-hours from 10:00 of the default day, in a fresh Python
process per (point, paradigm) so that peak memory is that run's own. Prints, per
point and paradigm: DER count, seconds per interval after the first (the marginal
cost the scaling claim is about), the first interval (model building included), the
TSO problem size (variables, constraints of the forward clearing), values exchanged
across T–D interfaces per interval, and peak resident memory. Ratios Total TSO / Total
DSO per point are printed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"
PARADIGMS = ("total_tso", "minimal_dso", "total_dso")


def point(n_ldas: int, der_share: float, intervals: int, paradigm: str) -> dict:
    """Run one point in this process and return its measurements."""
    from gridlayers.runner import run_scenario
    from gridlayers.scenarios import load_scenario
    from gridlayers.scenarios.schema import Scenario
    from gridlayers.scenarios.variants import many_ldas

    data = many_ldas(load_scenario(SCENARIO).model_dump(mode="json", by_alias=True), n_ldas)
    for lda in data["ldas"]:
        for entry in lda["der"]["penetration"]:
            entry["share_of_load_buses"] = min(1.0, entry["share_of_load_buses"] * der_share)
    data["horizon"] = {"start": "2016-06-01 10:00", "intervals": intervals, "interval_min": 15}
    data["paradigms"] = [paradigm]
    data["output"]["bus_voltages"] = False
    scenario = Scenario.model_validate(data)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcome = run_scenario(scenario, Path(tmp), lambda *_: stamps.append(time.perf_counter()))
        wall = time.perf_counter() - t0
    kpis = outcome.summary["paradigms"][paradigm]
    if outcome.summary["status"] != "completed":
        return {"error": outcome.summary["error"]}
    from gridlayers.agents.lda_cache import lda_model

    der = sum(len(lda_model("count", scenario, lda.name).devices) for lda in scenario.ldas)
    later = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")
    return {
        "ldas": n_ldas,
        "der_share": der_share,
        "der": der,
        "paradigm": paradigm,
        "s_per_interval": later,
        "first_interval_s": stamps[0] - t0 if stamps else wall,
        "wall_s": wall,
        "tso_variables": kpis.get("tso_variables"),
        "tso_constraints": kpis.get("tso_constraints"),
        "values_per_interval": kpis.get("interface_values_exchanged", 0) / intervals,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ldas", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--der-share", type=float, nargs="+", default=[1.0])
    parser.add_argument("--intervals", type=int, default=6)
    parser.add_argument("--paradigms", nargs="+", default=list(PARADIGMS))
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--point", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        n, share, paradigm = args.point
        print(json.dumps(point(int(n), float(share), args.intervals, paradigm)))
        return
    rows = []
    print(
        f"{'LDAs':>4} {'DER':>6} {'paradigm':<12} {'s/interval':>10} {'first [s]':>9} "
        f"{'TSO vars':>9} {'TSO cons':>9} {'values/int':>10} {'peak MiB':>8}"
    )
    for n in args.ldas:
        for share in args.der_share:
            for paradigm in args.paradigms:
                cmd = [sys.executable, __file__, "--intervals", str(args.intervals)]
                cmd += ["--point", str(n), str(share), paradigm]
                out = subprocess.run(cmd, capture_output=True, text=True, check=False)
                try:
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                except (json.JSONDecodeError, IndexError):
                    row = {"error": out.stderr.strip().splitlines()[-1:] or ["no output"]}
                if "error" in row:
                    print(f"{n:>4} {'':>6} {paradigm:<12} FAILED: {row['error']}")
                    continue
                rows.append(row)
                print(
                    f"{n:>4} {row['der']:>6} {paradigm:<12} {row['s_per_interval']:>10.2f} "
                    f"{row['first_interval_s']:>9.1f} {row['tso_variables'] or 0:>9} "
                    f"{row['tso_constraints'] or 0:>9} {row['values_per_interval']:>10.0f} "
                    f"{row['peak_rss_mib']:>8.0f}",
                    flush=True,
                )
    by = {(r["ldas"], r["der_share"], r["paradigm"]): r for r in rows}
    for n in args.ldas:
        for share in args.der_share:
            tso, dso = by.get((n, share, "total_tso")), by.get((n, share, "total_dso"))
            if tso and dso:
                print(
                    f"{n} LDAs, {dso['der']} DER: Total TSO / Total DSO time per interval "
                    f"{tso['s_per_interval'] / dso['s_per_interval']:.2f}x, "
                    f"memory {tso['peak_rss_mib'] / dso['peak_rss_mib']:.2f}x"
                )
    if args.csv and rows:
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
