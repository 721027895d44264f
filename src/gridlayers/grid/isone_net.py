"""The planner's ISO-NE 8-zone system as a pandapower transmission net the TSO market clears.

The reference study (``scenarios/isone-reference.yaml``, ``docs/reference-study.md``)
co-simulates the same system the capacity expansion planner plans. This module turns
the bundled planner data (``data/isone8``, read by the planner's own adapter
:func:`gridlayers.planner.inputs_isone.read_isone_inputs`) into that net:

* **buses**: one 345 kV bus per onshore zone (ME, NH, VT, WCMA, NEMA, CT, RI, SEMA, in
  the data's order; ``bus.name`` and ``bus.zone`` = zone). Offshore nodes have no
  existing connection and are left out.
* **lines**: the 12 existing inter-zonal corridors. Reactance and resistance from the
  data's per-unit values on its 1 MVA / 345 kV base (``x_ohm = x_pu · 345² / 1``), split
  over the corridor length (miles × 1.609344 km), so the DC flow is the planner's
  ``f = Δθ / x_pu`` (MW). The transfer limit ``s_max`` (MW) becomes
  ``max_i_ka = s_max / (√3 · 345 kV)`` with ``max_loading_percent = 100``: pandapower's
  DC-OPF ``RATE_A``, which the market (:mod:`gridlayers.market.network`) honours as the
  branch limit. No charging capacitance (the market is a DC-OPF).
* **generators**: the existing thermal fleet available in a planner epoch (the
  planner's own retirement rule, :func:`gridlayers.planner.thermal.unit_available`),
  aggregated per zone and technology into one controllable ``gen`` each:
  ``max_p_mw`` = Σ Pmax (MW), ``min_p_mw`` = 0 (the planner has no unit commitment),
  linear cost ``poly_cost.cp1_eur_per_mw`` = the capacity-weighted mean of the units'
  energy cost ``c1`` ($/MWh; read as $ like every cost in gridlayers). Technologies:
  ``nuclear``, ``coal``, ``oil``, ``gas`` (combined cycle, steam, IC and other gas
  units, c1 ≈ 56 $/MWh) and ``gas_ct`` (gas turbines, ``Type = Gas_GT``, c1 ≈ 343 $/MWh).
  Within a class the data's costs differ only by its tie-break ``Pmax / 1000`` $/MWh
  (at most 1.7 $/MWh), which the aggregate averages. ``gen.technology`` and
  ``gen.units`` (number of units) record the aggregation.
* **slack**: an ``ext_grid`` at the planner's slack zone (SEMA) with 0 MW limits and no
  cost: an angle reference only.
* **loads**: one per zone, ``p_mw`` = the zone's load in the data's system peak hour
  (MW, the largest hour of all ten representative days, 24,435 MW in total), the
  "annual peak" a transmission ``load_profile`` scales. ``q_mvar`` = 0.

The bulk loads follow the planner's hourly load through the transmission
``load_profile: isone8_day<d>`` (:func:`planner_day_load_scale`).

Build the bundled net with ``python -m gridlayers.grid.isone_net --out
scenarios/networks/isone8.json`` (``--epoch``, ``--data-dir``).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import PlannerInputs
from gridlayers.planner.inputs_isone import UNIT_FILE, bundled_isone8_dir, read_isone_inputs
from gridlayers.planner.new_gas import GAS_TECHS
from gridlayers.planner.thermal import unit_available
from gridlayers.planner.timescale import end_year_index

#: Voltage base of the data's per-unit values and of every bus of the net (kV).
BASE_KV = 345.0
#: Power base of the data's per-unit values (MVA): ``x_ohm = x_pu * BASE_KV**2 / BASE_MVA``.
BASE_MVA = 1.0
#: System base of the generated net (MVA); DC flows do not depend on it.
NET_SN_MVA = 100.0
KM_PER_MILE = 1.609344
#: Transmission ``load_profile`` values that follow a planner day: ``isone8_day<d>``.
PLANNER_PROFILE_PATTERN = re.compile(r"^isone8_day(\d+)$")
#: Data days (5 normal + 5 extreme) a planner load profile may name.
PLANNER_PROFILE_DAYS = range(1, 11)
HOURS_PER_DAY = 24
QUARTER_HOURS_PER_HOUR = 4


def _all_days_config(data_dir: Path | None) -> PlannerConfig:
    """Planner config that reads every data day (normal and extreme) of ``data_dir``."""
    return PlannerConfig(data_dir=data_dir, extreme_days=True)


@functools.cache
def read_planner_data(data_dir: Path | None = None) -> PlannerInputs:
    """Read the planner data the net is built from, with all ten representative days.

    Parameters
    ----------
    data_dir : Path, optional
        MOTEP-OSW ISO-NE data directory; None = the bundled ``data/isone8``.

    Returns
    -------
    PlannerInputs
        Read once per process and directory; shared between callers (do not modify).

    """
    return read_isone_inputs(_all_days_config(data_dir))


def unit_technologies(data_dir: Path | None = None) -> pd.Series:
    """Return the technology class of every unit of the data (index: unit ``index``).

    ``type`` lower-cased (``nuclear``, ``coal``, ``oil``, ``gas``), with gas turbines
    (``Type == "Gas_GT"``) as ``gas_ct``.
    """
    folder = bundled_isone8_dir() if data_dir is None else Path(data_dir)
    raw = pd.read_csv(folder / UNIT_FILE)
    tech = raw["type"].astype(str).str.strip().str.lower()
    tech = tech.where(raw["Type"].astype(str).str.strip() != "Gas_GT", "gas_ct")
    return pd.Series(tech.to_numpy(), index=raw["index"].astype(int), name="technology")


def zone_fleet(
    inputs: PlannerInputs, technologies: pd.Series, config: PlannerConfig, epoch: int
) -> pd.DataFrame:
    """Aggregate the units available in ``epoch`` per zone and technology.

    Parameters
    ----------
    inputs : PlannerInputs
        Planner data (``units``: zone, pmax_mw, cost_usd_per_mwh, retirement_year).
    technologies : pd.Series
        Technology per unit index (:func:`unit_technologies`).
    config : PlannerConfig
        Planner settings of the retirement rule (``base_year``, ``epoch_years``,
        ``exogenous_retirements``).
    epoch : int
        Planner epoch whose fleet is built (1 = the first, ``base_year + epoch_years``).

    Returns
    -------
    pd.DataFrame
        Index (zone, technology) in the data's zone order; columns ``pmax_mw`` (MW),
        ``cost_usd_per_mwh`` (capacity-weighted mean c1, $/MWh) and ``units`` (count).

    """
    units = inputs.units
    keep = [unit_available(config, units.at[i, "retirement_year"], epoch) for i in units.index]
    units = units[keep].assign(technology=technologies.reindex(units.index[keep]).to_numpy())
    if units["technology"].isna().any():
        msg = "units without a technology in the generator file"
        raise ValueError(msg)
    units = units.assign(cost_x_mw=units["cost_usd_per_mwh"] * units["pmax_mw"])
    grouped = units.groupby(["zone", "technology"], sort=False)
    out = pd.DataFrame(
        {
            "pmax_mw": grouped["pmax_mw"].sum(),
            "cost_x_mw": grouped["cost_x_mw"].sum(),
            "units": grouped.size(),
        }
    )
    out["cost_usd_per_mwh"] = out.pop("cost_x_mw") / out["pmax_mw"]
    order = {z: k for k, z in enumerate(inputs.zones)}
    ranked = sorted(out.index, key=lambda zt: (order[zt[0]], zt[1]))
    return out.loc[ranked]


def system_peak_hour(inputs: PlannerInputs) -> tuple[int, int]:
    """Return ``(day, hour)`` of the largest total onshore load of the data (1-based)."""
    zones = inputs.onshore_zones
    return max(
        ((d, h) for d in inputs.days for h in inputs.hours),
        key=lambda t: (sum(inputs.demand_mw[z, *t] for z in zones), -t[0], -t[1]),
    )


def _line_resistance_pu(data_dir: Path | None) -> pd.Series:
    """Per-unit resistance ``r`` of every line of ``lines.csv`` (index: line ``index``)."""
    folder = bundled_isone8_dir() if data_dir is None else Path(data_dir)
    raw = pd.read_csv(folder / "lines.csv")
    return pd.Series(raw["r"].to_numpy(float), index=raw["index"].astype(int))


def _add_lines(
    net: pp.pandapowerNet, inputs: PlannerInputs, bus: dict[str, int], r_pu: pd.Series
) -> None:
    raw = inputs.lines[inputs.lines["kind"] == "existing"]
    z_base = BASE_KV**2 / BASE_MVA
    for line_id, row in raw.iterrows():
        length_km = row["length_miles"] * KM_PER_MILE
        pp.create_line_from_parameters(
            net,
            bus[row["from_zone"]],
            bus[row["to_zone"]],
            length_km=length_km,
            r_ohm_per_km=float(r_pu[line_id]) * z_base / length_km,
            x_ohm_per_km=row["x_pu"] * z_base / length_km,
            c_nf_per_km=0.0,
            max_i_ka=row["s_max_mw"] / (math.sqrt(3) * BASE_KV),
            max_loading_percent=100.0,
            name=f"{row['from_zone']}-{row['to_zone']}",
        )
        net.line.at[net.line.index[-1], "planner_line"] = int(line_id)
    net.line["planner_line"] = net.line["planner_line"].astype(int)


def _add_gen(
    net: pp.pandapowerNet, bus: int, zone: str, tech: str, p_max_mw: float, cost: float, units: int
) -> None:
    g = pp.create_gen(
        net,
        bus,
        p_mw=0.0,
        vm_pu=1.0,
        max_p_mw=p_max_mw,
        min_p_mw=0.0,
        controllable=True,
        name=f"{zone} {tech}",
    )
    net.gen.at[g, "technology"] = tech
    net.gen.at[g, "units"] = units
    pp.create_poly_cost(net, g, "gen", cp1_eur_per_mw=cost)


def _plan_zone_mw(plan: dict, tech: str) -> dict[str, float]:
    """Return the new capacity of ``tech`` per zone of a plan summary (MW)."""
    try:
        return dict(plan["capacity_by_zone_mw"][tech])
    except KeyError:
        msg = (
            f"the plan summary has no capacity_by_zone_mw[{tech!r}]; re-plan with this "
            "version of gridlayers (gridlayers plan / loop write it)"
        )
        raise ValueError(msg) from None


def add_plan(
    net: pp.pandapowerNet,
    plan: dict,
    *,
    day: int,
    epoch: int,
    data_dir: Path | None = None,
    config: PlannerConfig | None = None,
) -> None:
    """Add a plan's new capacity to an ISO-NE net built by :func:`build_isone8_net` (in place).

    Parameters
    ----------
    net : pandapowerNet
        Net of :func:`build_isone8_net` (bus names are zones, ``line.planner_line`` set).
    plan : dict
        A ``plan_summary.json`` of the planner on this data (``capacity_by_zone_mw``,
        ``upgrades``, ``ldas``); capacities are the plan's totals over its horizon.
    day : int
        Data day (1..10) whose mean wind and PV availability the new wind and PV get.
    epoch : int
        Planner epoch of the variable cost of new gas (ATB VOM at its last year).
    data_dir : Path, optional
        Planner data directory; None = bundled.
    config : PlannerConfig, optional
        ``base_year``/``epoch_years`` of the plan (default: the planner defaults).

    Notes
    -----
    * New gas (``gas_cc_ccs``, ``gas_ct``) per zone: one generator each at the planner's
      variable cost (ATB VOM of the epoch's last year, $/MWh; the planner charges new
      gas no fuel).
    * New wind and PV per zone, plus the DER PV of the plan's LDAs in their zone: one
      zero-cost generator each with ``max_p_mw`` = capacity × the zone's mean per-MW
      availability over the 24 hours of ``day``: flat over the day (the market
      simulator scales only loads over time), energy-equivalent for the day.
    * Corridor upgrades (``upgrades``) whose epoch is ``<= epoch``: a parallel circuit
      (``line.parallel`` + 1: twice the rating, half the reactance, as the planner's
      upgrade adds a corridor of the same ``s_max`` and ``x``).
    * Not added: utility and DER batteries (the market has no storage), offshore
      cables and offshore wind.

    """
    config = config or PlannerConfig(data_dir=data_dir)
    inputs = read_planner_data(data_dir)
    bus = {str(name): int(b) for b, name in net.bus.name.items()}
    vom_year = end_year_index(config, epoch)
    for tech, (_, _, vom_col, _) in GAS_TECHS.items():
        cost = float(inputs.costs.at[vom_year, vom_col])
        for zone, mw in _plan_zone_mw(plan, tech).items():
            if mw > 0:
                _add_gen(net, bus[zone], zone, tech, float(mw), cost, 1)
    der_pv = dict.fromkeys(bus, 0.0)
    for lda in plan.get("ldas", {}).values():
        der_pv[lda["zone"]] += float(lda["der_pv_mw"])
    for tech, profile in (("wind", inputs.cf_wind), ("pv", inputs.cf_pv)):
        capacity = _plan_zone_mw(plan, tech)
        for zone in bus:
            mw = capacity.get(zone, 0.0) + (der_pv[zone] if tech == "pv" else 0.0)
            cf = float(np.mean([profile[zone, day, h] for h in inputs.hours]))
            if mw * cf > 0:
                _add_gen(net, bus[zone], zone, tech, mw * cf, 0.0, 1)
    for upgrade in plan.get("upgrades", []):
        if int(upgrade["epoch"]) <= epoch:
            rows = net.line.index[net.line.planner_line == int(upgrade["line"])]
            net.line.loc[rows, "parallel"] += 1
    net.gen["units"] = net.gen["units"].astype(int)


def build_isone8_net(
    data_dir: Path | None = None,
    *,
    epoch: int = 1,
    plan: dict | None = None,
    day: int | None = None,
    load_scaling: float = 1.0,
    planner: PlannerConfig | None = None,
) -> pp.pandapowerNet:
    """Build the ISO-NE 8-zone transmission net from the planner data.

    Parameters
    ----------
    data_dir : Path, optional
        MOTEP-OSW ISO-NE data directory; None = the bundled ``data/isone8``.
    epoch : int
        Planner epoch whose existing fleet is included (units with
        ``retirement_year >= base_year + epoch_years * epoch``; default 1 = 2027).
    plan : dict, optional
        A plan summary whose new capacity is added by :func:`add_plan` (needs ``day``).
    day : int, optional
        Data day of the plan's wind and PV availability.
    load_scaling : float
        Multiplier (-) on every zone's peak-hour load, e.g. the planner's load growth
        ``(1 + g)^(ye - 1)`` to the epoch's last year.
    planner : PlannerConfig, optional
        Planner settings of the retirement rule and the epochs (``base_year``,
        ``epoch_years``, ``exogenous_retirements``); default the planner's defaults.

    Returns
    -------
    pandapowerNet
        One bus per onshore zone, the existing corridors with their transfer limits,
        one generator per zone and technology with its marginal cost, one load per zone
        at its share of the system peak hour; see the module docstring for units.

    """
    config = planner or _all_days_config(data_dir)
    inputs = read_planner_data(data_dir)
    zones = list(inputs.onshore_zones)
    net = pp.create_empty_network(name=f"ISO-NE 8-zone, planner epoch {epoch}", sn_mva=NET_SN_MVA)
    bus = {z: int(pp.create_bus(net, vn_kv=BASE_KV, name=z, zone=z)) for z in zones}
    _add_lines(net, inputs, bus, _line_resistance_pu(data_dir))
    fleet = zone_fleet(inputs, unit_technologies(data_dir), config, epoch)
    for (zone, tech), row in fleet.iterrows():
        cost = float(row["cost_usd_per_mwh"])
        _add_gen(net, bus[zone], zone, tech, float(row["pmax_mw"]), cost, int(row["units"]))
    net.gen["units"] = net.gen["units"].astype(int)
    slack = pp.create_ext_grid(
        net, bus[inputs.slack_zone], vm_pu=1.0, max_p_mw=0.0, min_p_mw=0.0, name="slack"
    )
    pp.create_poly_cost(net, slack, "ext_grid", cp1_eur_per_mw=0.0)
    peak_day, peak_hour = system_peak_hour(inputs)
    for z in zones:
        p_mw = inputs.demand_mw[z, peak_day, peak_hour] * load_scaling
        pp.create_load(net, bus[z], p_mw=p_mw, q_mvar=0.0, name=z)
    if plan is not None:
        if day is None:
            msg = "a plan needs the day whose wind and PV availability it gets"
            raise ValueError(msg)
        add_plan(net, plan, day=day, epoch=epoch, data_dir=data_dir, config=config)
        net.name = f"ISO-NE 8-zone, planner epoch {epoch}, with a plan (day {day})"
    return net


@dataclass(frozen=True)
class PlannerDayProfile:
    """System load shape of one planner day, hour by hour.

    Attributes
    ----------
    scale : np.ndarray
        Shape (24,): system net load (onshore load minus the existing wind and solar
        output the planner treats as exogenous) over the data's peak-hour load (-).
    peak_mw : float
        Total onshore load in the data's system peak hour (MW), the net's total load.

    """

    scale: np.ndarray
    peak_mw: float


def planner_day_profile(day: int, data_dir: Path | None = None) -> PlannerDayProfile:
    """Return the hourly system load shape of data day ``day`` (1..10).

    Raises
    ------
    ValueError
        ``day`` is not a day of the data.

    """
    if day not in PLANNER_PROFILE_DAYS:
        msg = f"planner day {day} is not a day of the ISO-NE data (1..{PLANNER_PROFILE_DAYS[-1]})"
        raise ValueError(msg)
    inputs = read_planner_data(data_dir)
    zones = inputs.onshore_zones
    peak = system_peak_hour(inputs)
    peak_mw = sum(inputs.demand_mw[z, *peak] for z in zones)
    net_mw = [
        sum(inputs.demand_mw[z, day, h] - inputs.existing_re_mw[z, day, h] for z in zones)
        for h in inputs.hours
    ]
    return PlannerDayProfile(np.asarray(net_mw) / peak_mw, peak_mw)


def planner_profile_day(profile: str) -> int | None:
    """Return ``d`` of a ``load_profile`` value ``isone8_day<d>``, None for other profiles."""
    hit = PLANNER_PROFILE_PATTERN.match(profile)
    return int(hit.group(1)) if hit else None


def planner_day_quarter_hours(day: int, data_dir: Path | None = None) -> np.ndarray:
    """Return the day's scale as 96 quarter-hour values (each hour's value held, -)."""
    return np.repeat(planner_day_profile(day, data_dir).scale, QUARTER_HOURS_PER_HOUR)


def main(argv: list[str] | None = None) -> None:
    """Write the generated net as pandapower JSON (``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="pandapower JSON file to write")
    parser.add_argument("--epoch", type=int, default=1, help="planner epoch of the fleet")
    parser.add_argument("--data-dir", type=Path, default=None, help="planner data directory")
    parser.add_argument("--plan", type=Path, default=None, help="plan_summary.json to add")
    parser.add_argument("--day", type=int, default=None, help="data day of the plan's wind/PV")
    parser.add_argument("--load-scaling", type=float, default=1.0, help="multiplier on loads")
    args = parser.parse_args(argv)
    plan = None if args.plan is None else json.loads(args.plan.read_text(encoding="utf-8"))
    net = build_isone8_net(
        args.data_dir, epoch=args.epoch, plan=plan, day=args.day, load_scaling=args.load_scaling
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pp.to_json(net, str(args.out))
    total = net.gen.max_p_mw.sum()
    print(  # noqa: T201 - command-line output
        f"wrote {args.out}: {len(net.bus)} zones, {len(net.line)} corridors, "
        f"{len(net.gen)} generators ({total:,.0f} MW), peak load {net.load.p_mw.sum():,.0f} MW"
    )


if __name__ == "__main__":
    main()
