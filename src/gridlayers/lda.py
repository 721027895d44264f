"""One LDA as every agent and simulator sees it: feeder, DER, forecasts and actuals.

Built deterministically from the scenario (same seed, same devices, same forecasts),
so the physics layer, the DSO, the aggregators and the TSO can each rebuild it in
their own process and agree on every value. Pure: no mosaik, no optimisation.

Each DER device becomes one extra static generator in the feeder (named by its
device id, injection may be negative), so the AC power flow sees the realised
dispatch at the device's bus. Loads at buses with a flexible load are reduced by the
flexible share, which the flexible-load device represents instead.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandapower as pp
import pandas as pd

from gridlayers.der import Aggregator, DeviceConditions, Interval, build_aggregators
from gridlayers.der.builder import BUS_PROFILE, conditions_from_profiles
from gridlayers.der.flexible_load import FlexibleLoad
from gridlayers.der.pv import PVPlant
from gridlayers.grid.forecast import forecast_profiles, forecast_pu, sgen_error_std
from gridlayers.grid.networks import network_from_source, simbench_feeder
from gridlayers.grid.profiles import FeederProfiles, feeder_profiles, standard_profile, window
from gridlayers.scenarios.schema import LDAConfig, Scenario


@dataclass
class LDAModel:
    """Everything one LDA needs over the horizon (see module docstring).

    Attributes
    ----------
    net : pandapowerNet
        Feeder with one extra ``sgen`` per DER device (``der_sgen`` maps id -> row).
    actual, forecast : FeederProfiles
        Non-DER loads (flexible share removed) and generators, per interval.
    bus_load_actual_mw, bus_load_forecast_mw : DataFrame
        Total load per bus before removing flexible shares (MW), per interval.
    pv_pu_actual, pv_pu_forecast : dict
        Per-unit PV availability per profile name, per interval.

    """

    config: LDAConfig
    index: int
    interval_min: int
    start_offset_min: float
    net: pp.pandapowerNet
    actual: FeederProfiles
    forecast: FeederProfiles
    aggregators: dict[str, Aggregator]
    der_sgen: dict[str, int]
    bus_load_actual_mw: pd.DataFrame
    bus_load_forecast_mw: pd.DataFrame
    pv_pu_actual: dict[str, np.ndarray]
    pv_pu_forecast: dict[str, np.ndarray]
    #: Conditions and fixed injections of the last interval asked for, per ``which``.
    _conditions: dict = field(default_factory=dict, repr=False, compare=False)
    #: Row positions in ``net.sgen`` (profile columns, DER ids), computed on first use.
    _sgen_rows: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """The LDA's name."""
        return self.config.name

    @property
    def devices(self) -> list:
        """All DER devices of the LDA, in aggregator order."""
        return [d for agg in self.aggregators.values() for d in agg.devices]

    def interval(self, k: int) -> Interval:
        """Return the DER time object of interval ``k``."""
        return Interval(k, float(self.interval_min), self.start_offset_min)

    def conditions(self, k: int, which: str) -> dict[str, DeviceConditions]:
        """Return device conditions of interval ``k``, ``which`` = 'forecast' or 'actual'.

        Every aggregator of the LDA asks for the same interval, so the last interval's
        conditions are kept per ``which``; the returned dict is shared: read it only.
        """
        cached = self._conditions.get(which)
        if cached is not None and cached[0] == k:
            return cached[1]
        pv = self.pv_pu_forecast if which == "forecast" else self.pv_pu_actual
        loads = self.bus_load_forecast_mw if which == "forecast" else self.bus_load_actual_mw
        out = conditions_from_profiles(
            self.devices, {name: float(v[k]) for name, v in pv.items()}, loads.iloc[k].to_dict()
        )
        self._conditions[which] = (k, out)
        return out

    def fixed_injections(self, k: int, which: str = "forecast") -> tuple[pd.Series, pd.Series]:
        """Return the non-DER net injection per bus of interval ``k`` (MW, Mvar; injection +).

        Loads count negative, existing static generators positive; buses without either
        are 0. Indexed like ``net.bus``. The DSO asks twice per interval (offer and
        award phases): the last interval's values are kept, and copies returned.
        """
        cached = self._conditions.get(("fixed", which))
        if cached is not None and cached[0] == k:
            return cached[1].copy(), cached[2].copy()
        prof = self.forecast if which == "forecast" else self.actual
        net = self.net
        p = pd.Series(0.0, index=net.bus.index)
        q = pd.Series(0.0, index=net.bus.index)
        p = p.sub(prof.load_p_mw.iloc[k].groupby(net.load.bus).sum(), fill_value=0.0)
        q = q.sub(prof.load_q_mvar.iloc[k].groupby(net.load.bus).sum(), fill_value=0.0)
        base = net.sgen.index.difference(list(self.der_sgen.values()))
        p = p.add(prof.sgen_p_mw.iloc[k].groupby(net.sgen.bus[base]).sum(), fill_value=0.0)
        self._conditions[("fixed", which)] = (k, p, q)
        return p.copy(), q.copy()

    def sgen_p_mw(self, k: int, der_p_mw: Mapping[str, float]) -> np.ndarray:
        """Return the actual ``p_mw`` of every sgen of :attr:`net` (MW, injection positive).

        Existing generators follow their profile; DER rows carry the realised device injections.
        """
        rows = self._sgen_rows
        if not rows:
            index = self.net.sgen.index
            rows["profile"] = index.get_indexer(self.actual.sgen_p_mw.columns)
            rows["der"] = {d: index.get_loc(r) for d, r in self.der_sgen.items()}
        values = np.zeros(len(self.net.sgen))
        values[rows["profile"]] = self.actual.sgen_p_mw.iloc[k].to_numpy()
        der = rows["der"]
        for device_id, p in der_p_mw.items():
            values[der[device_id]] = p
        return values


