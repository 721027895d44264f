"""Report panels of the iterative paradigm: ADMM rounds and residuals per interval.

Drawn into the computation figure (:func:`gridlayers.report.market.computation`) when
``coordination_interval`` has rows; rounds are counts, residuals MW and $/MWh.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from gridlayers.report.common import colour, time_axis


def rounds_panels(ax_rounds: Axes, ax_residual: Axes, rows: pd.DataFrame, names: list[str]) -> None:
    """Draw rounds per interval (unconverged marked x) and final residuals (log scale)."""
    for p, sub in rows.groupby("paradigm", sort=False):
        per = sub.groupby("time").agg(
            rounds=("rounds", "max"),
            converged=("converged", "all"),
            primal=("primal_residual_mw", "max"),
            dual=("dual_residual_usd_per_mwh", "max"),
        )
        c = colour(str(p), names)
        ax_rounds.plot(per.index, per["rounds"], color=c, marker=".")
        missed = per[~per["converged"]]
        ax_rounds.plot(missed.index, missed["rounds"], "x", color="red", markersize=8)
        # markers: an interval with unknown residuals (a failed TSO round, NULL) leaves
        # its neighbours without a line to draw
        primal, dual = per["primal"].astype(float), per["dual"].astype(float)
        ax_residual.semilogy(per.index, primal.clip(lower=1e-9), color=c, marker=".")
        ax_residual.semilogy(per.index, dual.clip(lower=1e-9), color=c, marker=".", ls="--")
    ax_rounds.set_ylabel("ADMM rounds [-]")
    ax_rounds.set_title("Rounds per interval (x: not converged)", fontsize="medium")
    ax_residual.set_ylabel("residual (log scale)")
    ax_residual.set_title(
        "Final primal residual [MW] (solid), dual residual [$/MWh] (dashed)", fontsize="medium"
    )
    for ax in (ax_rounds, ax_residual):
        time_axis(ax)
