"""Typed configuration of the capacity expansion planner (the ``planner:`` section).

Every field carries its unit in its description. Defaults are the ``Default Value``
column of the MOTEP-OSW run-switch table (``data/isone8/cases_reference.csv``);
the SO and MO runs differ only in :attr:`PlannerConfig.multi_objective`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gridlayers.conventions import check_unique_names

HOURS_PER_DAY = 24


class LDAOperationalParams(BaseModel):
    """Operational parameters of one LDA that an operations->planning loop updates.

    Replace them (e.g. with :func:`gridlayers.planner.with_lda_operational`) and
    re-plan; nothing else in the configuration needs to change.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    flex_availability_by_hour: list[float] = Field(
        default_factory=lambda: [1.0] * HOURS_PER_DAY,
        description=(
            "Usable share (0..1, dimensionless) of the LDA's DER flexibility (battery "
            "power and flexible-load shift) at the interface, per hour of day (24 values)."
        ),
    )
    loss_factor: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Distribution loss factor (fraction of interface energy lost, per unit).",
    )
    operating_cost_adder_usd_per_mwh: float = Field(
        0.0,
        ge=0.0,
        description="DSO operating cost adder on interface energy (import + export), $/MWh.",
    )

    price_adder_usd_per_mwh: dict[int, list[float]] = Field(
        default_factory=dict,
        description=(
            "Zonal price adder on the LDA's net interface withdrawal (import minus export, "
            "transmission side), $/MWh, signed, per representative day (1-based data day) "
            "and hour of day (24 values); days not listed are 0. The loop sets it to the "
            "co-simulated zonal price premium the plan's own zonal prices miss (docs/loop.md)."
        ),
    )

    @field_validator("flex_availability_by_hour")
    @classmethod
    def _check_hours(cls, value: list[float]) -> list[float]:
        if len(value) != HOURS_PER_DAY or any(not 0.0 <= v <= 1.0 for v in value):
            msg = "flex_availability_by_hour needs 24 values in [0, 1]"
            raise ValueError(msg)
        return value

    @field_validator("price_adder_usd_per_mwh")
    @classmethod
    def _check_adder(cls, value: dict[int, list[float]]) -> dict[int, list[float]]:
        import math

        for day, hours in value.items():
            if len(hours) != HOURS_PER_DAY or not all(math.isfinite(v) for v in hours):
                msg = f"price_adder_usd_per_mwh[{day}] needs 24 finite values ($/MWh)"
                raise ValueError(msg)
        return value


class DERPVConfig(BaseModel):
    """Distributed PV candidate of an LDA (profile: the zone's normalised PV shape)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    capex_usd_per_mw: float = Field(1.6e6, ge=0.0, description="Overnight capex, $/MW.")
    fom_usd_per_mw_yr: float = Field(2.0e4, ge=0.0, description="Fixed O&M, $/MW-yr.")
    max_mw: float = Field(1.0e4, ge=0.0, description="Upper bound on total DER PV, MW.")


class DERBatteryConfig(BaseModel):
    """Distributed battery candidate of an LDA (cyclic daily state of charge)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    power_capex_usd_per_mw: float = Field(3.0e5, ge=0.0, description="Power capex, $/MW.")
    energy_capex_usd_per_mwh: float = Field(3.0e5, ge=0.0, description="Energy capex, $/MWh.")
    fom_usd_per_mw_yr: float = Field(3.0e4, ge=0.0, description="Fixed O&M, $/MW-yr.")
    duration_h: float = Field(2.0, gt=0.0, description="Energy-to-power ratio, h.")
    efficiency: float = Field(0.9, gt=0.0, le=1.0, description="One-way efficiency, per unit.")
    max_mw: float = Field(1.0e4, ge=0.0, description="Upper bound on total DER power, MW.")


