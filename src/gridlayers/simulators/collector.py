"""mosaik adapter that writes every interval's results into the run's ResultStore.

Event-based: it steps whenever any source publishes, and files each output under the
interval ``time // interval_s``. Always in-process (it holds the open database). It is
created with an explicit map from each source's full id to ``[kind, name]``
(``feeder``/LDA, ``market``/tso, ``aggregator``/``lda.aggregator``, ``dso``/LDA).

Results reach the database in whole intervals only. The rows of an interval are held
here until every source has sent its record of it (:data:`RECORDS`: each feeder's power
flow, the market's two-settlement record, each aggregator's and each DSO's report);
the complete interval then goes to the store's buffers (one append per table; bus
voltages, branch loadings, per-device dispatch and LMPs column-wise). Every
``checkpoint_intervals`` complete intervals, after the horizon's last one and when the
world shuts down (also after a failure), the buffers, the entities' states after the
last complete interval (``state`` outputs) and the progress record are committed in
one transaction (:meth:`~gridlayers.results.store.ResultStore.commit`,
:mod:`gridlayers.results.checkpoint`). Rows of an interval that never completed (the
run failed in it) are dropped, so the store and its checkpoint always agree and a run
can resume after its last stored interval.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import mosaik_api_v3
from mosaik_api_v3.types import CreateResult, Meta

from gridlayers.results import checkpoint
from gridlayers.results.store import ResultStore

log = logging.getLogger(__name__)

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {
        "Collector": {"public": True, "params": ["sources"], "attrs": [], "any_inputs": True}
    },
}

#: Per source kind, the output that completes its part of an interval.
RECORDS = {
    "feeder": "P_import[MW]",
    "market": "record",
    "aggregator": "der_report",
    "dso": "dso_report",
    "area": "area_report",
}


class _Interval:
    """The rows of one interval held until every source has reported it."""

    __slots__ = ("columns", "reported", "rows")

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.columns: list[tuple[str, dict[str, Any]]] = []
        self.reported: set[str] = set()  # source full ids whose record arrived


class Collector(mosaik_api_v3.Simulator):
    """Writes feeder, market, aggregator and DSO outputs to the store, interval by interval."""

    def __init__(self) -> None:
        super().__init__(META)
        self._sources: dict[str, tuple[str, str]] = {}
        self._open: dict[int, _Interval] = {}  # intervals some source has not reported yet
        self._current: _Interval | None = None  # where this step's rows go
        self._states: dict[str, Any] = {}  # latest state per "kind:name"
        self._last_complete: int | None = None  # last complete interval in the buffers
        self._committed: int | None = None  # last complete interval committed

    def init(
        self,
        sid: str,
        time_resolution: float = 1.0,
        *,
        store: ResultStore,
        paradigm: str,
        start: dt.datetime,
        interval_s: int,
        intervals: int,
        scenario_sha256: str = "",
        checkpoint_intervals: int = 1,
        bus_voltages: bool = True,
        on_interval: Callable[[int], None] | None = None,
    ) -> Meta:
        """Attach the open store and the run's time base.

        Parameters
        ----------
        sid : str
            mosaik's id of the simulator.
        time_resolution : float
            Seconds per mosaik time unit.
        store : ResultStore
            The open store (its automatic batch writes are turned off until shutdown).
        paradigm : str
            The paradigm of this world.
        start : datetime
            Time of interval 0.
        interval_s : int
            Seconds per interval.
        intervals : int
            Intervals of the horizon (-); the last one is always committed.
        scenario_sha256 : str
            :func:`gridlayers.results.checkpoint.fingerprint` of the scenario.
        checkpoint_intervals : int
            Complete intervals per commit (-).
        bus_voltages : bool
            Whether bus voltages are stored.
        on_interval : callable, optional
            Called with each interval number once it is complete (and committed, if a
            commit was due).

        """
        self._store, self._paradigm, self._start = store, paradigm, start
        self._interval_s = round(interval_s / time_resolution)
        self._intervals, self._sha = intervals, scenario_sha256
        self._every = max(1, int(checkpoint_intervals))
        self._bus_voltages = bus_voltages
        self._on_interval = on_interval
        checkpoint.create(store.con)
        store.auto_write = False
        return self.meta

    def create(self, num: int, model: str, *, sources: dict[str, list[str]]) -> list[CreateResult]:
        """Create the collector; ``sources`` maps full ids to ``[kind, name]``."""
        self._sources = {full_id: (kind, name) for full_id, (kind, name) in sources.items()}
        return [{"eid": "collector", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> None:
        """File all inputs that arrived at ``time`` under interval ``time // step``."""
        k = time // self._interval_s
        key = dict(
            paradigm=self._paradigm,
            interval=k,
            time=self._start + dt.timedelta(seconds=k * self._interval_s),
        )
        by_source: dict[str, dict[str, Any]] = {}
        for attr, values in inputs.get("collector", {}).items():
            for source, value in values.items():
                by_source.setdefault(source, {})[attr] = value
        writers = {
            "feeder": self._feeder,
            "market": self._market,
            "aggregator": self._aggregator,
            "dso": self._dso,
            "area": self._area,
        }
        self._current = interval = self._open.setdefault(k, _Interval())
        for source, data in by_source.items():
            kind, name = self._sources[source]
            writers[kind](data, name, key)
            if RECORDS[kind] in data:
                interval.reported.add(source)
            if "state" in data:
                self._states[f"{kind}:{name}"] = data["state"]
        if len(interval.reported) == len(self._sources):
            self._complete(k)

    def _complete(self, k: int) -> None:
        """Hand interval ``k``'s rows to the store; commit if one is due."""
        interval = self._open.pop(k)
        for table, rows in interval.rows.items():
            self._store.append(table, rows)
        for table, columns in interval.columns:
            self._store.append_columns(table, columns)
        self._last_complete = k
        if (k + 1) % self._every == 0 or k + 1 >= self._intervals:
            self._commit()
        if self._on_interval:
            self._on_interval(k)

    def _commit(self) -> None:
        """Commit the buffered complete intervals with the checkpoint after the last one."""
        k = self._last_complete
        if k is None or k == self._committed:
            return
        states = dict(self._states)
        self._store.commit(
            lambda con: checkpoint.write(con, self._paradigm, k, self._intervals, self._sha, states)
        )
        self._committed = k

    def finalize(self) -> None:
        """Commit what is complete when the world shuts down (also after a failure).

        Rows of intervals that never completed are dropped (and logged).
        """
        store = getattr(self, "_store", None)
        if store is None:
            return
        try:
            self._commit()
        finally:
            store.auto_write = True
        if self._open:
            log.warning(
                "%s: dropped the rows of incomplete interval(s) %s",
                self._paradigm,
                sorted(self._open),
            )
            self._open.clear()

    def _add(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Queue rows for ``table`` in the current interval."""
        self._current.rows.setdefault(table, []).extend(rows)

    def _add_columns(self, table: str, columns: dict[str, Any]) -> None:
        """Queue column-wise rows for ``table`` in the current interval."""
        self._current.columns.append((table, columns))

    def _feeder(self, v: dict[str, Any], lda: str, key: dict[str, Any]) -> None:
        if "P_import[MW]" not in v:
            return
        self._add(
            "feeder_interval",
            [
                dict(
                    **key,
                    lda=lda,
                    p_import_mw=v["P_import[MW]"],
                    q_import_mvar=v["Q_import[MVAr]"],
                    losses_mw=v["P_loss[MW]"],
                    vm_min_pu=v["Vm_min[pu]"],
                    vm_max_pu=v["Vm_max[pu]"],
                    max_loading_percent=v["loading_max[%]"],
                    voltage_violations=v["voltage_violations[-]"],
                    thermal_violations=v["thermal_violations[-]"],
                    converged=v["converged[-]"],
                    retried=v["retried[-]"],
                )
            ],
        )
        if not v["converged[-]"]:
            message = "AC power flow failed after a flat-start retry; lossless estimate used"
            self._event(key, lda, "powerflow_not_converged", message)
        elif v["retried[-]"]:
            self._event(key, lda, "powerflow_retried", "AC power flow converged from a flat start")
        if self._bus_voltages:  # column-wise: one row per bus
            vm = v["Vm[pu]"]
            self._add_columns(
                "bus_voltage",
                dict(**key, lda=lda, bus=[int(b) for b in vm], vm_pu=list(vm.values())),
            )
        if "Branch_loading[%]" in v:  # connected with output.branch_loading
            self._branches(v, lda, key)
        for row in self._current.rows.get("area_interface", []):  # sub-areas' AC exchange
            if row["lda"] == lda and row["area"] in v.get("PCC_P[MW]", {}):
                row["realised_mw"] = v["PCC_P[MW]"][row["area"]]

    def _branches(self, v: dict[str, Any], lda: str, key: dict[str, Any]) -> None:
        """Store one row per feeder branch, column-wise (``branch_interval``)."""
        loading, p, q = v["Branch_loading[%]"], v["Branch_P_from[MW]"], v["Branch_Q_from[MVAr]"]
        self._add_columns(
            "branch_interval",
            dict(
                **key,
                lda=lda,
                branch=list(loading),
                loading_percent=list(loading.values()),
                p_from_mw=[p[b] for b in loading],
                q_from_mvar=[q[b] for b in loading],
            ),
        )

    def _market(self, v: dict[str, Any], _name: str, key: dict[str, Any]) -> None:
        """Store the interval's two-settlement record (see ``MarketSim._record``)."""
        if "record" not in v:
            return
        r, h = v["record"], self._interval_s / 3600.0
        fwd, rt, pay = r["forward"], r["real_time"], r["payments_usd_per_h"]
        self._add(
            "market_interval",
            [
                dict(
                    **key,
                    forward_cost_usd=fwd["cost_usd_per_h"] * h,
                    forward_generation_cost_usd=fwd["generation_cost_usd_per_h"] * h,
                    forward_unserved_mw=fwd["unserved_mw"],
                    solve_seconds=fwd["solve_seconds"],
                    status=fwd["status"],
                    generation_cost_usd=rt["generation_cost_usd_per_h"] * h,
                    generation_mw=rt["generation_mw"],
                    bulk_demand_mw=rt["bulk_demand_mw"],
                    unserved_mw=rt["unserved_mw"],
                    rt_solve_seconds=rt["solve_seconds"],
                    rt_status=rt["status"],
                    generator_payment_usd=pay["generators"] * h,
                    bulk_load_payment_usd=pay["bulk_loads"] * h,
                    congestion_rent_usd=pay["congestion_rent"] * h,
                    tso_variables=r["tso_variables"],
                    tso_constraints=r["tso_constraints"],
                    interface_values=r["interface_values"],
                )
            ],
        )
        lmp = r["lmp"]  # column-wise: one row per transmission bus
        self._add_columns(
            "lmp",
            dict(
                **key,
                bus=[int(b) for b in lmp],
                lmp_usd_per_mwh=[f for f, _ in lmp.values()],
                lmp_rt_usd_per_mwh=[rt_price for _, rt_price in lmp.values()],
            ),
        )
        self._add(
            "interface_interval",
            [
                dict(
                    **key,
                    lda=lda,
                    cleared_injection_mw=i["cleared_mw"],
                    realised_injection_mw=i["realised_mw"],
                    lmp_usd_per_mwh=i["lmp_forward"],
                    lmp_rt_usd_per_mwh=i["lmp_real_time"],
                    forward_payment_usd=i["forward_payment_usd_per_h"] * h,
                    deviation_payment_usd=i["deviation_payment_usd_per_h"] * h,
                )
                for lda, i in r["interface"].items()
            ],
        )
        self._add(
            "participant_interval",
            [
                dict(**key, lda=p["lda"], participant=name, cleared_injection_mw=p["cleared_mw"])
                for name, p in r["participants"].items()
            ],
        )
        self._slack(r.get("slack") or {}, key)
        if "coordination" in r:  # iterative: the interval's ADMM rounds per LDA
            self._add(
                "coordination_interval",
                [
                    dict(**key, lda=lda, tso_seconds=c["seconds"], **_without(c, "seconds"))
                    for lda, c in r["coordination"].items()
                ],
            )
        for fault in r.get("events") or []:  # numerical faults of the clearing (tso_*, solver_*)
            self._event(key, "tso", fault["kind"], fault["message"])

    def _slack(self, slack: dict[str, dict[str, float]], key: dict[str, Any]) -> None:
        """Store the slack of Total TSO's feeder models; an event where any was used."""
        rows = []
        for lda, used in slack.items():
            row = dict(
                **key,
                lda=lda,
                voltage_slack_pu=float(used["voltage_pu"]),
                thermal_slack_mva=float(used["thermal_mva"]),
                buses=int(used["buses"]),
                branches=int(used["branches"]),
                slack_mw=float(used["mw_equivalent"]),
                penalty_usd=float(used["cost_usd_per_h"]) * self._interval_s / 3600.0,
            )
            rows.append(row)
            if row["buses"] or row["branches"]:
                message = (
                    f"TSO feeder model used slack ({row['slack_mw']:.3f} MW-equivalent): "
                    f"voltage up to {row['voltage_slack_pu']:.2e} pu at {row['buses']} buses, "
                    f"thermal {row['thermal_slack_mva']:.3f} MVA on {row['branches']} branches"
                )
                self._event(key, lda, "feeder_slack", message)
        self._add("feeder_slack", rows)

    def _aggregator(self, v: dict[str, Any], name: str, key: dict[str, Any]) -> None:
        if "der_report" not in v:
            return
        lda, aggregator = name.split(".", 1)
        r = v["der_report"]
        self._add(
            "aggregator_interval",
            [
                dict(
                    **key,
                    lda=lda,
                    aggregator=aggregator,
                    der_cost_usd=r["cost_usd"],
                    offer_cost_usd=r["offer_cost_usd"],
                    der_energy_mwh=r["energy_mwh"],
                    curtailed_mwh=r["curtailed_mwh"],
                    setpoint_mw=r["setpoint_mw"],
                    realised_mw=r["realised_mw"],
                    stored_start_mwh=r["stored_start_mwh"],
                    stored_end_mwh=r["stored_end_mwh"],
                )
            ],
        )
        if "der_devices" in v:  # connected with output.device_dispatch: one row per device
            self._add_columns(
                "device_interval",
                dict(**key, lda=lda, aggregator=aggregator, **v["der_devices"]),
            )

    def _area(self, v: dict[str, Any], name: str, key: dict[str, Any]) -> None:
        """Store a sub-area's interface record (``area_interface``; docs/layers.md)."""
        if "area_report" not in v:
            return
        r = v["area_report"]
        lda = name.split(".", 1)[0]
        row = dict(**key, lda=lda, realised_mw=None, **_without(r, "slack"))
        self._add("area_interface", [dict(row, slack=bool(r["slack"]))])
        if r.get("fallback"):  # its problem failed: it acted network-blind
            self._event(key, name, "area_fallback", r["fallback"])

    def _dso(self, v: dict[str, Any], lda: str, key: dict[str, Any]) -> None:
        if "dso_report" not in v:
            return
        r = v["dso_report"]
        hours = self._interval_s / 3600.0
        self._add(
            "dso_interval",
            [
                dict(
                    **key,
                    lda=lda,
                    redispatch_cost_usd=r["redispatch_cost_usd_per_h"] * hours,
                    violations_predicted=r["violations_predicted"],
                    dlmp_min_usd_per_mwh=r["dlmp_min"],
                    dlmp_mean_usd_per_mwh=r["dlmp_mean"],
                    dlmp_max_usd_per_mwh=r["dlmp_max"],
                    solve_seconds=r["solve_seconds"],
                    values_exchanged=r["values_exchanged"],
                    infeasible=bool(r.get("infeasible")),
                    flex_offered_mw=r.get("flex_offered_mw"),
                    flex_usable_mw=r.get("flex_usable_mw"),
                    slack_mw=(r.get("slack") or {}).get("mw_equivalent"),
                    voltage_slack_pu=(r.get("slack") or {}).get("voltage_pu"),
                )
            ],
        )
        self._dso_events(r, lda, key)

    def _dso_events(self, r: dict[str, Any], lda: str, key: dict[str, Any]) -> None:
        for message in r.get("infeasible") or []:  # the DSO says which fallback it used
            self._event(key, lda, "dso_infeasible", message)
        for fault in r.get("faults") or []:  # bad_coefficient, solver_time_limit
            self._event(key, lda, fault["kind"], fault["message"])
        for event in r.get("events") or []:  # strategy events, e.g. gateway time-outs
            self._event(key, lda, event["kind"], event["message"])

    def _event(self, key: dict[str, Any], source: str, kind: str, message: str) -> None:
        self._add("event", [dict(**key, source=source, kind=kind, message=message)])


def _without(values: dict[str, Any], key: str) -> dict[str, Any]:
    """Return ``values`` without ``key``."""
    return {k: v for k, v in values.items() if k != key}
