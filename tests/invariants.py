"""System invariants of a run, read from its stored tables (never from the KPI code).

Each check returns a list of human-readable violations (empty when the invariant holds),
so a test can assert both that an honest run passes and that a mutated one fails.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np

from gridlayers.grid.networks import transmission_network
from gridlayers.grid.profiles import load_scale
from gridlayers.market.network import extract_dc_network
from gridlayers.scenarios.schema import Scenario


def _query(out: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def bulk_demand_mw(scenario: Scenario) -> np.ndarray:
    """Actual bulk demand per interval (MW), recomputed from the scenario's net and profile."""
    net = transmission_network(scenario.transmission)
    dc = extract_dc_network(net)
    active = dc.load_bus.to_numpy() >= 0
    base = (net.load.p_mw * net.load.scaling).to_numpy()[active].sum()
    scale = load_scale(scenario.transmission.load_profile, scenario.horizon)
    return scale * base + float(dc.fixed_withdrawal_mw.sum())


def energy_balance(out: Path, paradigm: str, scenario: Scenario, tol_mw: float = 1e-6) -> list:
    """Realised generation + shed load = bulk demand + realised AC LDA imports, per interval.

    Generation and shedding come from the market table (real-time stage), imports from the
    physics table, bulk demand is recomputed from the scenario.
    """
    rows = _query(
        out,
        """WITH f AS (SELECT interval, sum(p_import_mw) AS imports FROM feeder_interval
                      WHERE paradigm = ? GROUP BY interval)
           SELECT m.interval, m.generation_mw, m.unserved_mw, f.imports
           FROM market_interval m JOIN f USING (interval) WHERE m.paradigm = ?
           ORDER BY m.interval""",
        [paradigm, paradigm],
    )
    demand = bulk_demand_mw(scenario)
    bad = []
    for k, gen, shed, imports in rows:
        residual = gen + shed - demand[k] - imports
        if abs(residual) > tol_mw:
            bad.append(f"interval {k}: generation {gen:.6f} + shed {shed:.6f} - bulk "
                       f"{demand[k]:.6f} - imports {imports:.6f} = {residual:.3e} MW")  # fmt: skip
    if len(rows) != scenario.horizon.intervals:
        bad.append(f"{len(rows)} of {scenario.horizon.intervals} intervals balanced")
    return bad


def schedules_followed(out: Path, paradigm: str, rel: float, abs_mw: float) -> list:
    """With forecasts equal to actuals, each LDA's realised interface flow is its schedule.

    The AC import (physics table) must match the cleared injection (interface table)
    within ``abs_mw + rel * |cleared|`` (the LinDistFlow error bound).
    """
    rows = _query(
        out,
        """SELECT i.interval, i.lda, i.cleared_injection_mw, -f.p_import_mw
           FROM interface_interval i JOIN feeder_interval f USING (paradigm, interval, lda)
           WHERE paradigm = ? ORDER BY i.interval, i.lda""",
        [paradigm],
    )
    return [
        f"interval {k} {lda}: cleared {c:.4f} MW, realised {r:.4f} MW"
        for k, lda, c, r in rows
        if abs(r - c) > abs_mw + rel * abs(c)
    ]


def feeder_limits(out: Path, paradigm: str, vm_max_pu: float, tol_pu: float) -> list:
    """No feeder bus above ``vm_max_pu + tol_pu`` in the AC power flow."""
    rows = _query(
        out,
        "SELECT interval, lda, vm_max_pu FROM feeder_interval WHERE paradigm = ? "
        "AND vm_max_pu > ? ORDER BY interval, lda",
        [paradigm, vm_max_pu + tol_pu],
    )
    return [f"interval {k} {lda}: {vm:.4f} pu" for k, lda, vm in rows]


def offered_operating_cost(out: Path, paradigm: str) -> float:
    """Realised generation cost plus the as-offered cost of the final DER set-points ($).

    This is the objective the Total TSO clearing minimises, evaluated at each paradigm's
    final (realised) dispatch.
    """
    gen = _query(out, "SELECT sum(generation_cost_usd) FROM market_interval WHERE paradigm = ?",
                 [paradigm])[0][0]  # fmt: skip
    der = _query(out, "SELECT sum(offer_cost_usd) FROM aggregator_interval WHERE paradigm = ?",
                 [paradigm])[0][0]  # fmt: skip
    return float(gen) + float(der or 0.0)


def linear_error_bound_usd(
    out: Path, paradigm: str, hours: float, rel: float, abs_mw: float
) -> float:
    """Value of the LinDistFlow error bound on every LDA-interval at its real-time LMP ($).

    The bound is ``abs_mw + rel * |cleared|`` per LDA and interval (the tolerance of
    :func:`schedules_followed`), not the measured deviation: under Minimal DSO the
    deviation also holds the DSO's own redispatch, which must not widen the allowance.
    """
    row = _query(
        out,
        "SELECT sum((? + ? * abs(cleared_injection_mw)) * lmp_rt_usd_per_mwh) "
        "FROM interface_interval WHERE paradigm = ?",
        [abs_mw, rel, paradigm],
    )[0]
    return float(row[0] or 0.0) * hours
