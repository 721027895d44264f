r"""KPIs of a run, computed from the ResultStore only (so a failed run still reports).

Costs are $ over the simulated horizon, energies MWh, violations count bus- or
branch-intervals (one bus outside its band for one interval counts 1).

**Resource cost** (``total_cost``) is the cost of what physically happened::

    total_cost = generation_cost + der_cost + unserved_energy_mwh * VOLL - stored_energy_value

``generation_cost`` is the *real-time* (realised) dispatch's generation cost,
``der_cost`` the true cost of what the DER did (degradation, shifting, undelivered EV
energy; :mod:`gridlayers.der`), and ``stored_energy_value`` values the change of the
DER's stored energy between the start and the end of the horizon at the horizon's mean
real-time LMP of each LDA's interface.

**Payments** between parties ($, positive = received) are reported apart and net to zero:
generators, bulk loads, LDAs (two-settlement: forward schedule at forward LMPs,
deviations at real-time LMPs; under Minimal DSO split into aggregators and DSOs), and the
TSO's congestion rent. Minimal DSO's redispatch compensation is a payment from the DSO to
the aggregators (its resource effect is already in generation and DER cost); with
``settlement.deviation: penalty`` the LDAs also pay the flat imbalance penalty to the TSO.
"""

from __future__ import annotations

import math
from typing import Any

from gridlayers.market import DEFAULT_VOLL_USD_PER_MWH
from gridlayers.numerics import FAULT_KINDS
from gridlayers.results.store import ResultStore

_MARKET = """
SELECT count(*) AS intervals,
       coalesce(sum(generation_cost_usd), 0) AS generation_cost,
       coalesce(sum(forward_generation_cost_usd), 0) AS forward_generation_cost,
       coalesce(sum(unserved_mw), 0) * $hours AS unserved_energy_mwh,
       coalesce(sum(generation_mw), 0) * $hours AS generation_mwh,
       coalesce(sum(solve_seconds), 0) AS tso_solve_seconds,
       coalesce(sum(rt_solve_seconds), 0) AS real_time_solve_seconds,
       max(tso_variables) AS tso_variables, max(tso_constraints) AS tso_constraints,
       coalesce(sum(interface_values), 0) AS interface_values_exchanged,
       coalesce(sum(generator_payment_usd), 0) AS pay_generators,
       coalesce(sum(bulk_load_payment_usd), 0) AS pay_bulk_loads,
       coalesce(sum(congestion_rent_usd), 0) AS pay_congestion_rent
FROM market_interval WHERE paradigm = $paradigm"""

_PHYSICS = """
SELECT coalesce(sum(losses_mw), 0) * $hours AS losses_mwh,
       coalesce(sum(p_import_mw), 0) * $hours AS lda_import_mwh,
       coalesce(sum(voltage_violations), 0) AS voltage_violations,
       coalesce(sum(thermal_violations), 0) AS thermal_violations,
       min(vm_min_pu) AS min_voltage_pu, max(vm_max_pu) AS max_voltage_pu,
       max(max_loading_percent) AS max_loading_percent,
       coalesce(sum(CASE WHEN converged THEN 0 ELSE 1 END), 0) AS nonconverged_powerflows
FROM feeder_interval WHERE paradigm = $paradigm"""

_AGENTS = """
SELECT (SELECT coalesce(sum(der_cost_usd), 0) FROM aggregator_interval
        WHERE paradigm = $paradigm) AS der_cost,
       (SELECT coalesce(sum(offer_cost_usd), 0) FROM aggregator_interval
        WHERE paradigm = $paradigm) AS der_offer_cost,
       (SELECT coalesce(sum(curtailed_mwh), 0) FROM aggregator_interval
        WHERE paradigm = $paradigm) AS der_curtailed_mwh,
       (SELECT coalesce(sum(redispatch_cost_usd), 0) FROM dso_interval
        WHERE paradigm = $paradigm) AS redispatch_cost,
       (SELECT count(*) FROM dso_interval WHERE paradigm = $paradigm AND infeasible)
        AS dso_infeasible_intervals,
       (SELECT coalesce(max(slack_mw), 0) FROM dso_interval WHERE paradigm = $paradigm)
        AS dso_max_slack_mw,
       (SELECT coalesce(sum(abs(realised_injection_mw - cleared_injection_mw)), 0) * $hours
        FROM interface_interval WHERE paradigm = $paradigm) AS imbalance_mwh,
       (SELECT coalesce(sum(forward_payment_usd), 0) FROM interface_interval
        WHERE paradigm = $paradigm) AS pay_lda_forward,
       (SELECT coalesce(sum(deviation_payment_usd), 0) FROM interface_interval
        WHERE paradigm = $paradigm) AS deviation_settlement,
       (SELECT count(DISTINCT interval) FROM feeder_slack WHERE paradigm = $paradigm
        AND (buses > 0 OR branches > 0)) AS slack_intervals,
       (SELECT coalesce(max(slack_mw), 0) FROM feeder_slack
        WHERE paradigm = $paradigm) AS max_slack_mw,
       (SELECT coalesce(max(voltage_slack_pu), 0) FROM feeder_slack
        WHERE paradigm = $paradigm) AS max_voltage_slack_pu,
       (SELECT coalesce(sum(thermal_slack_mva), 0) FROM feeder_slack
        WHERE paradigm = $paradigm) AS thermal_slack_mva"""

