"""Epochs, representative days, hours and the discounting conventions (reference C1, C2).

Indexes: epoch ``y`` (1..n_epochs), day ``d``, hour ``h`` (1..24). Year index
``k`` stands for calendar year ``base_year + k``. Epoch y spans year indexes
``ys(y) = E(y-1)+1`` .. ``ye(y) = E y`` (E = ``epoch_years``); each epoch is one
representative year taken at ``ye(y)``.
"""

from __future__ import annotations

import pyomo.environ as pyo

from gridlayers.planner.config import PlannerConfig
from gridlayers.planner.inputs import PlannerInputs

DAYS_PER_YEAR = 365.0


def start_year_index(config: PlannerConfig, y: int) -> int:
    """Return ``ys(y)``, the year index of the first year of epoch ``y``."""
    return config.epoch_years * (y - 1) + 1


def end_year_index(config: PlannerConfig, y: int) -> int:
    """Return ``ye(y)``, the year index of the last (representative) year of epoch ``y``."""
    return config.epoch_years * y


def define_components(m: pyo.ConcreteModel, inputs: PlannerInputs, config: PlannerConfig) -> None:
    """Define time sets, day weights and discount factors.

    Notes
    -----
    - ``day_days_per_yr[d] = 365 w_d`` (tau_d, days/yr).
    - ``discount_factor[y] = (1+r)^-(ye(y)-1)`` (operation, externalities).
    - ``annuity_age_factor[y, v] = (1+r)^-(E (y-v))`` for ``v <= y``, else 0
      (annuities discounted by asset age only, C2).

    """
    r = config.discount_rate
    epochs = list(range(1, config.n_epochs + 1))
    m.EPOCHS = pyo.Set(initialize=epochs, ordered=True, doc="investment epochs y (index)")
    m.DAYS = pyo.Set(initialize=list(inputs.days), ordered=True, doc="representative days d")
    m.HOURS = pyo.Set(initialize=list(inputs.hours), ordered=True, doc="hours of day h (1..24)")
    m.first_hour = min(inputs.hours)
    m.last_hour = max(inputs.hours)
    m.TIMEPOINTS = pyo.Set(
        initialize=[(y, d, h) for y in epochs for d in inputs.days for h in inputs.hours],
        dimen=3,
        ordered=True,
        doc="timepoints (y, d, h)",
    )
    m.day_days_per_yr = pyo.Param(
        m.DAYS,
        initialize={d: DAYS_PER_YEAR * inputs.day_weight[d] for d in inputs.days},
        doc="tau_d: days per year represented by day d, days/yr",
    )
    m.discount_factor = pyo.Param(
        m.EPOCHS,
        initialize={y: (1.0 + r) ** -(end_year_index(config, y) - 1) for y in epochs},
        doc="DF(y): present-value factor of epoch y's representative year, p.u.",
    )
    m.annuity_age_factor = pyo.Param(
        m.EPOCHS,
        m.EPOCHS,
        initialize={
            (y, v): ((1.0 + r) ** -(config.epoch_years * (y - v)) if v <= y else 0.0)
            for y in epochs
            for v in epochs
        },
        doc="A(y,v): age discount of a vintage-v annuity paid in epoch y, p.u.",
    )


def weighted_hours_sum(m: pyo.ConcreteModel, term: object, y: int) -> object:
    """Return ``sum_d tau_d sum_h term(y, d, h)`` (MW -> MWh/yr).

    Parameters
    ----------
    m : pyomo.environ.ConcreteModel
        Model with the time sets.
    term : callable
        ``term(y, d, h)`` returning a power expression, MW.
    y : int
        Epoch.

    """
    return sum(m.day_days_per_yr[d] * sum(term(y, d, h) for h in m.HOURS) for d in m.DAYS)
