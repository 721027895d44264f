"""Calibrating a published transmission case to realistic prices and congestion.

Applied by :func:`gridlayers.grid.networks.transmission_network` once the case is
loaded. Every step edits the pandapower net itself (``load.scaling``, generator
``max_p_mw``, ``poly_cost``, branch ``max_loading_percent``), never the market model,
so pandapower's ``rundcopp`` and :class:`gridlayers.market.TransmissionMarket` clear
the same calibrated problem. Each step is an option of the scenario's
``transmission`` section (see ``docs/scenario-reference.md``); with none set the net
is returned unchanged.

Steps, in this order:

1. ``load_scaling``: ``net.load.scaling`` is multiplied by the factor (-).
2. ``availability``: ``max_p_mw`` of every generator of a technology is multiplied by
   its available fraction (-); ``p_mw`` and ``min_p_mw`` are capped at the new maximum.
3. ``marginal_cost_usd_per_mwh``: the linear coefficient ``cp1_eur_per_mw`` of every
   generator's ``poly_cost`` row is set to its technology's marginal cost ($/MWh; the
   net's currency label is ignored, as everywhere in gridlayers). The quadratic
   (``cp2``) and constant (``cp0``) terms of the case are kept.
4. ``meshed_branch_rating_factor``: ``max_loading_percent`` of every in-service line and
   two-winding transformer that is *not a bridge* of the grid graph (its outage would
   not split the grid) is multiplied by the factor (-). Radial branches (generator
   step-up transformers, load taps) keep their rating; branches without a limit stay
   unlimited.

Technologies come from a generator technology table (``element, index, technology``
and optionally ``bus``), bundled (``activsg200``) or a CSV file of the user.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx
import pandapower as pp
import pandapower.topology as top
import pandas as pd

#: Generator tables a technology table may refer to.
GENERATOR_TABLES = ("gen", "sgen", "ext_grid")
#: Columns every technology table must have (``bus`` is optional and checked if given).
TABLE_COLUMNS = ("element", "index", "technology")


def _bundled_dir() -> Path:
    return Path(str(resources.files("gridlayers") / "data" / "generator_technologies"))


def bundled_technology_tables() -> list[str]:
    """Return the names of the generator technology tables bundled with gridlayers."""
    return sorted(p.stem for p in _bundled_dir().glob("*.csv"))


def technology_table_path(spec: str) -> Path:
    """Return the CSV file of a technology table: a bundled name or a ``.csv`` path.

    Raises
    ------
    ValueError
        Unknown bundled name, or the CSV file does not exist.

    """
    if spec.endswith(".csv"):
        path = Path(spec)
        if not path.is_file():
            msg = f"generator technology table {str(path)!r} not found"
            raise ValueError(msg)
        return path
    names = bundled_technology_tables()
    if spec not in names:
        msg = (
            f"unknown bundled generator technology table {spec!r} (bundled: {', '.join(names)}; "
            "or give a path ending in '.csv')"
        )
        raise ValueError(msg)
    return _bundled_dir() / f"{spec}.csv"


def read_technology_table(spec: str) -> pd.DataFrame:
    """Read and check a generator technology table.

    Parameters
    ----------
    spec : str
        Bundled table name (e.g. ``"activsg200"``) or path of a CSV file (``#`` starts a
        comment line).

    Returns
    -------
    DataFrame
        Columns ``element`` (gen/sgen/ext_grid), ``index`` (int), ``technology`` (str) and,
        if the file has it, ``bus`` (int); one row per generator.

    Raises
    ------
    ValueError
        Missing file or columns, unknown element tables, empty technologies, or a
        generator listed twice.

    """
    path = technology_table_path(spec)
    try:
        table = pd.read_csv(path, comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        msg = f"cannot read generator technology table {str(path)!r}: {exc}"
        raise ValueError(msg) from None
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        msg = f"generator technology table {str(path)!r} lacks the columns {missing}"
        raise ValueError(msg)
    bad = sorted(set(table.element.astype(str)) - set(GENERATOR_TABLES))
    if bad:
        msg = (
            f"generator technology table {str(path)!r}: element must be gen, sgen or ext_grid, "
            f"got {bad}"
        )
        raise ValueError(msg)
    technology = table.technology.astype(str).str.strip()
    if table.technology.isna().any() or (technology == "").any():
        msg = f"generator technology table {str(path)!r} has rows without a technology"
        raise ValueError(msg)
    cols = ["index"] + (["bus"] if "bus" in table.columns else [])
    numbers = table[cols].apply(pd.to_numeric, errors="coerce")
    if numbers.isna().any().any() or (numbers % 1 != 0).any().any():
        msg = f"generator technology table {str(path)!r}: index and bus must be integers"
        raise ValueError(msg)
    out = pd.DataFrame(
        {
            "element": table.element.astype(str),
            "index": numbers["index"].astype(int),
            "technology": technology,
        }
    )
    if "bus" in numbers:
        out["bus"] = numbers["bus"].astype(int)
    twice = out.duplicated(["element", "index"])
    if twice.any():
        first = out[twice].iloc[0]
        msg = (
            f"generator technology table {str(path)!r} lists {first.element} {first['index']} "
            "more than once"
        )
        raise ValueError(msg)
    return out


def _check_table_against_net(table: pd.DataFrame, net: pp.pandapowerNet, spec: str) -> None:
    for row in table.itertuples(index=False):
        frame = net[row.element]
        if row.index not in frame.index:
            msg = f"generator technology table {spec!r}: the net has no {row.element} {row.index}"
            raise ValueError(msg)
        if "bus" in table.columns and int(frame.at[row.index, "bus"]) != row.bus:
            msg = (
                f"generator technology table {spec!r}: {row.element} {row.index} is at bus "
                f"{int(frame.at[row.index, 'bus'])} in the net, not at bus {row.bus} "
                "(table made for another case?)"
            )
            raise ValueError(msg)


def _set_availability(net: pp.pandapowerNet, table: pd.DataFrame, fractions: dict) -> None:
    for row in table[table.technology.isin(list(fractions))].itertuples(index=False):
        frame = net[row.element]
        new_max = float(frame.at[row.index, "max_p_mw"]) * fractions[row.technology]
        frame.at[row.index, "max_p_mw"] = new_max
        for col in ("p_mw", "min_p_mw"):
            if col in frame and pd.notna(frame.at[row.index, col]):
                frame.at[row.index, col] = min(float(frame.at[row.index, col]), new_max)


def _set_marginal_costs(net: pp.pandapowerNet, table: pd.DataFrame, costs: dict) -> None:
    listed = {(r.element, r.index): r.technology for r in table.itertuples(index=False)}
    missing = [f"{t} {i}" for t in GENERATOR_TABLES for i in net[t].index if (t, i) not in listed]
    if missing:
        msg = (
            f"marginal_cost_usd_per_mwh: generators without a technology in the table: "
            f"{', '.join(missing[:10])}"
        )
        raise ValueError(msg)
    if "pwl_cost" in net and len(net.pwl_cost):
        msg = "marginal_cost_usd_per_mwh: the net has piecewise-linear costs (pwl_cost)"
        raise ValueError(msg)
    poly = net.poly_cost
    keys = zip(poly.et.astype(str), poly.element.astype(int), strict=True)
    rows = {key: row for key, row in zip(keys, poly.index, strict=True)}
    for (element, index), technology in listed.items():
        row = rows.get((element, index))
        if row is None:
            pp.create_poly_cost(net, index, element, cp1_eur_per_mw=costs[technology])
        else:
            net.poly_cost.at[row, "cp1_eur_per_mw"] = costs[technology]


def meshed_branches(net: pp.pandapowerNet) -> tuple[list[int], list[int]]:
    """Return the in-service lines and trafos that are not bridges of the grid graph.

    A bridge is a branch whose outage splits the (in-service, switch-respecting) grid,
    e.g. a generator step-up transformer or a radial load tap. Parallel branches between
    the same buses are never bridges.

    Returns
    -------
    lines, trafos : list of int
        ``net.line`` and ``net.trafo`` indices of the meshed branches.

    """
    multi = top.create_nxgraph(net, include_out_of_service=False)
    parallel = Counter(frozenset((u, v)) for u, v in multi.edges())
    bridges = {
        frozenset(edge) for edge in nx.bridges(nx.Graph(multi)) if parallel[frozenset(edge)] == 1
    }
    out: dict[str, list[int]] = {"line": [], "trafo": []}
    for u, v, key in multi.edges(keys=True):
        table, index = key[0], int(key[1])
        if table in out and frozenset((u, v)) not in bridges:
            out[table].append(index)
    return sorted(out["line"]), sorted(out["trafo"])


def _derate_meshed(net: pp.pandapowerNet, factor: float) -> None:
    lines, trafos = meshed_branches(net)
    for table, rows in (("line", lines), ("trafo", trafos)):
        if "max_loading_percent" in net[table]:  # no column: unlimited, stays unlimited
            net[table].loc[rows, "max_loading_percent"] *= factor


def calibrate_transmission(net: pp.pandapowerNet, config: Any) -> pp.pandapowerNet:
    """Apply the calibration options of a TransmissionConfig to ``net`` (in place).

    Parameters
    ----------
    net : pandapowerNet
        The transmission net as loaded from its source.
    config : TransmissionConfig
        Reads ``load_scaling`` (-), ``generator_technologies``, ``availability`` (-),
        ``marginal_cost_usd_per_mwh`` ($/MWh) and ``meshed_branch_rating_factor`` (-).

    Returns
    -------
    pandapowerNet
        ``net`` itself.

    Raises
    ------
    ValueError
        The technology table does not fit the net (unknown generator, other bus, a
        generator without technology when marginal costs are set).

    """
    scaling = getattr(config, "load_scaling", 1.0)
    if scaling != 1.0:
        net.load["scaling"] = net.load["scaling"].fillna(1.0) * scaling
    spec = getattr(config, "generator_technologies", None)
    if spec is not None:
        table = read_technology_table(spec)
        _check_table_against_net(table, net, spec)
        if getattr(config, "availability", None):
            _set_availability(net, table, config.availability)
        if getattr(config, "marginal_cost_usd_per_mwh", None):
            _set_marginal_costs(net, table, config.marginal_cost_usd_per_mwh)
    factor = getattr(config, "meshed_branch_rating_factor", 1.0)
    if factor != 1.0:
        _derate_meshed(net, factor)
    return net