#: Stored energy at the start of the first and the end of the last interval, and the
#: mean real-time interface LMP, per LDA.
_STORED = """
WITH per_aggregator AS (
    SELECT lda, aggregator, arg_min(stored_start_mwh, interval) AS s0,
           arg_max(stored_end_mwh, interval) AS s1
    FROM aggregator_interval WHERE paradigm = $paradigm GROUP BY lda, aggregator
), ends AS (
    SELECT lda, sum(s0) AS start_mwh, sum(s1) AS end_mwh FROM per_aggregator GROUP BY lda
), prices AS (
    SELECT lda, avg(lmp_rt_usd_per_mwh) AS price
    FROM interface_interval WHERE paradigm = $paradigm GROUP BY lda
)
SELECT e.lda, e.start_mwh, e.end_mwh, p.price
FROM ends e JOIN prices p USING (lda) ORDER BY e.lda"""

#: Minimal DSO: each aggregator's own two-settlement (realised DER injection vs award).
_AGGREGATOR_PAYMENTS = """
SELECT coalesce(sum(i.lmp_usd_per_mwh * p.cleared_injection_mw
                    + i.lmp_rt_usd_per_mwh * (a.realised_mw - p.cleared_injection_mw)), 0)
       * $hours AS paid
FROM participant_interval p
JOIN aggregator_interval a
  ON a.paradigm = p.paradigm AND a.interval = p.interval
 AND p.participant = 'agg:' || a.lda || '.' || a.aggregator
JOIN interface_interval i
  ON i.paradigm = p.paradigm AND i.interval = p.interval AND i.lda = p.lda
WHERE p.paradigm = $paradigm"""


#: Minimal DSO: each DSO's own two-settlement (its firm schedule against the rest of its
#: LDA: realised interface flow minus its aggregators' realised DER injection).
_DSO_PAYMENTS = """
WITH agg AS (
    SELECT paradigm, interval, lda, sum(realised_mw) AS realised
    FROM aggregator_interval WHERE paradigm = $paradigm GROUP BY ALL
)
SELECT coalesce(sum(i.lmp_usd_per_mwh * p.cleared_injection_mw
                    + i.lmp_rt_usd_per_mwh * (i.realised_injection_mw
                      - coalesce(a.realised, 0) - p.cleared_injection_mw)), 0)
       * $hours AS paid
FROM participant_interval p
JOIN interface_interval i
  ON i.paradigm = p.paradigm AND i.interval = p.interval AND i.lda = p.lda
LEFT JOIN agg a ON a.paradigm = p.paradigm AND a.interval = p.interval AND a.lda = p.lda
WHERE p.paradigm = $paradigm AND p.participant = 'dso:' || p.lda"""


#: Iterative: ADMM rounds per interval (mean, max) and the share of intervals converged.
_COORDINATION = """
WITH per_interval AS (
    SELECT interval, max(rounds) AS rounds, bool_and(converged) AS converged
    FROM coordination_interval WHERE paradigm = $paradigm GROUP BY interval
)
SELECT avg(rounds) AS admm_rounds_mean, max(rounds) AS admm_rounds_max,
       avg(CASE WHEN converged THEN 1.0 ELSE 0.0 END) AS admm_converged_share
FROM per_interval"""


