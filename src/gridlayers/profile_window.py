"""Long profile tables kept on disk and read in windows of rows (bounded memory).

A year of quarter-hours of a SimBench MV feeder's loads and generators, with their
forecasts and bus totals, is ~210 MB per LDA; every process that reads an LDA would hold
it whole. :func:`externalise` writes each long table of an
:class:`~gridlayers.lda.LDAModel` to a ``.npy`` file once (next to the start-up cache's
model file) and puts a :class:`WindowedFrame` in its place. A windowed table reads
:data:`WINDOW_ROWS` rows at a time from its file, so a process holds about one window
per table, whatever the horizon.

A :class:`WindowedFrame` supports what the simulators do with a profile table:
``frame.iloc[k]`` (one interval's row as a Series indexed by the columns, the same
values as the in-memory table's), ``frame.columns``, ``frame.index``, ``len(frame)`` and
``frame.shape``. Anything else (slices, ``.loc``, arithmetic) raises, so a caller that
needs a whole table fails loudly instead of silently reading another interval.
Pure: no mosaik, no optimisation.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from gridlayers.lda import LDAModel

#: Rows read per window: 28 days of quarter-hours.
WINDOW_ROWS = 2_688
#: Tables with at most this many rows stay in memory (a day to a few weeks).
MIN_EXTERNAL_ROWS = 2 * WINDOW_ROWS
#: The model's profile tables: FeederProfiles attributes and the per-bus load tables.
FEEDER_PROFILE_TABLES = ("load_p_mw", "load_q_mvar", "sgen_p_mw")
BUS_LOAD_TABLES = ("bus_load_actual_mw", "bus_load_forecast_mw")


class WindowedFrame:
    """A table of one row per interval, read from a ``.npy`` file in windows of rows.

    Parameters
    ----------
    path : Path
        ``.npy`` file of the table's values (float64, one row per interval).
    index, columns : pandas.Index
        Row labels (intervals) and column labels of the table.
    window_rows : int
        Rows read per window.

    """

    def __init__(
        self, path: Path, index: pd.Index, columns: pd.Index, window_rows: int = WINDOW_ROWS
    ) -> None:
        self.path = Path(path)
        self.index, self.columns = index, columns
        self.window_rows = int(window_rows)
        self._start, self._rows = 0, np.empty((0, len(columns)))

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return len(self.index), len(self.columns)

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict[str, Any]:  # the window is not part of the table
        return {**self.__dict__, "_start": 0, "_rows": np.empty((0, len(self.columns)))}

    @property
    def iloc(self) -> _Rows:
        """``iloc[k]``: row ``k`` as a Series (a copy), like ``DataFrame.iloc[k]``."""
        return _Rows(self)

    def row(self, k: int) -> np.ndarray:
        """Return row ``k`` of the table (a read-only view of the current window)."""
        n = len(self.index)
        if not -n <= k < n:
            msg = f"row {k} outside the table's {n} rows ({self.path.name})"
            raise IndexError(msg)
        k %= n
        if not self._start <= k < self._start + len(self._rows):
            mapped = np.load(self.path, mmap_mode="r")
            self._rows = np.array(mapped[k : k + self.window_rows])  # a copy: unmapped after
            self._rows.setflags(write=False)
            self._start = k
            del mapped
        return self._rows[k - self._start]


class _Rows:
    """The ``iloc`` of a :class:`WindowedFrame` (integer positions only)."""

    def __init__(self, frame: WindowedFrame) -> None:
        self._frame = frame

    def __getitem__(self, k: Any) -> pd.Series:
        if not isinstance(k, int | np.integer):
            msg = (
                f"a windowed profile table reads one row at a time (iloc[int]), got {k!r}; "
                "a whole table needs GRIDLAYERS_LDA_CACHE=off"
            )
            raise TypeError(msg)
        f = self._frame
        return pd.Series(f.row(int(k)).copy(), index=f.columns, name=f.index[int(k)])


def _write_npy(path: Path, values: np.ndarray) -> None:
    from gridlayers.startup_cache import atomic_write

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(values, dtype=float), allow_pickle=False)
    atomic_write(path, buffer.getvalue())


def _windowed(frame: pd.DataFrame, path: Path) -> WindowedFrame | pd.DataFrame:
    """Write ``frame`` to ``path`` and return it windowed (short or non-float: unchanged)."""
    if len(frame) <= MIN_EXTERNAL_ROWS or not all(
        np.issubdtype(t, np.floating) for t in frame.dtypes
    ):
        return frame
    _write_npy(path, frame.to_numpy(dtype=float))
    return WindowedFrame(path, frame.index, frame.columns)


def externalise(model: LDAModel, folder: Path) -> LDAModel:
    """Write the model's long profile tables to ``folder`` and window them (in place).

    Parameters
    ----------
    model : LDAModel
        Freshly built; tables with more than :data:`MIN_EXTERNAL_ROWS` rows are written to
        ``folder/<name>.npy`` and replaced by :class:`WindowedFrame` objects.
    folder : Path
        Created if missing.

    Returns
    -------
    LDAModel
        ``model`` itself.

    """
    for which in ("actual", "forecast"):
        prof = getattr(model, which)
        tables = {
            name: _windowed(getattr(prof, name), folder / f"{which}.{name}.npy")
            for name in FEEDER_PROFILE_TABLES
        }
        setattr(model, which, dataclasses.replace(prof, **tables))
    for name in BUS_LOAD_TABLES:
        setattr(model, name, _windowed(getattr(model, name), folder / f"{name}.npy"))
    return model


def reattach(model: LDAModel, folder: Path) -> bool:
    """Point the model's windowed tables at ``folder``; False if a file is missing there.

    The model file stores the tables' file names, not where the cache lives, so a moved
    cache folder still serves its models.
    """
    frames = [getattr(model, name) for name in BUS_LOAD_TABLES]
    frames += [getattr(p, n) for p in (model.actual, model.forecast) for n in FEEDER_PROFILE_TABLES]
    for frame in frames:
        if isinstance(frame, WindowedFrame):
            frame.path = folder / frame.path.name
            if not frame.path.is_file():
                return False
    return True
