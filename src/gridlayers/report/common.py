"""Shared pieces of the report figures: the figure type, paradigm colours, time axes.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``, no
global state) and rendered by the Agg canvas in :mod:`gridlayers.report.build`.
A figure function takes a :class:`gridlayers.results.RunResults` and returns either a
``Figure`` or a short note (``str``) saying why there is nothing to draw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gridlayers.results.load import RunResults

#: A figure function: the loaded run in, a figure or the reason it was skipped out.
FigureFunction = Callable[[RunResults], Figure | str]

#: Display names and fixed colours, so a paradigm looks the same in every figure.
PARADIGM_LABELS = {
    "total_tso": "Total TSO",
    "minimal_dso": "Minimal DSO",
    "total_dso": "Total DSO",
    "passive": "passive",
}
_COLOURS = {"total_tso": "C0", "minimal_dso": "C1", "total_dso": "C2", "passive": "C7"}
_SPARE = ("C3", "C4", "C5", "C6", "C8", "C9")

#: Default interval length when neither the scenario nor the data tell it, minutes.
DEFAULT_INTERVAL_MIN = 15.0


@dataclass(frozen=True)
class FigureSpec:
    """One report figure: file name, title (also the HTML heading), caption, function."""

    name: str
    title: str
    caption: str
    draw: FigureFunction


def label(paradigm: str) -> str:
    """Return the display name of ``paradigm``."""
    return PARADIGM_LABELS.get(paradigm, paradigm)


def colour(paradigm: str, paradigms: list[str]) -> str:
    """Return the fixed colour of a known paradigm; spare colours for others in run order."""
    if paradigm in _COLOURS:
        return _COLOURS[paradigm]
    others = [p for p in paradigms if p not in _COLOURS]
    return _SPARE[others.index(paradigm) % len(_SPARE)] if paradigm in others else "k"


def new_figure(title: str, nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, np.ndarray]:
    """Make a figure with a 2-D array of axes and ``title`` as its suptitle.

    ``kw`` goes to :meth:`Figure.subplots`; the size defaults to 11 in wide and
    2.8 in per row (plus room for the title).
    """
    height = kw.pop("row_height", 2.8)
    fig = Figure(figsize=kw.pop("figsize", (11.0, 0.9 + height * nrows)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    return fig, axes


def interval_minutes(run: RunResults) -> float:
    """Interval length in minutes: the scenario's, else the stored times' step, else 15."""
    horizon = (run.scenario or {}).get("horizon") or {}
    if horizon.get("interval_min"):
        return float(horizon["interval_min"])
    for table in ("market_interval", "feeder_interval"):
        times = pd.Series(run[table]["time"].dropna().unique()).sort_values()
        if len(times) > 1:
            return float(times.diff().dropna().min().total_seconds() / 60.0)
    return DEFAULT_INTERVAL_MIN


def time_axis(ax: Axes, xlabel: str = "time", maxticks: int = 8) -> None:
    """Concise date ticks on the x axis (at most ``maxticks``) and its label."""
    locator = mdates.AutoDateLocator(minticks=2, maxticks=maxticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel(xlabel)


def by_time(frame: pd.DataFrame, value: str, how: str = "sum") -> pd.Series:
    """``value`` aggregated per ``time`` (e.g. summed over LDAs), sorted by time."""
    return frame.groupby("time")[value].agg(how).sort_index()


def xy(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(index, values as float)`` of a series, for ``ax.plot(*xy(s))``."""
    return series.index.to_numpy(), series.to_numpy(dtype=float)


def grouped_bars(
    ax: Axes,
    categories: list[str],
    values: dict[str, list[float]],
    paradigms: list[str],
    value_labels: bool = False,
) -> None:
    """Bars of ``values[paradigm][i]`` grouped by ``categories[i]``, a colour per paradigm.

    ``paradigms`` is the run order that fixes the colours (:func:`colour`); each bar
    set carries its paradigm's display name as legend label, and with ``value_labels``
    every bar its value.
    """
    x = np.arange(len(categories))
    width = 0.8 / max(len(values), 1)
    for k, (paradigm, ys) in enumerate(values.items()):
        offset = (k - (len(values) - 1) / 2) * width
        bars = ax.bar(
            x + offset, ys, width, label=label(paradigm), color=colour(paradigm, paradigms)
        )
        if value_labels:
            ax.bar_label(bars, [_short(v) for v in ys], fontsize="xx-small")
    ax.set_xticks(x, categories)


def _short(value: float) -> str:
    if not np.isfinite(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def heatmap(
    ax: Axes,
    frame: pd.DataFrame,
    row: str,
    value: str,
    minutes: float,
    **kw: Any,
) -> Any:
    """Draw ``value`` as a time x ``row`` image (rows bottom-up); return the image.

    The x axis spans the first interval's start to the last one's end (times are the
    interval starts); ``kw`` goes to :meth:`Axes.imshow` (``cmap``, ``vmin``, ``vmax``).
    One value per (``row``, time) is expected (a repeated pair keeps its last value);
    the grid is filled with numpy, which takes a year of 200 buses in about a second.
    """
    rows, row_keys = pd.factorize(frame[row], sort=True)
    cols, times = pd.factorize(frame["time"], sort=True)
    grid = np.full((len(row_keys), len(times)), np.nan)
    grid[rows, cols] = frame[value].to_numpy(dtype=float)
    start = mdates.date2num(times.min())
    end = mdates.date2num(times.max() + pd.Timedelta(minutes=minutes))
    image = ax.imshow(
        grid,
        aspect="auto",
        origin="lower",
        # one pixel per cell when cells are large, averaged when thousands share a pixel
        interpolation="nearest" if len(times) < 2000 else "antialiased",
        extent=(start, end, -0.5, len(row_keys) - 0.5),
        **kw,
    )
    ax.xaxis_date()
    ticks = np.linspace(0, len(row_keys) - 1, min(6, len(row_keys))).round().astype(int)
    ax.set_yticks(ticks, [str(row_keys[k]) for k in ticks])
    return image


def figure_legend(
    fig: Figure,
    paradigms: Iterable[str],
    everything: list[str],
    styles: Iterable[tuple[str, dict[str, Any]]] = (),
) -> None:
    """One legend below all panels: a colour per paradigm, then line ``styles``.

    ``styles`` are ``(label, Line2D keywords)`` drawn in black, e.g.
    ``("schedule", {"ls": "--"})``.
    """
    handles = [Line2D([], [], color=colour(p, everything), lw=2) for p in paradigms]
    labels = [label(p) for p in paradigms]
    for text, kw in styles:
        handles.append(Line2D([], [], **{"color": "k", **kw}))
        labels.append(text)
    fig.legend(
        handles, labels, loc="outside lower center", ncols=min(len(labels), 7), fontsize="small"
    )


def empty(frame: pd.DataFrame, *columns: str) -> bool:
    """Whether ``frame`` has no rows with a value in every one of ``columns``."""
    return frame.empty or frame.dropna(subset=list(columns), how="any").empty
