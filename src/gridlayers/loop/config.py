"""The ``loop:`` section of a scenario: how operations feed back into the plan."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class LoopConfig(BaseModel):
    """Settings of ``gridlayers loop`` and ``gridlayers validate-plan``.

    The scenario's ``planner.lda.ldas`` and its co-simulation ``ldas`` are matched by
    name: each planner LDA (an aggregate of hundreds of MW) is represented by the
    feeder of the co-simulation LDA with the same name, scaled by peak load.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    days: dict[int, dt.date] = Field(
        ...,
        min_length=1,
        description=(
            "Planner representative day (its index in the planner data) -> calendar date "
            "whose feeder profiles represent it in the co-simulation (SimBench year 2016)."
        ),
    )
    damping: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Weight of the new measurement in each parameter update (1 = no damping, -).",
    )
    tolerance_mw: float = Field(
        1.0,
        gt=0.0,
        description=(
            "Converged when no LDA's DER PV, DER battery or interface capacity moves by more "
            "than this between iterations (MW)."
        ),
    )
    max_iterations: int = Field(8, ge=1, description="Most plan/co-simulate rounds (-).")
    buses_per_technology: int = Field(
        8,
        ge=1,
        description=(
            "Feeder buses (largest annual peak load first) that carry the planned PV, "
            "batteries and flexible load, each sized in proportion to the bus peak (-)."
        ),
    )
    planned_transmission: bool = Field(
        False,
        description=(
            "Co-simulate each round on the planned ISO-NE system: the transmission net is "
            "rebuilt from the plan for every planner day (last epoch's fleet, the plan's "
            "new gas, wind, PV and corridor upgrades, loads grown to the last epoch; "
            "gridlayers.grid.isone_net). Needs the ISO-NE planner data and the ISO-NE net "
            "as the scenario's transmission."
        ),
    )
    price_feedback: bool = Field(
        False,
        description=(
            "Feed the zonal price premium operation saw and the plan's own zonal prices "
            "miss back to the planner, per LDA, planner day and hour, as its "
            "price_adder_usd_per_mwh (damped). Needs each planner LDA's interface bus to be "
            "its zone's bus (bus name = zone)."
        ),
    )
    min_loss_factor: float = Field(
        0.0, ge=0.0, lt=1.0, description="Lower clip of a measured loss factor (-)."
    )
    max_loss_factor: float = Field(
        0.25, gt=0.0, lt=1.0, description="Upper clip of a measured loss factor (-)."
    )
