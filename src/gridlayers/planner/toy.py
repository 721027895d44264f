"""Hand-sized planner inputs for tests and examples (no files).

:func:`toy_inputs` builds a :class:`~gridlayers.planner.inputs.PlannerInputs`
with one representative day of ``len(demand_mw[z])`` hours, a prohibitive default
cost for every new technology (override with ``costs``), no RPS targets and
constant per-hour profiles given by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from gridlayers.planner.inputs import COST_COLUMNS, LINE_COLUMNS, UNIT_COLUMNS, PlannerInputs

#: Default (prohibitive) ATB-style costs, file units ($/kW, $/kW-yr, $/MWh, $/kWh).
PROHIBITIVE_COSTS = {c: (1e6 if c.startswith(("Cp", "CE", "CP")) else 0.0) for c in COST_COLUMNS}


def toy_costs(n_years: int, overrides: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Return a constant cost table for year indexes ``1..n_years``.

    Parameters
    ----------
    n_years : int
        Number of year indexes (>= n_epochs x epoch_years).
    overrides : mapping, optional
        Column -> value in file units (e.g. ``{"CE": 2.0}`` $/kWh).

    """
    row = {**PROHIBITIVE_COSTS, **(overrides or {})}
    return pd.DataFrame([row] * n_years, index=pd.Index(range(1, n_years + 1), name="year_index"))


def toy_inputs(
    demand_mw: Mapping[str, Sequence[float]],
    units: Sequence[Mapping[str, object]],
    lines: Sequence[Mapping[str, object]] = (),
    *,
    offshore_zones: Sequence[str] = (),
    existing_re_mw: Mapping[str, Sequence[float]] | None = None,
    cf_pv: Sequence[float] | None = None,
    cf_wind: Sequence[float] | None = None,
    costs: Mapping[str, float] | None = None,
    n_years: int = 20,
) -> PlannerInputs:
    """Build small planner inputs by hand.

    Parameters
    ----------
    demand_mw : mapping of zone to sequence of float
        Hourly demand of the single representative day per zone, MW (defines the
        zones, in order, and the number of hours). The last zone is the slack.
    units : sequence of mapping
        Existing units with the keys of :data:`~gridlayers.planner.inputs.UNIT_COLUMNS`
        (missing keys: ramps 1e6 MW/h, emissions 0, retirement 2100).
    lines : sequence of mapping
        Lines with the keys of :data:`~gridlayers.planner.inputs.LINE_COLUMNS`.
    offshore_zones : sequence of str
        Zones treated as offshore nodes.
    existing_re_mw : mapping of zone to sequence of float, optional
        Exogenous renewable output, MW (default 0).
    cf_pv, cf_wind : sequence of float, optional
        Hourly availability of new PV / wind, same for all zones, p.u. (default 0).
    costs : mapping, optional
        Cost overrides for :func:`toy_costs`.
    n_years : int
        Rows of the cost table.

    """
    zones = tuple(demand_mw)
    n_hours = len(next(iter(demand_mw.values())))
    hours = tuple(range(1, n_hours + 1))
    re0 = existing_re_mw or {}

    def keyed(
        per_zone: Mapping[str, Sequence[float]] | None,
        shared: Sequence[float] | None,
    ) -> dict[tuple[str, int, int], float]:
        return {
            (z, 1, h): float(
                per_zone[z][h - 1]
                if per_zone and z in per_zone
                else (shared[h - 1] if shared is not None else 0.0)
            )
            for z in zones
            for h in hours
        }

    defaults = {
        "ramp_up_mw_per_h": 1e6,
        "ramp_down_mw_per_h": 1e6,
        "co2_t_per_mwh": 0.0,
        "aq_usd2016_per_mwh": 0.0,
        "retirement_year": 2100.0,
    }
    unit_df = pd.DataFrame(
        [{**defaults, **u} for u in units], index=pd.Index(range(1, len(units) + 1), name="unit")
    )
    line_df = pd.DataFrame(
        [dict(ln) for ln in lines],
        columns=list(LINE_COLUMNS),
        index=pd.Index(range(1, len(lines) + 1), name="line"),
    )
    return PlannerInputs(
        zones=zones,
        offshore_zones=frozenset(offshore_zones),
        slack_zone=zones[-1],
        days=(1,),
        hours=hours,
        day_weight={1: 1.0},
        demand_mw=keyed(demand_mw, None),
        existing_re_mw=keyed(re0, None),
        cf_wind=keyed(None, cf_wind),
        cf_pv=keyed(None, cf_pv),
        units=unit_df.reindex(columns=list(UNIT_COLUMNS)),
        lines=line_df,
        costs=toy_costs(n_years, costs),
        rps=(),
        source="toy",
    )
