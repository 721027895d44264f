"""mosaik adapter that writes every interval's results into the run's ResultStore.

Always runs in-process (it holds the open database). It is created with an explicit
map from each source entity's full id to what it is (``("feeder", lda)`` or
``("market", "tso")``), so no entity id is parsed.
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
    "type": "time-based",
    "models": {
        "Collector": {"public": True, "params": ["sources"], "attrs": [], "any_inputs": True}
    },
}


def _value(inputs: dict[str, dict[str, Any]], attr: str, source: str) -> Any:
    return inputs[attr][source]


class Collector(mosaik_api_v3.Simulator):
    """Writes feeder and market outputs of each interval to the store as they arrive."""

    def __init__(self) -> None:
        super().__init__(META)
        self._sources: dict[str, tuple[str, str]] = {}
        self._store: ResultStore | None = None
        self._paradigm = ""
        self._start: dt.datetime | None = None
        self._interval_s = 0
        self._bus_voltages = True
        self._on_interval: Callable[[int], None] | None = None

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
        return [{"eid": "collector", "type": model}]

    def step(self, time: int, inputs: dict[str, Any], max_advance: int) -> int:
        """Write all inputs of interval ``time // step`` to the store."""
        k = time // self._interval_s
        stamp = self._start + dt.timedelta(seconds=k * self._interval_s)
        data = inputs.get("collector", {})
        for full_id, (kind, name) in self._sources.items():
            if kind == "feeder":
                self._write_feeder(data, full_id, name, k, stamp)
            elif kind == "market":
                self._write_market(data, full_id, k, stamp)
        if self._on_interval is not None:
            self._on_interval(k)
        return time + self._interval_s

    def _write_feeder(
        self, data: dict[str, Any], src: str, lda: str, k: int, stamp: dt.datetime
    ) -> None:
        def v(attr: str) -> Any:
            return _value(data, attr, src)

        key = dict(paradigm=self._paradigm, interval=k, time=stamp)
        self._store.append("feeder_interval", [dict(
            **key, lda=lda, p_import_mw=v("P_import[MW]"), q_import_mvar=v("Q_import[MVAr]"),
            losses_mw=v("P_loss[MW]"), vm_min_pu=v("Vm_min[pu]"), vm_max_pu=v("Vm_max[pu]"),
            max_loading_percent=v("loading_max[%]"),
            voltage_violations=v("voltage_violations[-]"),
            thermal_violations=v("thermal_violations[-]"),
            converged=v("converged[-]"), retried=v("retried[-]"),
        )])  # fmt: skip
        if not v("converged[-]"):
            message = "AC power flow failed after a flat-start retry; lossless estimate used"
            self._store.event(self._paradigm, k, stamp, lda, "powerflow_not_converged", message)
        elif v("retried[-]"):
            self._store.event(self._paradigm, k, stamp, lda, "powerflow_retried",
                              "AC power flow converged only from a flat start")  # fmt: skip
        if self._bus_voltages:
            self._store.append("bus_voltage", [
                dict(**key, lda=lda, bus=int(b), vm_pu=vm) for b, vm in v("Vm[pu]").items()
            ])  # fmt: skip

    def _write_market(self, data: dict[str, Any], src: str, k: int, stamp: dt.datetime) -> None:
        def v(attr: str) -> Any:
            return _value(data, attr, src)

        hours = self._interval_s / 3600.0
        key = dict(paradigm=self._paradigm, interval=k, time=stamp)
        self._store.append("market_interval", [dict(
            **key, total_cost_usd=v("cost[USD/h]") * hours,
            generation_cost_usd=v("generation_cost[USD/h]") * hours,
            unserved_mwh=v("unserved[MW]") * hours, solve_seconds=v("solve_time[s]"),
            tso_variables=v("tso_variables[-]"), tso_constraints=v("tso_constraints[-]"),
            status=v("status[-]"),
        )])  # fmt: skip
        self._store.append("lmp", [
            dict(**key, bus=int(b), lmp_usd_per_mwh=p) for b, p in v("LMP[USD/MWh]").items()
        ])  # fmt: skip
