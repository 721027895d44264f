"""Shared fixtures: small scenarios written to temporary files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gridlayers.planner import PlannerConfig

REPO = Path(__file__).resolve().parents[1]
#: The SimBench MV rural feeder the DSO-level tests use.
RURAL = "1-MV-rural--0-sw"
DEFAULT = REPO / "scenarios" / "default.yaml"


def write_scenario(folder: Path, data: dict, name: str = "scenario.yaml") -> Path:
    """Write ``data`` as YAML into ``folder`` and return the path."""
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def default_data() -> dict:
    """The bundled default scenario as a dict (edit freely)."""
    return yaml.safe_load(DEFAULT.read_text())


@pytest.fixture
def small_data(default_data: dict) -> dict:
    """The default scenario shortened to 4 intervals around noon (fast)."""
    data = dict(default_data)
    data["horizon"] = {"start": "2016-06-01 11:00", "intervals": 4, "interval_min": 15}
    data["output"] = {"bus_voltages": True}
    return data


def simple_config(**overrides: object) -> PlannerConfig:
    """One one-year epoch (DF = A = 1), no reserves, RPS, flexibility or batteries."""
    base = dict(
        n_epochs=1,
        epoch_years=1,
        multi_objective=False,
        rps=False,
        demand_flexibility=False,
        reserve_load_share=0.0,
        reserve_re_share=0.0,
        battery=False,
        obj_scale=1.0,
        mip_gap=1e-9,
    )
    base.update(overrides)
    return PlannerConfig(**base)


def two_bus(length_miles: float, load_mw: float | list[float] = 100.0):  # noqa: ANN201
    """Planner toy: bus A a cheap unit (10 $/MWh); bus B the load (MW, one value per hour)
    and a dear unit (50 $/MWh); one 50 MW corridor of ``length_miles`` between them."""
    from gridlayers.planner.toy import toy_inputs

    hours = load_mw if isinstance(load_mw, list) else [load_mw]
    return toy_inputs(
        demand_mw={"A": [0.0] * len(hours), "B": hours},
        units=[
            {"zone": "A", "pmax_mw": 200.0, "cost_usd_per_mwh": 10.0},
            {"zone": "B", "pmax_mw": 200.0, "cost_usd_per_mwh": 50.0},
        ],
        lines=[
            {
                "from_zone": "A",
                "to_zone": "B",
                "x_pu": 0.001,
                "s_max_mw": 50.0,
                "length_miles": length_miles,
                "kind": "existing",
            }
        ],
    )


def stored_tables(folder: Path) -> dict:
    """Every result table of ``folder/results.duckdb`` as a DataFrame, without timing
    columns (``*seconds*``) and sorted on all columns, for comparing runs row for row."""
    import duckdb

    from gridlayers.results.store import TABLES

    con = duckdb.connect(str(folder / "results.duckdb"), read_only=True)
    out = {}
    for table in TABLES:
        frame = con.sql(f"SELECT * FROM {table}").df()  # noqa: S608 - our table names
        frame = frame.drop(columns=[c for c in frame.columns if "seconds" in c])
        out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    con.close()
    return out


def query_results(folder: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on ``folder/results.duckdb`` (read-only)."""
    import duckdb

    con = duckdb.connect(str(folder / "results.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def query_frame(folder: Path, sql: str):  # noqa: ANN201
    """``sql`` on ``folder/results.duckdb`` (read-only) as a pandas DataFrame."""
    import duckdb

    con = duckdb.connect(str(folder / "results.duckdb"), read_only=True)
    try:
        return con.sql(sql).df()
    finally:
        con.close()


def rural_feeder_by_voltage() -> dict:
    """The rural SimBench feeder with its LinDistFlow model (default limits).

    Keys: ``net``, ``feeder``, ``p``/``q`` (forecast injections, MW/Mvar) and ``vm``
    (its power-flow voltages, pu, ascending: the weakest bus first).
    """
    import warnings

    from gridlayers.dso.lindistflow import LinDistFlowFeeder
    from gridlayers.grid.networks import simbench_feeder

    net, _ = simbench_feeder(RURAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feeder = LinDistFlowFeeder(net)
    p, q = feeder.injections_from_net(net)
    vm = feeder.solve_power_flow(p, q).vm_pu.sort_values()
    return {"net": net, "feeder": feeder, "p": p, "q": q, "vm": vm}


def rural_overvoltage_case() -> dict:
    """The rural SimBench feeder (LinDistFlow, default limits) with an 8 MW PV (1 $/MWh)
    at its weakest bus and two 1 MW batteries (20/60 $/MWh): the voltage limit binds.

    Keys: ``net``, ``feeder``, ``p``/``q`` (forecast injections, MW/Mvar), ``devices``
    (id -> bus), ``offers`` (id -> BidCurve).
    """
    from gridlayers.domain import BidBlock, BidCurve

    case = rural_feeder_by_voltage()
    vm = case.pop("vm")
    devices = {"pv_big": int(vm.index[0]), "bat0": int(vm.index[1]), "bat1": int(vm.index[-3])}
    battery = BidCurve(-1.0, (BidBlock(1.0, 20.0), BidBlock(1.0, 60.0)))
    offers = {"pv_big": BidCurve(0.0, (BidBlock(8.0, 1.0),)), "bat0": battery, "bat1": battery}
    return {**case, "devices": devices, "offers": offers}


def rural_linear_feeder():  # noqa: ANN201
    """``(net, feeder, p, q)``: the rural SimBench feeder, its LinDistFlow model with the
    planning band [0.9525, 1.0475] pu and its own forecast injections (MW, Mvar)."""
    import warnings

    from gridlayers.dso.lindistflow import LinDistFlowFeeder
    from gridlayers.grid.networks import simbench_feeder

    net, _ = simbench_feeder(RURAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feeder = LinDistFlowFeeder(net, vm_min_pu=0.9525, vm_max_pu=1.0475)
    p, q = feeder.injections_from_net(net)
    return net, feeder, p, q