def _clean(value: Any) -> Any:
    """Make a value JSON-ready: NaN becomes None, solver noise around 0 becomes 0."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if abs(value) < 1e-9:
            return 0.0
    return value


def _row(store: ResultStore, sql: str, params: dict[str, Any]) -> dict[str, Any]:
    cur = store.con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    return {d[0]: _clean(v) for d, v in zip(cur.description, cur.fetchone(), strict=True)}


def paradigm_kpis(
    store: ResultStore,
    paradigm: str,
    interval_h: float,
    interfaces: dict[str, int],
    imbalance_penalty_usd_per_mwh: float = 0.0,
) -> dict[str, Any]:
    """Return the KPIs of one paradigm as a flat JSON-ready dict (see module notes).

    Parameters
    ----------
    store : ResultStore
        The run's results.
    paradigm : str
        Paradigm name.
    interval_h : float
        Interval length in hours (MW times this is MWh).
    interfaces : dict
        LDA name -> interface bus, for per-interface prices.
    imbalance_penalty_usd_per_mwh : float
        Flat penalty on absolute interface deviations ($/MWh) the LDAs pay the TSO on top
        of the real-time settlement (``settlement.deviation: penalty``); 0 for none.

    Returns
    -------
    dict
        Costs ($), energies (MWh), physics (counts, pu, %), prices ($/MWh), payments ($),
        computation, and ``numerical_faults`` (events per fault kind, counts).

    """
    params = {"paradigm": paradigm, "hours": interval_h}
    kpis: dict[str, Any] = {}
    for sql in (_MARKET, _PHYSICS, _AGENTS):
        kpis.update(_row(store, sql, params))
    stored = store.con.execute(_STORED, {"paradigm": paradigm}).fetchall()
    kpis["stored_energy_change_mwh"] = _clean(sum(end - start for _, start, end, _ in stored))
    kpis["stored_energy_value"] = _clean(
        sum((end - start) * (price or 0.0) for _, start, end, price in stored)
    )
    kpis["total_cost"] = (
        kpis["generation_cost"] + kpis["der_cost"]
        + kpis["unserved_energy_mwh"] * DEFAULT_VOLL_USD_PER_MWH - kpis["stored_energy_value"]
    )  # fmt: skip
    kpis["imbalance_penalty"] = kpis["imbalance_mwh"] * imbalance_penalty_usd_per_mwh
    kpis["payments"] = _payments(store, paradigm, kpis, params)
    kpis["interface_lmp_usd_per_mwh"] = _interface_prices(store, paradigm, interfaces)
    kpis["dlmp_usd_per_mwh"] = _dlmp_stats(store, paradigm)
    kpis["numerical_faults"] = numerical_faults(store, paradigm)
    if paradigm == "iterative":
        kpis.update(_row(store, _COORDINATION, params))
    return kpis


def numerical_faults(store: ResultStore, paradigm: str) -> dict[str, int]:
    """Count the ``event`` rows of each numerical fault kind (count; every kind, 0 if none).

    Kinds: :data:`gridlayers.numerics.FAULT_KINDS` (``powerflow_not_converged``,
    ``dso_infeasible``, ``tso_infeasible``, ``solver_time_limit``, ``bad_coefficient``);
    one event per LDA or market and phase in which the fault was survived.
    """
    rows = store.con.execute(
        "SELECT kind, count(*) FROM event WHERE paradigm = ? GROUP BY kind", [paradigm]
    ).fetchall()
    counts = dict(rows)
    return {kind: int(counts.get(kind, 0)) for kind in FAULT_KINDS}


def _payments(
    store: ResultStore, paradigm: str, kpis: dict[str, Any], params: dict[str, Any]
) -> dict[str, float]:
    """Payments per party over the horizon ($, positive = received); ``net`` sums them."""
    ldas = kpis.pop("pay_lda_forward") + kpis["deviation_settlement"] - kpis["imbalance_penalty"]
    out = {
        "generators": kpis.pop("pay_generators"),
        "bulk_loads": kpis.pop("pay_bulk_loads"),
        "tso_congestion_rent": kpis.pop("pay_congestion_rent") + kpis["imbalance_penalty"],
    }
    if paradigm == "minimal_dso":  # each settled on its own quantities; they sum to ldas
        redispatch = kpis["redispatch_cost"]  # the DSO compensates redispatched DER
        penalty = kpis["imbalance_penalty"]  # charged to the DSO, which holds the interface
        out["aggregators"] = (_row(store, _AGGREGATOR_PAYMENTS, params)["paid"] or 0.0) + redispatch
        out["dsos"] = (_row(store, _DSO_PAYMENTS, params)["paid"] or 0.0) - redispatch - penalty
    else:
        out["ldas"] = ldas
    out["net"] = sum(out.values())
    return {k: _clean(v) for k, v in out.items()}


def _interface_prices(
    store: ResultStore, paradigm: str, interfaces: dict[str, int]
) -> dict[str, dict[str, float | None]]:
    """Forward (mean/min/max) and real-time (``rt_mean``) interface LMP per LDA ($/MWh)."""
    prices = {}
    for lda in interfaces:
        row = store.con.execute(
            """SELECT avg(lmp_usd_per_mwh), min(lmp_usd_per_mwh), max(lmp_usd_per_mwh),
                      avg(lmp_rt_usd_per_mwh)
               FROM interface_interval WHERE paradigm = ? AND lda = ?""",
            [paradigm, lda],
        ).fetchone()
        prices[lda] = dict(zip(("mean", "min", "max", "rt_mean"), map(_clean, row), strict=True))
    return prices


def _dlmp_stats(store: ResultStore, paradigm: str) -> dict[str, dict[str, float | None]]:
    rows = store.con.execute(
        """SELECT lda, avg(dlmp_mean_usd_per_mwh), min(dlmp_min_usd_per_mwh),
                  max(dlmp_max_usd_per_mwh)
           FROM dso_interval WHERE paradigm = ? GROUP BY lda ORDER BY lda""",
        [paradigm],
    ).fetchall()
    return {r[0]: dict(zip(("mean", "min", "max"), map(_clean, r[1:]), strict=True)) for r in rows}
