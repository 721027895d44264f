"""Scaling curve: Total TSO vs Minimal DSO vs Total DSO as DER multiply.

One command: ``python benchmarks/bench_scaling.py [--ldas 3 10 30] [--der-share 0.25 1.0]
[--intervals 6] [--csv scaling.csv]``.

Each point is the default scenario with its LDAs repeated at other 115 kV buses
(:func:`gridlayers.scenarios.variants.many_ldas`) and every DER type placed on
``der-share`` × (its default share) of the load buses (capped at all of them), with
``--devices-per-bus`` devices at each (same totals, more DER), run for
``--intervals`` quarter-hours from 10:00 of the default day, in a fresh Python
process per (point, paradigm) so that peak memory is that run's own. Prints, per
point and paradigm: DER count, seconds per interval after the first (the marginal
cost the scaling claim is about), the first interval (model building included), the
TSO problem size (variables, constraints of the forward clearing), values exchanged
across T–D interfaces per interval, and peak resident memory. Ratios Total TSO / Total
DSO per point are printed at the end. ``--partitions N`` runs each point's LDA simulators
in N partitions of subprocesses (peak memory then summed over the process tree, sampled
every 0.5 s).
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


def point(
    n_ldas: int, der_share: float, intervals: int, paradigm: str, units: int = 1, parts: int = 0
) -> dict:
    """Run one point in this process and return its measurements.

    ``parts`` > 0 runs the LDA simulators in that many partitions of subprocesses
    (``simulators.lda: cmd``); peak memory is then sampled over the whole process tree.
    """
    from bench_year import TreeMemory

    from gridlayers.runner import run_scenario
    from gridlayers.scenarios import load_scenario
    from gridlayers.scenarios.schema import Scenario
    from gridlayers.scenarios.variants import many_ldas

    data = many_ldas(load_scenario(SCENARIO).model_dump(mode="json", by_alias=True), n_ldas)
    for lda in data["ldas"]:
        for entry in lda["der"]["penetration"]:
            entry["share_of_load_buses"] = min(1.0, entry["share_of_load_buses"] * der_share)
            entry["devices_per_bus"] = units
    data["horizon"] = {"start": "2016-06-01 10:00", "intervals": intervals, "interval_min": 15}
    data["paradigms"] = [paradigm]
    data["output"]["bus_voltages"] = False
    if parts:
        data["simulators"] = {**data.get("simulators", {}), "lda": "cmd", "partitions": parts}
    scenario = Scenario.model_validate(data)
    tree = TreeMemory()
    tree.start()
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
        "peak_rss_mib": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, tree.peak_rss)
        / 1024,
        "partitions": parts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ldas", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--der-share", type=float, nargs="+", default=[1.0])
    parser.add_argument("--intervals", type=int, default=6)
    parser.add_argument("--paradigms", nargs="+", default=list(PARADIGMS))
    parser.add_argument(
        "--devices-per-bus", type=int, default=1, help="DER per chosen bus (same totals)"
    )
    parser.add_argument(
        "--partitions", type=int, default=0, help="LDA simulators in N subprocess partitions"
    )
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--svg", type=Path, help="write the curve as an SVG plot")
    parser.add_argument("--from-csv", type=Path, help="only plot an earlier --csv (no runs)")
    parser.add_argument("--point", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        n, share, paradigm = args.point
        units = args.devices_per_bus
        row = point(int(n), float(share), args.intervals, paradigm, units, args.partitions)
        print(json.dumps(row))
        return
    if args.from_csv:
        with args.from_csv.open() as f:
            rows = [{k: float(v) if k not in ("paradigm",) else v for k, v in r.items()}
                    for r in csv.DictReader(f)]  # fmt: skip
        args.svg.write_text(svg_plot(rows))
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
                cmd += ["--devices-per-bus", str(args.devices_per_bus)]
                cmd += ["--partitions", str(args.partitions)]
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
    if args.svg and rows:
        args.svg.write_text(svg_plot(rows))


COLOURS = {"total_tso": "#c0392b", "minimal_dso": "#7f8c8d", "total_dso": "#2471a3"}


def svg_plot(rows: list[dict]) -> str:
    """Seconds per interval against DER count, log-log, one line per paradigm (SVG text)."""
    import math

    w, h, m = 560, 360, 60
    xs = [math.log10(r["der"]) for r in rows]
    ys = [math.log10(r["s_per_interval"]) for r in rows]
    x0, x1 = math.floor(min(xs) * 2) / 2, math.ceil(max(xs) * 2) / 2
    y0, y1 = math.floor(min(ys) * 2) / 2, math.ceil(max(ys) * 2) / 2

    def px(x: float, y: float) -> tuple[float, float]:
        return m + (x - x0) / (x1 - x0) * (w - 2 * m), h - m - (y - y0) / (y1 - y0) * (h - 2 * m)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']  # fmt: skip
    for k in range(int(x0 * 2), int(x1 * 2) + 1):
        x, _ = px(k / 2, y0)
        out.append(f'<line x1="{x}" y1="{m}" x2="{x}" y2="{h - m}" stroke="#ddd"/>')
        out.append(
            f'<text x="{x}" y="{h - m + 16}" text-anchor="middle">{10 ** (k / 2):,.0f}</text>'
        )
    for k in range(int(y0 * 2), int(y1 * 2) + 1):
        _, y = px(x0, k / 2)
        out.append(f'<line x1="{m}" y1="{y}" x2="{w - m}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{m - 6}" y="{y + 4}" text-anchor="end">{10 ** (k / 2):.2g}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 18}" text-anchor="middle">DER in the system</text>')
    out.append(f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" '
               'text-anchor="middle">seconds per interval</text>')  # fmt: skip
    shares = sorted({r["der_share"] for r in rows})
    for i, (paradigm, colour) in enumerate(COLOURS.items()):
        for j, share in enumerate(shares):  # one line per DER density: LDAs grow along it
            pts = sorted(
                (r["der"], r["s_per_interval"])
                for r in rows
                if r["paradigm"] == paradigm and r["der_share"] == share
            )
            xy = [px(math.log10(d), math.log10(s)) for d, s in pts]
            dash = ' stroke-dasharray="5,4"' if j else ""
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="'
                       + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')  # fmt: skip
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in xy]
        out.append(f'<text x="{m + 10}" y="{m + 16 * i}" fill="{colour}">{paradigm}</text>')
    out.append(
        f'<text x="{m + 10}" y="{m + 16 * len(COLOURS)}">solid: DER density x{shares[0]:g}, '
        f"dashed: x{shares[-1]:g}; points: more LDAs</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
