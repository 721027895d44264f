"""What operation delivered per LDA, read from a co-simulation's results store.

Per LDA and co-simulated day (feeder MW are divided by the LDA's scale ``s_a`` only
where a figure is reported at LDA scale; ratios need no scaling):

``flex_share_by_hour``   sum of ``flex_usable_mw`` over sum of ``flex_offered_mw`` of the
                         intervals in each hour of day (-): the share of the batteries'
                         and flexible loads' offered range the feeder could deliver at the
                         interface, with the other DER where the paradigm put them
                         (:meth:`gridlayers.agents.dso.DSOAgent._flexibility_probe`).
                         Intervals where that point is infeasible are left out; hours
                         without offered flexibility are ``None``.
``loss_factor``          feeder losses over interface throughput ``sum |P_import| dt``
                         (AC power flow, -), the planner's ``lam``.
``cost_adder_usd_per_mwh`` (redispatch + imbalance cost) over interface throughput
                         ($/MWh): what coordinating the LDA cost per MWh crossing it.
``peak_import_mw``       largest realised import at LDA scale (MW).
plus curtailed energy, violations and non-converged power flows as diagnostics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from gridlayers.results.store import ResultStore

_FEEDER = """
SELECT lda, hour(time) AS hour, sum(losses_mw) AS losses, sum(abs(p_import_mw)) AS throughput,
       max(p_import_mw) AS peak_import, sum(voltage_violations) AS voltage_violations,
       sum(thermal_violations) AS thermal_violations,
       sum(CASE WHEN converged THEN 0 ELSE 1 END) AS nonconverged
FROM feeder_interval WHERE paradigm = ? GROUP BY lda, hour(time)"""

_DSO = """
SELECT lda, hour(time) AS hour, coalesce(sum(redispatch_cost_usd), 0) AS redispatch,
       sum(flex_offered_mw) AS offered, sum(flex_usable_mw) AS usable
FROM dso_interval WHERE paradigm = ? GROUP BY lda, hour(time)"""

_IMBALANCE = """
SELECT f.lda, sum(abs(-f.p_import_mw - i.cleared_injection_mw)) AS imbalance_mw
FROM feeder_interval f JOIN interface_interval i USING (paradigm, interval, lda)
WHERE paradigm = ? GROUP BY f.lda"""

_CURTAILED = """
SELECT lda, sum(curtailed_mwh) AS curtailed FROM aggregator_interval
WHERE paradigm = ? GROUP BY lda"""

#: Offered flexibility below which an hour carries no information (MW summed over the hour).
MIN_OFFERED_MW = 1e-6


@dataclass(frozen=True)
class LDAMeasurement:
    """Operational outcome of one LDA over one co-simulated day."""

    flex_share_by_hour: list[float | None]
    loss_factor: float | None
    cost_adder_usd_per_mwh: float | None
    peak_import_mw: float
    throughput_mwh: float
    losses_mwh: float
    redispatch_cost_usd: float
    imbalance_cost_usd: float
    curtailed_mwh: float
    voltage_violations: int
    thermal_violations: int
    nonconverged_powerflows: int

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def _by_lda(frame: pd.DataFrame, lda: str) -> pd.DataFrame:
    return frame[frame["lda"] == lda]


def measure(
    store: ResultStore,
    paradigm: str,
    interval_h: float,
    scales: dict[str, float],
    imbalance_price_usd_per_mwh: float,
) -> dict[str, LDAMeasurement]:
    """Return each LDA's :class:`LDAMeasurement` from one paradigm's stored results.

    Parameters
    ----------
    store : ResultStore
        Results of one co-simulated day.
    paradigm : str
        The paradigm that was run (not ``passive``: it has no DSO to probe).
    interval_h : float
        Interval length (h).
    scales : dict of str to float
        ``s_a`` (feeder MW per LDA MW) of the LDAs to measure.
    imbalance_price_usd_per_mwh : float
        Price of interface deviations ($/MWh).

    """
    feeder = store.query(_FEEDER, [paradigm])
    dso = store.query(_DSO, [paradigm])
    imbalance = store.query(_IMBALANCE, [paradigm]).set_index("lda")["imbalance_mw"]
    curtailed = store.query(_CURTAILED, [paradigm]).set_index("lda")["curtailed"]
    out = {}
    for lda, scale in scales.items():
        f, d = _by_lda(feeder, lda), _by_lda(dso, lda).set_index("hour")
        throughput = float(f["throughput"].sum()) * interval_h
        losses = float(f["losses"].sum()) * interval_h
        redispatch = float(d["redispatch"].sum())
        imb = float(imbalance.get(lda, 0.0)) * interval_h * imbalance_price_usd_per_mwh
        hourly = d[["offered", "usable"]].reindex(range(24)).fillna(0.0)
        shares: list[float | None] = [
            min(1.0, usable / offered) if offered > MIN_OFFERED_MW else None
            for offered, usable in hourly.itertuples(index=False)
        ]
        out[lda] = LDAMeasurement(
            flex_share_by_hour=shares,
            loss_factor=losses / throughput if throughput > 0 else None,
            cost_adder_usd_per_mwh=(redispatch + imb) / throughput if throughput > 0 else None,
            peak_import_mw=float(f["peak_import"].max()) / scale if len(f) else 0.0,
            throughput_mwh=throughput / scale,
            losses_mwh=losses / scale,
            redispatch_cost_usd=redispatch / scale,
            imbalance_cost_usd=imb / scale,
            curtailed_mwh=float(curtailed.get(lda, 0.0)) / scale,
            voltage_violations=int(f["voltage_violations"].sum()),
            thermal_violations=int(f["thermal_violations"].sum()),
            nonconverged_powerflows=int(f["nonconverged"].sum()),
        )
    return out
