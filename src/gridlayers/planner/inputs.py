"""Solver-independent input data of the planner.

:class:`PlannerInputs` is what every planner module reads. Input adapters (e.g.
:mod:`gridlayers.planner.inputs_isone`) build it from files; tests build it by hand.
Profiles are keyed ``(zone, day, hour)`` with 1-based days and hours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: Columns of :attr:`PlannerInputs.units` (existing thermal fleet), with units.
UNIT_COLUMNS = {
    "zone": "zone (bus) name",
    "pmax_mw": "MW",
    "cost_usd_per_mwh": "$/MWh (linear energy cost c1)",
    "ramp_up_mw_per_h": "MW/h",
    "ramp_down_mw_per_h": "MW/h",
    "co2_t_per_mwh": "t/MWh",
    "aq_usd2016_per_mwh": "2016$/MWh (marginal air-quality damage)",
    "retirement_year": "calendar year",
}
#: Columns of :attr:`PlannerInputs.lines`.
LINE_COLUMNS = {
    "from_zone": "zone name",
    "to_zone": "zone name",
    "x_pu": "per unit on 1 MVA",
    "s_max_mw": "MW (existing corridors)",
    "length_miles": "miles",
    "kind": "'existing' (upgradable corridor) or 'offshore' (candidate cable)",
}
#: Columns of :attr:`PlannerInputs.costs` indexed by year index k (calendar base_year + k).
COST_COLUMNS = (
    "Cp_ng_cc_ccs",
    "fom_ng_cc_ccs",
    "vom_ng_cc_ccs",
    "Cp_ng_ct",
    "fom_ng_ct",
    "vom_ng_ct",
    "Cp_wind",
    "fom_wind",
    "CE",
    "CP",
    "Cp_pv",
    "fom_pv",
    "fom_battery",
)


@dataclass(frozen=True)
class CableType:
    """Offshore cable type: capacity and cost curve.

    Parameters
    ----------
    name : str
        Label (e.g. ``"hvac400"``).
    capacity_mw : float
        Rating, MW.
    is_ac : bool
        AC cables obey the angle (KVL) relation; HVDC cables are transport links.
    cost_coeffs : tuple of float
        ``(a2, a1, a0)``: cost in $ = ``scale * (a2 L^2 + a1 L + a0)`` with L in km.

    """

    name: str
    capacity_mw: float
    is_ac: bool
    cost_coeffs: tuple[float, float, float]

    def cost_usd(self, length_miles: float, scale_usd: float) -> float:
        """Return the total cost of one cable of this type, $.

        Parameters
        ----------
        length_miles : float
            Route length, miles.
        scale_usd : float
            Multiplier ``F`` of the cost polynomial, $.

        """
        length_km = 1.609 * length_miles
        a2, a1, a0 = self.cost_coeffs
        return scale_usd * (a2 * length_km**2 + a1 * length_km + a0)


#: Reference cable types (section 2 of the reference): HVAC 400, HVDC 1400, HVDC 2200.
REFERENCE_CABLES = (
    CableType("hvac400", 400.0, True, (0.007225, 0.767, 32.8125)),
    CableType("hvdc1400", 1400.0, False, (0.0, 1.36, 366.78)),
    CableType("hvdc2200", 2200.0, False, (0.0, 1.8, 562.08)),
)
#: Scale F of the cable cost polynomials, $.
REFERENCE_CABLE_COST_SCALE_USD = 0.7340821889389222 * 1.5285 * 1.09 * 1e6


@dataclass(frozen=True)
class RPSTarget:
    """Renewable portfolio standard of one state, enforced per zone.

    Parameters
    ----------
    state : str
        State label.
    share : float
        Required renewable share of zonal demand, per unit.
    first_epoch : int
        First epoch (1-based) in which the target applies.
    zones : tuple of str
        Zones of the state.

    """

    state: str
    share: float
    first_epoch: int
    zones: tuple[str, ...]


#: Reference RPS table (section 2 of the reference).
REFERENCE_RPS = (
    RPSTarget("ME", 0.80, 2, ("ME",)),
    RPSTarget("NH", 0.252, 1, ("NH",)),
    RPSTarget("VT", 0.75, 2, ("VT",)),
    RPSTarget("MA", 0.35, 2, ("WCMA", "NEMA", "SEMA")),
    RPSTarget("CT", 0.48, 2, ("CT",)),
    RPSTarget("RI", 0.385, 3, ("RI",)),
)


@dataclass(frozen=True)
class DataSet:
    """Where planner inputs came from, recorded without any path of this machine.

    Parameters
    ----------
    name : str
        Data set name: the adapter's name for bundled data (``"isone8"``), else the
        name of the data folder.
    data_format : str
        Input adapter (``PlannerConfig.data_format``).
    bundled : bool
        The data shipped with gridlayers (``planner.data_dir`` not set).
    sha256 : str
        SHA-256 (hex) over the files read, in name order: each file's name, a NUL
        byte, its SHA-256 and a newline. Changes whenever a data file changes.
    files : dict of str to str
        SHA-256 (hex) of each file read, by file name.
    path : str or None
        ``planner.data_dir`` as written in the scenario when it is a relative path;
        None for bundled data or an absolute path (machine-specific).

    """

    name: str
    data_format: str
    bundled: bool
    sha256: str
    files: dict[str, str]
    path: str | None = None


def data_set_of(
    data_dir: Path,
    file_names: tuple[str, ...],
    *,
    data_format: str,
    bundled: bool,
    given: Path | None = None,
) -> DataSet:
    """Checksum the files ``file_names`` of ``data_dir`` that exist (a :class:`DataSet`).

    Parameters
    ----------
    data_dir : pathlib.Path
        Folder read by the adapter.
    file_names : tuple of str
        Files the adapter reads (missing optional ones are skipped).
    data_format : str
        Adapter name; also the data set's name when ``bundled``.
    bundled : bool
        ``data_dir`` is the data shipped with gridlayers.
    given : pathlib.Path, optional
        ``planner.data_dir`` as configured; recorded only if relative.

    Returns
    -------
    DataSet
        Name, combined and per-file SHA-256.

    """
    files = {
        name: hashlib.sha256((data_dir / name).read_bytes()).hexdigest()
        for name in sorted(file_names)
        if (data_dir / name).is_file()
    }
    total = hashlib.sha256()
    for name, digest in files.items():
        total.update(f"{name}\0{digest}\n".encode())
    relative = given is not None and not Path(given).is_absolute()
    return DataSet(
        name=data_format if bundled else Path(data_dir).resolve().name,
        data_format=data_format,
        bundled=bundled,
        sha256=total.hexdigest(),
        files=files,
        path=Path(given).as_posix() if relative else None,
    )


@dataclass(frozen=True)
class PlannerInputs:
    """All data a planner run reads (solver independent).

    Parameters
    ----------
    zones : tuple of str
        Zone (bus) names, in file order.
    offshore_zones : frozenset of str
        Offshore nodes (no load, no new onshore builds).
    slack_zone : str
        Zone whose voltage angle is 0.
    days : tuple of int
        Modelled representative days (1-based).
    hours : tuple of int
        Hours of a day (1..24).
    day_weight : dict
        Share of the year represented by each modelled day, per unit (sums to 1).
    demand_mw : dict
        Base-year demand ``(zone, day, hour) -> MW`` before growth.
    existing_re_mw : dict
        Exogenous renewable output (existing wind + PV, offshore wind), MW.
    cf_wind, cf_pv : dict
        Availability per MW of new onshore wind / PV, per unit.
    units : pandas.DataFrame
        Existing thermal units, columns :data:`UNIT_COLUMNS`.
    lines : pandas.DataFrame
        Corridors and candidate cables, columns :data:`LINE_COLUMNS`.
    costs : pandas.DataFrame
        ATB costs by year index (columns :data:`COST_COLUMNS`, file units).
    rps : tuple of RPSTarget
        State RPS targets.
    cable_types : tuple of CableType
        Offshore cable options.
    cable_cost_scale_usd : float
        Scale F of the cable cost curves, $.
    source : str
        Human-readable origin of the data, without machine paths (e.g. ``"bundled
        isone8"``, ``"toy"``).
    data_set : DataSet, optional
        Name and checksums of the files read (adapters reading files set it).

    """

    zones: tuple[str, ...]
    offshore_zones: frozenset[str]
    slack_zone: str
    days: tuple[int, ...]
    hours: tuple[int, ...]
    day_weight: dict[int, float]
    demand_mw: dict[tuple[str, int, int], float]
    existing_re_mw: dict[tuple[str, int, int], float]
    cf_wind: dict[tuple[str, int, int], float]
    cf_pv: dict[tuple[str, int, int], float]
    units: pd.DataFrame
    lines: pd.DataFrame
    costs: pd.DataFrame
    rps: tuple[RPSTarget, ...] = REFERENCE_RPS
    cable_types: tuple[CableType, ...] = REFERENCE_CABLES
    cable_cost_scale_usd: float = REFERENCE_CABLE_COST_SCALE_USD
    source: str = field(default="in-memory")
    data_set: DataSet | None = None

    @property
    def onshore_zones(self) -> tuple[str, ...]:
        """Zones that are not offshore, in order."""
        return tuple(z for z in self.zones if z not in self.offshore_zones)

    def validate(self) -> None:
        """Check internal consistency; raise ``ValueError`` naming the problem."""
        zone_set = set(self.zones)
        if self.slack_zone not in zone_set:
            msg = f"slack zone {self.slack_zone!r} not in zones"
            raise ValueError(msg)
        for name, columns in (("units", UNIT_COLUMNS), ("lines", LINE_COLUMNS)):
            missing = set(columns) - set(getattr(self, name).columns)
            if missing:
                msg = f"PlannerInputs.{name} lacks columns {sorted(missing)}"
                raise ValueError(msg)
        bad = set(self.units["zone"]) - zone_set
        bad |= (set(self.lines["from_zone"]) | set(self.lines["to_zone"])) - zone_set
        if bad:
            msg = f"units/lines refer to unknown zones {sorted(bad)}"
            raise ValueError(msg)
        if abs(sum(self.day_weight[d] for d in self.days) - 1.0) > 1e-6:
            msg = "day weights must sum to 1"
            raise ValueError(msg)
        missing_costs = set(COST_COLUMNS) - set(self.costs.columns)
        if missing_costs:
            msg = f"PlannerInputs.costs lacks columns {sorted(missing_costs)}"
            raise ValueError(msg)
