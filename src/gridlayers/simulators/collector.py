"""mosaik adapter that writes every interval's results into the run's ResultStore.

Event-based: it steps whenever any source publishes, and files each output under the
interval ``time // interval_s``. Always in-process (it holds the open database). It
is created with an explicit map from each source's full id to ``[kind, name]``
(``feeder``/LDA, ``market``/tso, ``aggregator``/``lda.aggregator``, ``dso``/LDA).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import mosaik_api_v3
from mosaik_api_v3.types import CreateResult, Meta

from gridlayers.results.store import ResultStore

META: Meta = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {
        "Collector": {"public": True, "params": ["sources"], "attrs": [], "any_inputs": True}
    },
}


class Collector(mosaik_api_v3.Simulator):
    """Writes feeder, market, aggregator and DSO outputs to the store as they arrive."""

    def __init__(self) -> None:
        super().__init__(META)
        self._sources: dict[str, tuple[str, str]] = {}
        self._done: set[tuple[int, str]] = set()

    def init(
        self,
        sid: str,
        time_resolution: float = 1.0,
        *,
        store: ResultStore,
        paradigm: str,
        start: dt.datetime,
        interval_s: int,
        bus_voltages: bool = True,
        on_interval: Callable[[int], None] | None = None,
    ) -> Meta:
        """Attach the open store and the run's time base (seconds per interval)."""
        self._store, self._paradigm, self._start = store, paradigm, start
        self._interval_s = round(interval_s / time_resolution)
        self._bus_voltages = bus_voltages
        self._on_interval = on_interval
        return self.meta

    def create(self, num: int, model: str, *, sources: dict[str, list[str]]) -> list[CreateResult]:
        """Create the collector; ``sources`` maps full ids to ``[kind, name]``."""
        self._sources = {full_id: (kind, name) for full_id, (kind, name) in sources.items()}
        self._feeders = sum(kind == "feeder" for kind, _ in self._sources.values())
        return [{"eid": "collector", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> None:
        """Write all inputs that arrived at ``time`` under interval ``time // step``."""
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
        }
        for source, data in by_source.items():
            kind, name = self._sources[source]
            writers[kind](data, name, key)

    def _feeder(self, v: dict[str, Any], lda: str, key: dict[str, Any]) -> None:
        if "P_import[MW]" not in v:
            return
        self._store.append(
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
        if self._bus_voltages:
            self._store.append(
                "bus_voltage",
                [dict(**key, lda=lda, bus=int(b), vm_pu=vm) for b, vm in v["Vm[pu]"].items()],
            )
        self._done.add((key["interval"], lda))
        if self._on_interval and sum(k == key["interval"] for k, _ in self._done) == self._feeders:
            self._on_interval(key["interval"])

    def _market(self, v: dict[str, Any], _name: str, key: dict[str, Any]) -> None:
        if "cost[USD/h]" not in v:
            return
        hours = self._interval_s / 3600.0
        self._store.append(
            "market_interval",
            [
                dict(
                    **key,
                    total_cost_usd=v["cost[USD/h]"] * hours,
                    generation_cost_usd=v["generation_cost[USD/h]"] * hours,
                    unserved_mwh=v["unserved[MW]"] * hours,
                    solve_seconds=v["solve_time[s]"],
                    tso_variables=v["tso_variables[-]"],
                    tso_constraints=v["tso_constraints[-]"],
                    status=v["status[-]"],
                    interface_values=v["interface_values[-]"],
                )
            ],
        )
        self._store.append(
            "lmp",
            [dict(**key, bus=int(b), lmp_usd_per_mwh=p) for b, p in v["LMP[USD/MWh]"].items()],
        )
        self._store.append(
            "interface_interval",
            [
                dict(
                    **key, lda=lda, cleared_injection_mw=p, lmp_usd_per_mwh=v["interface_LMP"][lda]
                )
                for lda, p in v["interchange[MW]"].items()
            ],
        )

    def _aggregator(self, v: dict[str, Any], name: str, key: dict[str, Any]) -> None:
        if "der_cost[USD/h]" not in v:
            return
        lda, aggregator = name.split(".", 1)
        hours = self._interval_s / 3600.0
        self._store.append(
            "aggregator_interval",
            [
                dict(
                    **key,
                    lda=lda,
                    aggregator=aggregator,
                    der_cost_usd=v["der_cost[USD/h]"] * hours,
                    der_energy_mwh=v["der_energy[MWh]"],
                    curtailed_mwh=v["curtailed[MWh]"],
                )
            ],
        )

    def _dso(self, v: dict[str, Any], lda: str, key: dict[str, Any]) -> None:
        if "dso_report" not in v:
            return
        r = v["dso_report"]
        hours = self._interval_s / 3600.0
        self._store.append(
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
                )
            ],
        )
        self._dso_events(r, lda, key)

    def _dso_events(self, r: dict[str, Any], lda: str, key: dict[str, Any]) -> None:
        for message in r.get("infeasible") or []:
            self._event(key, lda, "dso_infeasible", f"{message}; network-blind fallback used")

    def _event(self, key: dict[str, Any], source: str, kind: str, message: str) -> None:
        self._store.event(key["paradigm"], key["interval"], key["time"], source, kind, message)
