"""Benchmark: Benders decomposition against the monolithic HiGHS MILP on ISO-NE sub-cases.

Usage::

    .venv/bin/python benchmarks/bench_benders.py [--threads N]

For each sub-case of the SO model (1 day / 1 epoch, days 1 and 4 / 1 epoch,
1 day / 4 epochs) both methods solve the same built model at MIP gap 1e-4; the
monolithic solve is the reference measured in the same run. Prints wall times,
the ratio monolithic / Benders, objectives and proven bounds (scaled $) and
whether each bound lies below the other method's plan (it must).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gridlayers.planner import build_model, load_planner_config, read_inputs, solve_model

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "1 day, 1 epoch": {"days": [1], "n_epochs": 1},
    "days 1+4, 1 epoch": {"days": [1, 4], "n_epochs": 1},
    "1 day, 4 epochs": {"days": [1]},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    _, base = load_planner_config(ROOT / "scenarios" / "isone8-so.yaml")
    print(
        f"{'case':20s} {'monolithic s':>13s} {'benders s':>10s} {'ratio':>6s}  objectives / bounds"
    )
    for name, update in CASES.items():
        config = base.model_copy(update=update)
        results = {}
        for method in ("monolithic", "benders"):
            model = build_model(read_inputs(config), config)
            start = time.perf_counter()
            res = solve_model(model, mip_gap=1e-4, threads=args.threads, method=method)
            results[method] = (time.perf_counter() - start, res)
        (t_m, mono), (t_b, bend) = results["monolithic"], results["benders"]
        consistent = bend.bound <= mono.objective * (1 + 1e-9) and mono.bound <= bend.objective * (
            1 + 1e-9
        )
        print(
            f"{name:20s} {t_m:13.1f} {t_b:10.1f} {t_m / t_b:6.2f}  "
            f"mono {mono.objective:.8e} [{mono.bound:.8e}]  "
            f"benders {bend.objective:.8e} [{bend.bound:.8e}] ({bend.iterations} it)  "
            f"bounds consistent: {consistent}",
            flush=True,
        )


if __name__ == "__main__":
    main()
