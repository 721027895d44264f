"""Start-up: resolve a scenario and build every LDA model, cold vs from the on-disk cache.

Each measurement runs in a fresh Python process (so no per-process memo helps) with
``GRIDLAYERS_CACHE`` pointing at a temporary folder:

- ``cold``: an empty cache folder (SimBench networks and profiles are extracted from the
  SimBench CSV data, parsed, pickled; every LDA model is built and stored);
- ``json``: the cache as gridlayers kept it before the start-up cache (SimBench JSON
  extracts only) and ``GRIDLAYERS_LDA_CACHE=off``: every process parses each network's
  JSON and builds every LDA model, as before (with today's faster resolve);
- ``warm``: a second process on the cache the cold run left (pickled nets, stored models).

Timed inside each process: imports, ``load_scenario``, the first load of each SimBench
network, ``resolve_scenario`` and one ``cached_lda`` per LDA (what every simulator process
calls through ``lda_cache.lda_model``); plus the process's wall time. Cases: the default
scenario (3 LDAs, 390 DER) and the same with every DER penetration rule repeated ten times
at a tenth of its size (3,900 DER). Prints one row per run and the ratios cold/warm and
json/warm of networks + resolve + models. A warm run that misses (another process edited
gridlayers' source, which changes every key) is repeated up to twice.

Run: ``.venv/bin/python benchmarks/bench_startup.py [--scales 1,10]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "scenarios" / "default.yaml"


def _child(scenario_file: Path) -> None:
    """Time one start-up in this (fresh) process and print it as JSON."""
    t0 = time.perf_counter()
    from gridlayers.grid.networks import simbench_feeder
    from gridlayers.scenarios.load import load_scenario
    from gridlayers.scenarios.resolve import resolve_scenario
    from gridlayers.startup_cache import cached_lda, lda_cache_path

    out: dict = {"imports": time.perf_counter() - t0}
    t = time.perf_counter()
    sc = load_scenario(scenario_file)
    out["load"] = time.perf_counter() - t
    out["networks"] = {}
    for code in dict.fromkeys(lda.feeder.simbench for lda in sc.ldas if lda.feeder.simbench):
        t = time.perf_counter()
        simbench_feeder(code)
        out["networks"][code] = time.perf_counter() - t
    t = time.perf_counter()
    resolve_scenario(sc, scenario_file)
    out["resolve"] = time.perf_counter() - t
    out["models"], out["hits"], out["der"] = {}, 0, 0
    for lda in sc.ldas:
        hit = lda_cache_path(sc, lda.name).is_file()
        t = time.perf_counter()
        model = cached_lda(sc, lda.name)
        out["models"][lda.name] = time.perf_counter() - t
        out["hits"] += hit
        out["der"] += len(model.devices)
    print(json.dumps(out))


def _run(scenario_file: Path, cache: Path, lda_cache: bool = True) -> dict:
    env = {**os.environ, "GRIDLAYERS_CACHE": str(cache)}
    if not lda_cache:
        env["GRIDLAYERS_LDA_CACHE"] = "off"
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(scenario_file)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        sys.exit(f"child failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall"] = time.perf_counter() - t
    return out


def _scaled(scale: int, folder: Path) -> Path:
    """Write the default scenario with every DER rule repeated ``scale`` times, 1/scale sized."""
    import yaml

    data = yaml.safe_load(DEFAULT.read_text())
    if scale == 1:
        path = folder / "default.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path
    sized = ("kw_per_kw_peak_load", "shift_kw_per_kw_peak_load", "vehicles_per_mw_peak_load")
    for lda in data["ldas"]:
        rules = []
        for rule in lda["der"]["penetration"]:
            small = copy.deepcopy(rule)
            for field in (*sized, "share_of_bus_load"):
                if field in small:
                    small[field] /= scale
            rules += [copy.deepcopy(small) for _ in range(scale)]
        lda["der"] = {**lda["der"], "penetration": rules}
    path = folder / f"default-der-x{scale}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _row(label: str, r: dict) -> str:
    nets = " ".join(f"{v:5.2f}" for v in r["networks"].values())
    models = " ".join(f"{v:5.2f}" for v in r["models"].values())
    n = len(r["models"])
    return (
        f"  {label:7s} wall {r['wall']:6.2f} s | imports {r['imports']:5.2f} load {r['load']:5.2f}"
        f" | networks [{nets}] resolve {r['resolve']:5.2f} | models [{models}]"
        f" (hits {r['hits']}/{n}) | total {_startup(r):6.2f} s"
    )


def _startup(r: dict) -> float:
    return sum(r["networks"].values()) + r["resolve"] + sum(r["models"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scales", default="1,10", help="DER scale factors (default 1,10)")
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        for scale in (int(s) for s in args.scales.split(",")):
            scenario = _scaled(scale, root)
            cold_dir, json_dir = root / f"cache-x{scale}", root / f"json-x{scale}"
            cold = _run(scenario, cold_dir)
            # the cache of earlier gridlayers: SimBench JSON/npz/standard profiles only
            shutil.copytree(
                cold_dir, json_dir, ignore=shutil.ignore_patterns("*.pkl", "lda-models")
            )
            uncached = _run(scenario, json_dir, lda_cache=False)
            warm = _run(scenario, cold_dir)
            for _ in range(2):  # another process edited gridlayers' source: warm up again
                if warm["hits"] == len(warm["models"]):
                    break
                warm = _run(scenario, cold_dir)
            print(f"{scenario.stem}: {len(warm['models'])} LDAs, {warm['der']} DER")
            for label, r in (("cold", cold), ("json", uncached), ("warm", warm)):
                print(_row(label, r))
            print(
                f"  networks+resolve+models: cold/warm {_startup(cold) / _startup(warm):5.1f}x, "
                f"json/warm {_startup(uncached) / _startup(warm):5.1f}x; "
                f"process wall: cold/warm {cold['wall'] / warm['wall']:4.1f}x, "
                f"json/warm {uncached['wall'] / warm['wall']:4.1f}x"
            )
            if warm["hits"] < len(warm["models"]):
                print("  (warm missed: gridlayers' source kept changing between the runs)")


if __name__ == "__main__":
    main()