class DERFlexConfig(BaseModel):
    """Flexible (shiftable, energy-neutral per day) load of an LDA."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_share: float = Field(
        0.0, ge=0.0, le=1.0, description="Shiftable share of the LDA load per hour, per unit."
    )
    cost_usd_per_mwh: float = Field(
        10.0, ge=0.0, description="Cost of shifting (on |shift|), $/MWh."
    )


class InterfaceConfig(BaseModel):
    """Transmission-distribution interface (substation) of an LDA."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    capacity_mw: float = Field(..., ge=0.0, description="Existing interface capacity, MW.")
    upgrade_max_mw: float = Field(0.0, ge=0.0, description="Largest total upgrade, MW.")
    upgrade_capex_usd_per_mw: float = Field(
        2.0e5, ge=0.0, description="Interface upgrade capex, $/MW."
    )
    life_years: int = Field(40, ge=1, description="Interface asset life, years.")


class LDAConfig(BaseModel):
    """One local distribution area aggregated at its transmission zone (interface bus)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(..., description="LDA identifier (unitless label).")
    zone: str = Field(..., description="Transmission zone (bus) name where the interface sits.")
    load_share: float = Field(
        ..., gt=0.0, le=1.0, description="Share of the zone's demand inside this LDA, per unit."
    )
    interface: InterfaceConfig = Field(..., description="Interface capacity and upgrade option.")
    pv: DERPVConfig = Field(default_factory=DERPVConfig, description="DER PV candidate.")
    battery: DERBatteryConfig = Field(
        default_factory=DERBatteryConfig, description="DER battery candidate."
    )
    flexible_load: DERFlexConfig = Field(
        default_factory=DERFlexConfig, description="Flexible load of the LDA."
    )
    financing_rate: float = Field(
        0.08, ge=0.0, lt=1.0, description="DER financing (capital recovery) rate, per unit/yr."
    )
    der_life_years: int = Field(25, ge=1, description="DER asset life, years.")
    operational: LDAOperationalParams = Field(
        default_factory=LDAOperationalParams,
        description="Operational parameters updated by the feedback loop.",
    )


class LDAExtensionConfig(BaseModel):
    """Optional LDA/DER extension of the planner."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ldas: list[LDAConfig] = Field(..., min_length=1, description="The LDAs to plan.")

    @field_validator("ldas")
    @classmethod
    def _unique_names(cls, ldas: list[LDAConfig]) -> list[LDAConfig]:
        check_unique_names([lda.name for lda in ldas])
        return ldas