def annual_peak_by_bus(net: pp.pandapowerNet, lda: LDAConfig) -> dict[int, float]:
    """Annual peak load per bus (MW) from the feeder's year profiles."""
    if lda.feeder.simbench:
        year = simbench_feeder(lda.feeder.simbench)[1][("load", "p_mw")].to_numpy()
    else:
        rel = standard_profile(f"{lda.feeder.load_profile}_pload")
        year = rel[:, None] * net.load.p_mw.to_numpy()[None, :]
    buses, position = np.unique(net.load.bus.to_numpy(), return_inverse=True)
    incidence = np.zeros((len(net.load), len(buses)))
    incidence[np.arange(len(net.load)), position] = 1.0
    peaks = (year @ incidence).max(axis=0) * lda.feeder.load_scaling
    return {int(b): float(v) for b, v in zip(buses, peaks, strict=True)}


def _bus_loads(prof: FeederProfiles, net: pp.pandapowerNet) -> pd.DataFrame:
    return (
        prof.load_p_mw.T.groupby(net.load.bus)
        .sum()
        .T.reindex(columns=net.bus.index, fill_value=0.0)
    )


def build_lda(scenario: Scenario, lda_name: str) -> LDAModel:
    """Build an LDA's model from the scenario (deterministic in the scenario's seed).

    Parameters
    ----------
    scenario : Scenario
        The validated scenario.
    lda_name : str
        Name of the LDA.

    Returns
    -------
    LDAModel

    """
    index = next(i for i, x in enumerate(scenario.ldas) if x.name == lda_name)
    lda = scenario.ldas[index]
    net = network_from_source(lda.feeder)
    net.pop("profiles", None)  # SimBench's relative year tables (~12 MB): read from the cache
    horizon, fc = scenario.horizon, scenario.forecast
    actual = feeder_profiles(net, lda.feeder, horizon)
    forecast = forecast_profiles(
        actual,
        sgen_error_std(net.sgen, fc.pv_error_std, fc.wind_error_std),
        fc.load_error_std,
        scenario.seed,
        index,
    )
    der_config = lda.der
    if not der_config.id_prefix:
        der_config = der_config.model_copy(update={"id_prefix": f"{lda.name}/"})
    aggregators = build_aggregators(der_config, net, annual_peak_by_bus(net, lda), scenario.seed)
    bus_actual, bus_forecast = _bus_loads(actual, net), _bus_loads(forecast, net)
    devices = [d for agg in aggregators.values() for d in agg.devices]
    actual, forecast = (
        _remove_flexible_share(actual, net, devices),
        _remove_flexible_share(forecast, net, devices),
    )
    net = copy.deepcopy(net)
    der_sgen = {}
    for dev in devices:
        der_sgen[dev.device_id] = pp.create_sgen(
            net, dev.bus, p_mw=0.0, name=dev.device_id, type=f"DER {dev.kind}"
        )
    pv_names = sorted({d.params.profile for d in devices if isinstance(d, PVPlant)})
    pv_actual = {n: window(standard_profile(n), horizon) for n in pv_names}
    pv_forecast = {
        n: forecast_pu(pv_actual[n], fc.pv_error_std, scenario.seed, index, i)
        for i, n in enumerate(pv_names)
    }
    start = horizon.start
    return LDAModel(
        config=lda,
        index=index,
        interval_min=horizon.interval_min,
        start_offset_min=start.hour * 60 + start.minute,
        net=net,
        actual=actual,
        forecast=forecast,
        aggregators=aggregators,
        der_sgen=der_sgen,
        bus_load_actual_mw=bus_actual,
        bus_load_forecast_mw=bus_forecast,
        pv_pu_actual=pv_actual,
        pv_pu_forecast=pv_forecast,
    )


def _remove_flexible_share(
    prof: FeederProfiles, net: pp.pandapowerNet, devices: list
) -> FeederProfiles:
    """Scale loads at buses with a bus-profile flexible load by ``1 - share``."""
    share = pd.Series(0.0, index=net.bus.index)
    for d in devices:
        if isinstance(d, FlexibleLoad) and d.params.profile == BUS_PROFILE:
            share[d.bus] += d.params.share_of_bus_load
    if (share > 1.0).any():
        msg = f"flexible shares above 1 at buses {list(share[share > 1.0].index)}"
        raise ValueError(msg)
    factor = (1.0 - share[net.load.bus]).to_numpy()
    return FeederProfiles(prof.load_p_mw * factor, prof.load_q_mvar * factor, prof.sgen_p_mw)
