"""Input adapter for the ISO-NE 8-zone data (MOTEP-OSW format, bundled as ``data/isone8``).

Expected files (``*`` = optional) and the columns read from each:

- ``nodes.csv``: ``node``, ``Zone``, ``is_slack``.
- ``lines.csv``: ``index``, ``from_node``, ``to_node``, ``x`` (p.u.), ``s_max`` (MW),
  ``Distance (miles)``.
- ``load.csv``: header row of zone names, first column hour labels ``t1..t240``; MW.
- ``wind.csv``, ``solar.csv``: no header, column n = node n; existing output, MW.
- ``wind_normalized.csv``, ``solar_normalized.csv``: no header; per-MW availability.
- ``weights_of_scenarios.csv``: no header; share of the year of each day.
- ``generators_loc_emission_damages.csv``: ``index``, ``location_node``, ``Pmax``, ``c1``,
  ``RUrate``, ``RDrate``, ``CO2mtonperMWh``, ``ave_marg_damages_isrm_LePeule``,
  ``PlannedRetirementYear``.
- ``costs_atb2022.csv``: ``index`` (year index) and the ATB columns of
  :data:`gridlayers.planner.inputs.COST_COLUMNS`.
- ``cases_reference.csv*``: ``Index``, ``Default Value`` (reads ``n_buses_existing``).

Malformed data raises :class:`InputDataError` naming the file and the column.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import (
    COST_COLUMNS,
    REFERENCE_RPS,
    PlannerInputs,
    RPSTarget,
    data_set_of,
)

HOURS = 24
UNIT_FILE = "generators_loc_emission_damages.csv"
#: Adapter name (``PlannerConfig.data_format``) and name of the bundled data set.
DATA_FORMAT = "isone8"
#: Every file :func:`read_isone_inputs` reads (``cases_reference.csv`` is optional);
#: their SHA-256 checksums identify the data in ``plan_summary.json``.
ISONE8_FILES = (
    "cases_reference.csv",
    "nodes.csv",
    "lines.csv",
    UNIT_FILE,
    "costs_atb2022.csv",
    "weights_of_scenarios.csv",
    "load.csv",
    "wind.csv",
    "solar.csv",
    "wind_normalized.csv",
    "solar_normalized.csv",
)
UNIT_SOURCE_COLUMNS = {
    "location_node": "zone",
    "Pmax": "pmax_mw",
    "c1": "cost_usd_per_mwh",
    "RUrate": "ramp_up_mw_per_h",
    "RDrate": "ramp_down_mw_per_h",
    "CO2mtonperMWh": "co2_t_per_mwh",
    "ave_marg_damages_isrm_LePeule": "aq_usd2016_per_mwh",
    "PlannedRetirementYear": "retirement_year",
}
DEFAULT_ONSHORE_NODES = 8


class InputDataError(ValueError):
    """Missing or malformed planner input; the message names the file and column."""

    def __init__(self, path: Path, message: str, column: str | None = None) -> None:
        where = f"{path}" + (f", column {column!r}" if column is not None else "")
        super().__init__(f"{where}: {message}")
        self.path = path
        self.column = column


def bundled_isone8_dir() -> Path:
    """Return the directory of the bundled ISO-NE 8-zone data."""
    return Path(str(resources.files("gridlayers") / "data" / "isone8"))


def _read_csv(path: Path, **kwargs: object) -> pd.DataFrame:
    if not path.is_file():
        raise InputDataError(path, "file not found")
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputDataError(path, f"cannot parse CSV ({err})") from err


def _numeric_columns(df: pd.DataFrame, path: Path, columns: list[str]) -> pd.DataFrame:
    """Return ``df[columns]`` as floats; raise naming the first missing/bad column."""
    for col in columns:
        if col not in df.columns:
            raise InputDataError(path, "required column is missing", col)
    out = df[columns].apply(pd.to_numeric, errors="coerce")
    for col in columns:
        bad = out[col].isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputDataError(path, f"non-numeric or empty value in data row {row + 1}", col)
    return out.astype(float)


def _profile(path: Path, n_rows: int, n_cols: int, *, header: bool) -> np.ndarray:
    """Read a ``rows x nodes`` profile matrix (MW or per unit)."""
    if header:
        df = _read_csv(path, encoding="utf-8-sig", index_col=0)
    else:
        df = _read_csv(path, header=None)
    if df.shape[1] < n_cols:
        raise InputDataError(
            path,
            f"expected {n_cols} node columns, found {df.shape[1]}",
            f"column {df.shape[1] + 1}",
        )
    if df.shape[0] < n_rows:
        raise InputDataError(path, f"expected at least {n_rows} rows, found {df.shape[0]}")
    values = df.iloc[:n_rows, :n_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if not np.isfinite(values).all():
        row, col = (int(v) for v in np.argwhere(~np.isfinite(values))[0])
        label = str(df.columns[col]) if header else f"column {col + 1}"
        problem = f"non-numeric, empty or non-finite value in data row {row + 1}"
        raise InputDataError(path, problem, label)
    return values


def _onshore_node_count(data_dir: Path) -> int:
    path = data_dir / "cases_reference.csv"
    if not path.is_file():
        return DEFAULT_ONSHORE_NODES
    df = _read_csv(path)
    for col in ("Index", "Default Value"):
        if col not in df.columns:
            raise InputDataError(path, "required column is missing", col)
    hit = df.loc[df["Index"] == "n_buses_existing", "Default Value"]
    return int(float(hit.iloc[0])) if len(hit) else DEFAULT_ONSHORE_NODES


def _read_nodes(data_dir: Path) -> tuple[list[str], str]:
    path = data_dir / "nodes.csv"
    df = _read_csv(path)
    for col in ("node", "Zone", "is_slack"):
        if col not in df.columns:
            raise InputDataError(path, "required column is missing", col)
    nodes = _numeric_columns(df, path, ["node", "is_slack"])
    if list(nodes["node"].astype(int)) != list(range(1, len(df) + 1)):
        raise InputDataError(path, "node ids must be 1..N in file order", "node")
    zones = [str(z) for z in df["Zone"]]
    slack = [z for z, s in zip(zones, nodes["is_slack"], strict=True) if s == 1]
    if len(slack) != 1:
        raise InputDataError(path, "exactly one slack node required", "is_slack")
    return zones, slack[0]


def _read_lines(data_dir: Path, zones: list[str], n_onshore: int) -> pd.DataFrame:
    path = data_dir / "lines.csv"
    cols = ["index", "from_node", "to_node", "x", "s_max", "Distance (miles)"]
    df = _numeric_columns(_read_csv(path), path, cols)
    ends = df[["from_node", "to_node"]].astype(int)
    if ((ends < 1) | (ends > len(zones))).any().any():
        raise InputDataError(path, "node id outside nodes.csv", "from_node/to_node")
    existing = (ends["from_node"] <= n_onshore) & (ends["to_node"] <= n_onshore)
    return pd.DataFrame(
        {
            "from_zone": [zones[i - 1] for i in ends["from_node"]],
            "to_zone": [zones[i - 1] for i in ends["to_node"]],
            "x_pu": df["x"].to_numpy(),
            "s_max_mw": df["s_max"].to_numpy(),
            "length_miles": df["Distance (miles)"].to_numpy(),
            "kind": np.where(existing, "existing", "offshore"),
        },
        index=pd.Index(df["index"].astype(int), name="line"),
    )


def _read_units(data_dir: Path, zones: list[str]) -> pd.DataFrame:
    path = data_dir / UNIT_FILE
    raw = _read_csv(path)
    df = _numeric_columns(raw, path, ["index", *UNIT_SOURCE_COLUMNS])
    nodes = df["location_node"].astype(int)
    if ((nodes < 1) | (nodes > len(zones))).any():
        raise InputDataError(path, "node id outside nodes.csv", "location_node")
    units = df[list(UNIT_SOURCE_COLUMNS)].rename(columns=UNIT_SOURCE_COLUMNS)
    units["zone"] = [zones[i - 1] for i in nodes]
    units.index = pd.Index(df["index"].astype(int), name="unit")
    return units


def _read_costs(data_dir: Path) -> pd.DataFrame:
    path = data_dir / "costs_atb2022.csv"
    df = _numeric_columns(_read_csv(path), path, ["index", *COST_COLUMNS])
    df.index = pd.Index(df["index"].astype(int), name="year_index")
    return df[list(COST_COLUMNS)]


def _day_weights(data_dir: Path, config: PlannerConfig) -> tuple[list[int], dict[int, float]]:
    """Return modelled days and their year shares (extreme weights folded, C14)."""
    path = data_dir / "weights_of_scenarios.csv"
    n_norm, n_ext = config.n_normal_days, config.n_extreme_days
    w = _profile(path, n_norm + n_ext, 1, header=False)[:, 0]
    if (w < 0).any():
        row = int(np.flatnonzero(w < 0)[0])
        raise InputDataError(path, f"negative day weight in data row {row + 1}")
    if config.extreme_days:
        weights = {d: float(w[d - 1]) for d in range(1, n_norm + n_ext + 1)}
    else:
        weights = {
            d: float(w[d - 1] + (w[d - 1 + n_norm] if d <= n_ext else 0.0))
            for d in range(1, n_norm + 1)
        }
    days = sorted(weights) if config.days is None else list(config.days)
    unknown = set(days) - set(weights)
    if unknown:
        msg = f"planner.days {sorted(unknown)} not among the data's days {sorted(weights)}"
        raise ValueError(msg)
    total = sum(weights[d] for d in days)
    if not total > 0:
        raise InputDataError(path, f"the weights of the modelled days {days} sum to {total}")
    return days, {d: weights[d] / total for d in days}


def _keyed(matrix: np.ndarray, zones: list[str], keep: list[str], days: list[int]) -> dict:
    """Map a ``rows x nodes`` matrix to ``{(zone, day, hour): value}``."""
    col = {z: i for i, z in enumerate(zones)}
    return {
        (z, d, h): float(matrix[HOURS * (d - 1) + h - 1, col[z]])
        for z in keep
        for d in days
        for h in range(1, HOURS + 1)
    }


def _read_profiles(data_dir: Path, config: PlannerConfig, n_nodes: int) -> tuple:
    """Return load, existing RE (wind + solar), cf_wind, cf_pv matrices (rows x nodes)."""
    n_rows = HOURS * (config.n_normal_days + config.n_extreme_days)
    load = _profile(data_dir / "load.csv", n_rows, n_nodes, header=True)
    re0 = sum(
        _profile(data_dir / f, n_rows, n_nodes, header=False) for f in ("wind.csv", "solar.csv")
    )
    cf_w = _profile(data_dir / "wind_normalized.csv", n_rows, n_nodes, header=False)
    cf_s = _profile(data_dir / "solar_normalized.csv", n_rows, n_nodes, header=False)
    return load, re0, cf_w, cf_s


def read_isone_inputs(config: PlannerConfig) -> PlannerInputs:
    """Read the ISO-NE 8-zone data set into :class:`PlannerInputs`.

    Parameters
    ----------
    config : PlannerConfig
        Uses ``data_dir`` (None = bundled isone8), ``zones``, ``days``,
        ``n_normal_days``, ``n_extreme_days`` and ``extreme_days``.

    Returns
    -------
    PlannerInputs
        Profiles in MW (demand before growth), per-unit availabilities, the
        existing fleet, corridors, cables, ATB costs and the RPS table.

    Raises
    ------
    InputDataError
        A file is missing or a required column is missing or non-numeric.

    """
    data_dir = bundled_isone8_dir() if config.data_dir is None else Path(config.data_dir)
    zones, slack = _read_nodes(data_dir)
    n_onshore = _onshore_node_count(data_dir)
    keep = zones if config.zones is None else [z for z in zones if z in set(config.zones)]
    if config.zones is not None and len(keep) != len(set(config.zones)):
        msg = f"planner.zones {sorted(set(config.zones) - set(zones))} not in nodes.csv"
        raise ValueError(msg)
    days, weights = _day_weights(data_dir, config)
    load, re0, cf_w, cf_s = _read_profiles(data_dir, config, len(zones))
    lines = _read_lines(data_dir, zones, n_onshore)
    lines = lines[lines["from_zone"].isin(keep) & lines["to_zone"].isin(keep)]
    units = _read_units(data_dir, zones)
    units = units[units["zone"].isin(keep)]
    data_set = data_set_of(
        data_dir,
        ISONE8_FILES,
        data_format=DATA_FORMAT,
        bundled=config.data_dir is None,
        given=config.data_dir,
    )
    rps = tuple(
        RPSTarget(t.state, t.share, t.first_epoch, tuple(z for z in t.zones if z in keep))
        for t in REFERENCE_RPS
        if any(z in keep for z in t.zones)
    )
    inputs = PlannerInputs(
        zones=tuple(keep),
        offshore_zones=frozenset(zones[n_onshore:]) & frozenset(keep),
        slack_zone=slack if slack in keep else keep[0],
        days=tuple(days),
        hours=tuple(range(1, HOURS + 1)),
        day_weight=weights,
        demand_mw=_keyed(load, zones, keep, days),
        existing_re_mw=_keyed(re0, zones, keep, days),
        cf_wind=_keyed(cf_w, zones, keep, days),
        cf_pv=_keyed(cf_s, zones, keep, days),
        units=units,
        lines=lines,
        costs=_read_costs(data_dir),
        rps=rps,
        source=f"bundled {DATA_FORMAT}" if config.data_dir is None else data_set.name,
        data_set=data_set,
    )
    inputs.validate()
    return inputs