class PlannerConfig(BaseModel):
    """The ``planner:`` section of a scenario file.

    Defaults reproduce the reference (MOTEP-OSW fixed-POI ISO-NE case, default column
    of ``cases_reference.csv``); SO sets ``multi_objective: false``, MO ``true``.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # --- data and scope ---------------------------------------------------------
    data_dir: Path | None = Field(
        None, description="Input data directory; None = bundled ISO-NE 8-zone data (isone8)."
    )
    data_format: Literal["isone8"] = Field(
        "isone8", description="Input adapter for data_dir (MOTEP-OSW ISO-NE CSV layout)."
    )
    zones: list[str] | None = Field(
        None, description="Subset of zones (bus names) to model; None = all zones."
    )
    days: list[int] | None = Field(
        None, description="Subset of representative days (1-based); None = all normal days."
    )
    n_epochs: int = Field(4, ge=1, description="Number of investment epochs (count).")
    epoch_years: int = Field(5, ge=1, description="Years per epoch, years.")
    base_year: int = Field(2022, description="Calendar year of year index 0, year.")
    n_normal_days: int = Field(5, ge=1, description="Normal representative days (e_num), count.")
    n_extreme_days: int = Field(5, ge=0, description="Extreme days in the data (e_numx), count.")
    extreme_days: bool = Field(
        False, description="Model extreme days (GSw_ExtremeScenarios); False folds their weights."
    )
    # --- objective switches -----------------------------------------------------
    multi_objective: bool = Field(
        True, description="Add externalities to the objective (GSw_MultiObj; SO=False, MO=True)."
    )
    emissions: bool = Field(True, description="Account CO2 emissions (GSw_Emission).")
    air_quality: bool = Field(True, description="Account air-quality damages (GSw_AirQuality).")
    co2_price_usd_per_t: float = Field(51.0, ge=0.0, description="Social cost of carbon, $/t.")
    aq_damage_scale: float = Field(1.0, ge=0.0, description="Multiplier of AQ damages (k_AQ).")
    aq_usd_2016_to_2020: float = Field(
        1.08, gt=0.0, description="Inflation factor of damage data, 2020$ per 2016$."
    )
    obj_scale: float = Field(1e-3, gt=0.0, description="Objective scaling factor, 1/$.")
    # --- economics ----------------------------------------------------------------
    discount_rate: float = Field(0.05, ge=0.0, description="Discount rate r, per unit/yr.")
    line_life_years: int = Field(30, ge=1, description="Transmission asset life LT, years.")
    generator_life_years: int = Field(30, ge=1, description="Generator life GT, years.")
    storage_life_years: int = Field(30, ge=1, description="Storage life ST, years.")
    voll_usd_per_mwh: float = Field(5000.0, ge=0.0, description="Value of lost load, $/MWh.")
    curtailment_cost_usd_per_mwh: float = Field(
        0.0, ge=0.0, description="Renewable spillage penalty VoWS, $/MWh."
    )
    onshore_line_cost_usd_per_mw_mile: float = Field(
        3888.5, ge=0.0, description="Onshore upgrade cost (3500*1.111), $/MW-mile."
    )
    onshore_line_cost_scale: float = Field(
        1.0, ge=0.0, description="Multiplier of onshore line cost (k_scale_OnshoreLineCost)."
    )
    # --- operations -----------------------------------------------------------------
    load_growth_per_year: float = Field(0.023, description="Annual load growth, per unit/yr.")
    rps: bool = Field(True, description="Enforce state RPS per zone (GSw_RPS).")
    demand_flexibility: bool = Field(True, description="Flexible demand blocks on.")
    alpha_flex: float = Field(0.1, ge=0.0, le=1.0, description="Flexible share of load, p.u.")
    flex_reference_cost_usd_per_mwh: float = Field(
        402.1, description="Marginal cost behind the flexible-demand WTP steps, $/MWh."
    )
    curtailment_max_share: float = Field(
        0.5, ge=0.0, le=1.0, description="Max curtailed share of available RE (alpha_plus), p.u."
    )
    reserve_response_h: float = Field(
        0.166666667, gt=0.0, description="Spinning-reserve response time delta_t, h."
    )
    reserve_load_share: float = Field(0.03, ge=0.0, description="Reserve per MW of load, p.u.")
    reserve_re_share: float = Field(0.05, ge=0.0, description="Reserve per MW of RE, p.u.")
    new_gas_ramp_mw_per_h: float = Field(
        400.0, ge=0.0, description="Ramp limit of new gas per zone and technology, MW/h."
    )
    new_gas_co2_t_per_mwh: float = Field(
        0.725072727, ge=0.0, description="CO2 rate of new gas (cc and ct), t/MWh."
    )
    new_cc_aq_usd2016_per_mwh: float = Field(22.415, description="AQ damage of new CC, 2016$/MWh.")
    new_ct_aq_usd2016_per_mwh: float = Field(26.22, description="AQ damage of new CT, 2016$/MWh.")
    exogenous_retirements: bool = Field(True, description="Retire units at planned year.")
    # --- technologies -------------------------------------------------------------
    battery: bool = Field(True, description="Allow battery builds (GSw_Battery).")
    battery_offshore: bool = Field(False, description="Allow batteries at offshore nodes.")
    eff_charging: float = Field(0.86, gt=0.0, le=1.0, description="Charging efficiency, p.u.")
    eff_discharging: float = Field(0.86, gt=0.0, le=1.0, description="Discharge efficiency, p.u.")
    k_cal: float = Field(0.03, ge=0.0, description="Calendar degradation per year, p.u./yr.")
    k_cycle: float = Field(0.03, ge=0.0, description="Cycling degradation per year, p.u./yr.")
    battery_duration_h: float = Field(4.0, gt=0.0, description="Battery energy/power, h.")
    battery_min_soc_share: float = Field(0.2, ge=0.0, description="Depth-of-discharge floor, p.u.")
    battery_initial_soc_share: float = Field(0.8, ge=0.0, description="Day start/end SoC, p.u.")
    battery_soc_mode: Literal["reference", "cyclic"] = Field(
        "reference",
        description=(
            "'reference' reproduces the code (no SoC equation at hour 1); 'cyclic' adds it "
            "from the fixed day-start SoC (strict energy balance)."
        ),
    )
    offshore_transmission: bool = Field(True, description="Offshore cable choices (GSw_OSW).")
    big_m_mode: Literal["reference", "tight"] = Field(
        "tight",
        description=(
            "Big-M of the disjunctive angle constraints: 'reference' = (pi/2)/x_l rad; "
            "'tight' = corridor upgrades as |g - f| <= s_max (1 - Z) MW (x_l dropped, "
            "using x_l f = dtheta) and AC cables with 2 pi + x_l x (largest HVDC flow "
            "on the route) rad; both valid, same integer-feasible set, tighter relaxation."
        ),
    )
    # --- solver -------------------------------------------------------------------
    mip_gap: float = Field(1e-4, ge=0.0, description="Relative MIP gap, p.u.")
    time_limit_s: float | None = Field(
        600.0,
        gt=0.0,
        description=(
            "Wall-clock limit of the solve (matrix compile included, reading and build "
            "not), s; at the limit the best plan found and its proven bound are reported. "
            "null = no limit. `gridlayers plan --time-limit` overrides it."
        ),
    )
    threads: int | None = Field(None, ge=1, description="Solver threads, count.")
    solve_method: Literal["monolithic", "benders"] = Field(
        "monolithic",
        description=(
            "'monolithic' = one HiGHS branch-and-bound on the whole MILP; 'benders' = "
            "Benders decomposition over the operating days (planner/benders.py), same "
            "optimum and proven gap, much faster on the ISO-NE model."
        ),
    )
    lda: LDAExtensionConfig | None = Field(None, description="Optional LDA/DER extension.")

    @property
    def crf_generation(self) -> float:
        """Capital recovery factor of generators, 1/yr."""
        return capital_recovery_factor(self.discount_rate, self.generator_life_years)


def capital_recovery_factor(rate: float, life_years: int) -> float:
    """Return the capital recovery factor ``r(1+r)^n / ((1+r)^n - 1)``.

    Parameters
    ----------
    rate : float
        Interest rate, per unit per year.
    life_years : int
        Asset life, years.

    Returns
    -------
    float
        Annuity per $ of capital, 1/yr (``1/n`` when ``rate`` is 0).

    """
    if rate == 0.0:
        return 1.0 / life_years
    growth = (1.0 + rate) ** life_years
    return rate * growth / (growth - 1.0)


def with_lda_operational(
    config: PlannerConfig, params: dict[str, LDAOperationalParams]
) -> PlannerConfig:
    """Return a copy of ``config`` with the operational parameters of some LDAs replaced.

    Parameters
    ----------
    config : PlannerConfig
        Configuration with an ``lda`` section.
    params : dict of str to LDAOperationalParams
        New parameters by LDA name.

    Returns
    -------
    PlannerConfig
        The updated copy (``config`` is unchanged).

    """
    if config.lda is None:
        msg = "config has no lda section"
        raise ValueError(msg)
    unknown = set(params) - {lda.name for lda in config.lda.ldas}
    if unknown:
        msg = f"unknown LDA names: {sorted(unknown)}"
        raise KeyError(msg)
    ldas = [
        lda.model_copy(update={"operational": params[lda.name]}) if lda.name in params else lda
        for lda in config.lda.ldas
    ]
    return config.model_copy(update={"lda": LDAExtensionConfig(ldas=ldas)})
