"""Scenario schema: the YAML file that decides what a gridlayers run does.

Every field carries its unit in its description. The schema is printed by
``gridlayers schema``; ``docs/scenario-reference.md`` explains it with examples.
Structural checks live here; checks that need to open networks or profiles
(does the SimBench code exist, is the interface bus in the transmission net)
live in :mod:`gridlayers.scenarios.resolve`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from gridlayers.conventions import (
    DEFAULT_MAX_LOADING_PERCENT,
    DEFAULT_VM_MAX_PU,
    DEFAULT_VM_MIN_PU,
    SECONDS_PER_MINUTE,
    check_unique_names,
)
from gridlayers.der.config import DERConfig
from gridlayers.loop.config import LoopConfig
from gridlayers.planner.config import PlannerConfig

#: Profile resolution of SimBench data in minutes.
PROFILE_RESOLUTION_MIN = 15
#: Longest horizon (days): ten profile years (profiles repeat after one).
MAX_HORIZON_DAYS = 3660

Paradigm = Literal["passive", "minimal_dso", "total_dso", "total_tso", "iterative"]


class _Strict(BaseModel):
    # NaN and infinity are never valid settings: reject them in every float field
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _relative_to_scenario(path: Path | None, info: ValidationInfo) -> Path | None:
    """Resolve ``path`` against the scenario file's folder (passed as validation context)."""
    if path is None or path.is_absolute() or not info.context:
        return path
    return Path(info.context["base_dir"]) / path


def _exactly_one(model: BaseModel, fields: tuple[str, ...], what: str) -> None:
    given = [f for f in fields if getattr(model, f) is not None]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        msg = f"give exactly one {what} source out of {', '.join(fields)} (found: {found})"
        raise ValueError(msg)


class TransmissionConfig(_Strict):
    """The transmission system the TSO clears (DC-OPF)."""

    case: str | None = Field(
        None,
        description="Name of a pandapower.networks function, e.g. 'case39' or 'case118'.",
    )
    json_path: Path | None = Field(
        None,
        alias="json",
        description="Path to a pandapower JSON network (relative to the scenario file).",
    )
    load_profile: str = Field(
        "mv_urban",
        description=(
            "SimBench standard load profile that scales every transmission load over time "
            "(normalised to its annual peak, so the net's p_mw is the annual peak), 'flat', "
            "or 'isone8_day<d>' (d = 1..10): the hourly ISO-NE system load minus existing "
            "wind and solar of day d of the bundled planner data, over its peak-hour load, "
            "repeated every day (for the ISO-NE 8-zone net of gridlayers.grid.isone_net)."
        ),
    )
    cost_segments: int | None = Field(
        20,
        gt=0,
        description=(
            "Secant segments per quadratic generator cost curve, so every clearing is a pure "
            "LP (robust with embedded feeder models under Total TSO); null = exact quadratic "
            "costs (a QP, as pandapower's rundcopp)."
        ),
    )
    min_generation: Literal["dispatchable", "must_run"] = Field(
        "dispatchable",
        description=(
            "The DC-OPF has no unit commitment. 'dispatchable': every generator may go down to "
            "0 MW (units can be decommitted); 'must_run': min_p_mw of gen/sgen/ext_grid is "
            "enforced, as in pandapower's rundcopp (may be infeasible at low load)."
        ),
    )
    # Calibration of the case (gridlayers.grid.calibration): each option edits the
    # pandapower net, so rundcopp and the market clear the same calibrated problem.
    load_scaling: float = Field(
        1.0,
        gt=0.0,
        allow_inf_nan=False,
        description=(
            "Calibration: multiplier (-) on every transmission load (net.load.scaling), on "
            "top of load_profile; e.g. 1.4 makes the mv_urban peak of 1 June (0.64 of its "
            "annual peak) 0.9 of the case's load."
        ),
    )
    generator_technologies: str | None = Field(
        None,
        description=(
            "Calibration: generator technology table, the name of a table bundled with "
            "gridlayers ('activsg200' for case_illinois200) or a path ending in '.csv' "
            "(relative to the scenario file; columns element = gen/sgen/ext_grid, index, "
            "technology, optional bus). Needed by availability and marginal_cost_usd_per_mwh."
        ),
    )
    marginal_cost_usd_per_mwh: dict[str, float] | None = Field(
        None,
        description=(
            "Calibration: marginal cost per technology ($/MWh, >= 0) replacing the linear "
            "cost coefficient (poly_cost cp1) of every generator; the case's quadratic and "
            "constant terms are kept. Every technology of the table needs a value."
        ),
    )
    availability: dict[str, float] | None = Field(
        None,
        description=(
            "Calibration: available fraction (-, 0..1) of max_p_mw per technology, e.g. "
            "{wind: 0.3} for a summer wind capacity factor; technologies not named keep "
            "their full max_p_mw."
        ),
    )
    meshed_branch_rating_factor: float = Field(
        1.0,
        gt=0.0,
        allow_inf_nan=False,
        description=(
            "Calibration: multiplier (-) on max_loading_percent of every in-service line and "
            "transformer whose outage would not split the grid (a proxy for the N-1 security "
            "margin the DC-OPF does not model); radial branches keep their rating."
        ),
    )

    _resolve_json = field_validator("json_path")(_relative_to_scenario)

    @field_validator("load_profile")
    @classmethod
    def _planner_day_profile(cls, value: str) -> str:
        if not value.startswith("isone8"):
            return value
        from gridlayers.grid.isone_net import PLANNER_PROFILE_DAYS, planner_profile_day

        day = planner_profile_day(value)
        if day not in PLANNER_PROFILE_DAYS:
            last = PLANNER_PROFILE_DAYS[-1]
            msg = f"an ISO-NE planner-day profile is 'isone8_day<d>' with d in 1..{last}"
            raise ValueError(msg)
        return value

    @field_validator("generator_technologies")
    @classmethod
    def _technology_table(cls, spec: str | None, info: ValidationInfo) -> str | None:
        if spec is None:
            return None
        from gridlayers.grid.calibration import read_technology_table

        if spec.endswith(".csv"):
            spec = str(_relative_to_scenario(Path(spec), info))
        read_technology_table(spec)  # ValueError names the problem
        return spec

    @field_validator("marginal_cost_usd_per_mwh", "availability")
    @classmethod
    def _per_technology(
        cls, values: dict[str, float] | None, info: ValidationInfo
    ) -> dict[str, float] | None:
        import math

        if values is None:
            return None
        upper, unit = (1.0, "-") if info.field_name == "availability" else (math.inf, "$/MWh")
        for tech, value in values.items():
            if not (math.isfinite(value) and 0.0 <= value <= upper):
                bounds = "between 0 and 1" if upper == 1.0 else "finite and >= 0"
                msg = f"value for {tech!r} must be {bounds} ({unit}), got {value}"
                raise ValueError(msg)
        if "generator_technologies" not in info.data:  # its own error is reported
            return values
        spec = info.data["generator_technologies"]
        if spec is None:
            msg = "needs generator_technologies (which generator has which technology)"
            raise ValueError(msg)
        from gridlayers.grid.calibration import read_technology_table

        known = set(read_technology_table(spec).technology)
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"technologies {unknown} are not in {spec!r} (it has {sorted(known)})"
            raise ValueError(msg)
        missing = sorted(known - set(values))
        if info.field_name == "marginal_cost_usd_per_mwh" and missing:
            msg = f"no marginal cost for the technologies {missing} of {spec!r}"
            raise ValueError(msg)
        return values

    @model_validator(mode="after")
    def _one_source(self) -> TransmissionConfig:
        _exactly_one(self, ("case", "json_path"), "transmission network")
        return self


class FeederConfig(_Strict):
    """The distribution network of one LDA, solved with AC power flow every interval."""

    simbench: str | None = Field(
        None, description="SimBench code, e.g. '1-MV-rural--0-sw'; uses the feeder's own profiles."
    )
    json_path: Path | None = Field(
        None,
        alias="json",
        description="Path to a pandapower JSON feeder (relative to the scenario).",
    )
    pandapower: str | None = Field(
        None, description="Name of a pandapower.networks feeder function, e.g. 'mv_oberrhein'."
    )
    load_scaling: float = Field(1.0, ge=0.0, description="Multiplier on every load (-).")
    sgen_scaling: float = Field(
        1.0, ge=0.0, description="Multiplier on every static generator (-)."
    )
    load_profile: str = Field(
        "mv_semiurb",
        description=(
            "SimBench standard load profile for feeders without their own profiles "
            "(JSON or pandapower.networks feeders); ignored for SimBench feeders."
        ),
    )
    sgen_profile: str = Field(
        "PV3",
        description=(
            "SimBench standard generation profile for static generators of feeders without "
            "their own profiles; ignored for SimBench feeders."
        ),
    )

    _resolve_json = field_validator("json_path")(_relative_to_scenario)

    @model_validator(mode="after")
    def _one_source(self) -> FeederConfig:
        _exactly_one(self, ("simbench", "json_path", "pandapower"), "feeder network")
        return self


class LimitsConfig(_Strict):
    """Operating limits of an LDA's feeder.

    The physics layer counts violations against them; the DSO (and the TSO under
    ``total_tso``) plans voltages within the band narrowed by ``voltage_margin_pu``.
    """

    vm_min_pu: float = Field(DEFAULT_VM_MIN_PU, gt=0.0, description="Lower voltage limit (pu).")
    vm_max_pu: float = Field(DEFAULT_VM_MAX_PU, gt=0.0, description="Upper voltage limit (pu).")
    max_loading_percent: float = Field(
        DEFAULT_MAX_LOADING_PERCENT, gt=0.0, description="Line/transformer loading limit (%)."
    )
    voltage_margin_pu: float = Field(
        0.0025,
        ge=0.0,
        lt=0.05,
        description=(
            "Voltage margin (pu) for forecast error: the DSO (and the TSO under total_tso) "
            "plans feeder voltages within [vm_min_pu + margin, vm_max_pu - margin]; the "
            "physics layer still counts violations against [vm_min_pu, vm_max_pu]."
        ),
    )
    slack_penalty_usd_per_mwh: float = Field(
        5000.0,
        gt=0.0,
        description=(
            "price of feeder voltage/thermal limit slack ($ per MW-equivalent and hour; "
            "see docs/dso.md) in the TSO market (total_tso) and in the DSO's soft-limit "
            "fallback when no dispatch meets the limits (total_dso, minimal_dso). Above "
            "every DER offer, below the value of lost load."
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> LimitsConfig:
        if self.vm_min_pu >= self.vm_max_pu:
            msg = f"vm_min_pu ({self.vm_min_pu}) must be below vm_max_pu ({self.vm_max_pu})"
            raise ValueError(msg)
        if self.vm_min_pu + self.voltage_margin_pu >= self.vm_max_pu - self.voltage_margin_pu:
            msg = (
                f"voltage_margin_pu ({self.voltage_margin_pu}) leaves no voltage band between "
                f"vm_min_pu ({self.vm_min_pu}) and vm_max_pu ({self.vm_max_pu})"
            )
            raise ValueError(msg)
        return self


class SubAreaConfig(_Strict):
    """A sub-area of an LDA's feeder (microgrid, building) with its own operator (total_dso)."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description=(
            "Identifier, unique among the LDA's sub-areas at every depth and not the name of "
            "an LDA (letters, digits, underscore; starts with a letter)."
        ),
    )
    pcc_bus: int = Field(
        ge=0,
        description=(
            "Feeder (pandapower) bus of the point of common coupling: the sub-area is the "
            "subtree of the radial feeder below and including this bus; strictly inside its "
            "parent's subtree (not the parent's PCC bus), disjoint from its siblings, not the "
            "feeder's root, fed by exactly one in-service line or transformer."
        ),
    )
    max_import_mw: float | None = Field(
        None,
        ge=0.0,
        description=(
            "Limit on the sub-area's net import at its PCC (MW), known only to its own "
            "operator; none if omitted."
        ),
    )
    max_export_mw: float | None = Field(
        None,
        ge=0.0,
        description=(
            "Limit on the sub-area's net export at its PCC (MW), known only to its own "
            "operator; none if omitted."
        ),
    )
    subareas: list[SubAreaConfig] = Field(
        default_factory=list,
        description="Nested sub-areas (e.g. buildings in a microgrid), the same fields.",
    )


def _walk_subareas(
    areas: list[SubAreaConfig], loc: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], SubAreaConfig]]:
    """Yield ``(location, sub-area)`` of ``areas`` and all their nested ones, parents first."""
    for j, area in enumerate(areas):
        yield (*loc, j), area
        yield from _walk_subareas(area.subareas, (*loc, j, "subareas"))


def _loc_text(loc: tuple[str | int, ...]) -> str:
    """Render a location as ``ldas[0].subareas[1]``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _raise_at(loc: tuple[str | int, ...], problem: str, value: Any) -> None:
    """Raise a validation error at the field ``loc`` (a model validator's has none)."""
    error = PydanticCustomError("value_error", "{problem}", {"problem": problem})
    details = InitErrorDetails(type=error, loc=loc, input=value)
    raise ValidationError.from_exception_data("Scenario", [details])


def _subarea_problem(scenario: Scenario) -> tuple[tuple[str | int, ...], str, Any] | None:
    """Return ``(location, problem and fix, value found)`` of the first misfit ``subareas``.

    Checks that need no network (the feeder-dependent ones are in
    :func:`gridlayers.scenarios.resolve.resolve_scenario`): a sub-area's name is unique
    among its LDA's areas at every depth and is no LDA's name (both appear in
    ``area_interface.area``/``parent`` and name the ``Area`` entities); under
    ``total_dso`` the DSO strategy is not ``external`` and the LDAs run in-process.
    """
    lda_names = [lda.name for lda in scenario.ldas]
    nested = [i for i, lda in enumerate(scenario.ldas) if lda.subareas]
    for i in nested:
        seen: dict[str, str] = {}
        for loc, area in _walk_subareas(scenario.ldas[i].subareas, ("ldas", i, "subareas")):
            where = (*loc, "name")
            if area.name in lda_names:
                problem = (
                    f"sub-area name {area.name!r} is the name of an LDA (LDA and area names "
                    "share area_interface.parent); rename the sub-area"
                )
                return where, problem, area.name
            if area.name in seen:
                problem = (
                    f"sub-area name {area.name!r} is already used by {seen[area.name]} (names "
                    "are unique among an LDA's sub-areas at every depth); rename one of them"
                )
                return where, problem, area.name
            seen[area.name] = _loc_text(loc)
    if not nested or "total_dso" not in scenario.paradigms:
        return None
    for i in nested:
        if scenario.ldas[i].dso_strategy == "external":
            problem = (
                "the 'external' DSO strategy cannot run an LDA with sub-areas under total_dso "
                "(their awards need the DSO's own dispatch at each PCC); use 'optimal' or "
                "'pro_rata', remove 'subareas', or drop 'total_dso' from 'paradigms'"
            )
            return ("ldas", i, "dso_strategy"), problem, "external"
    if scenario.simulators.lda != "python":
        names = [lda_names[i] for i in nested]
        problem = (
            f"sub-areas of LDAs {names} under total_dso need in-process LDAs; set "
            "simulators.lda: python (see docs/layers.md)"
        )
        return ("simulators", "lda"), problem, scenario.simulators.lda
    return None


class LDAConfig(_Strict):
    """One local distribution area: a feeder below one T–D interface bus."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="Identifier (letters, digits, underscore; starts with a letter).",
    )
    interface_bus: int = Field(
        ge=0, description="Index of the interface bus in the transmission net's bus table."
    )
    feeder: FeederConfig
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    dso_strategy: str = Field(
        "optimal",
        description=(
            "DSO behaviour (gridlayers.dso.strategies registry): 'optimal' (least-cost "
            "disaggregation within feeder limits) or 'pro_rata' (split awards pro rata); or "
            "'package.module:ClassName', a strategy of your own, which imports and runs that "
            "module and so needs the opt-in --allow-import (or GRIDLAYERS_ALLOW_IMPORT=1)."
        ),
    )
    dso_params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Parameters of the DSO strategy, e.g. for 'external' {endpoint: "
            "'tcp://127.0.0.1:5555', timeout_ms: 1000, fallback: optimal} "
            "(docs/external-agents.md); checked when the strategy is built."
        ),
    )
    der: DERConfig = Field(
        default_factory=DERConfig,
        description="DER of the LDA: explicit devices and penetration rules (see docs/der.md).",
    )
    subareas: list[SubAreaConfig] = Field(
        default_factory=list,
        description=(
            "Sub-areas with their own operators below the DSO (recursive layers, "
            "docs/layers.md); used under 'total_dso' only, other paradigms treat their "
            "devices as the LDA's."
        ),
    )


class HorizonConfig(_Strict):
    """Which market intervals are simulated."""

    start: dt.datetime = Field(
        description=(
            "Start of the first interval, e.g. '2016-06-01 00:00'. Profiles are read at the same "
            "day of year and time of day in the profile year."
        )
    )
    intervals: int = Field(gt=0, description="Number of market intervals (-).")
    interval_min: int = Field(
        15,
        gt=0,
        description="Interval length in minutes: a multiple of 15 or a divisor of 15.",
    )

    @field_validator("interval_min")
    @classmethod
    def _compatible_with_profiles(cls, value: int) -> int:
        if value % PROFILE_RESOLUTION_MIN and PROFILE_RESOLUTION_MIN % value:
            msg = f"interval_min must be a multiple or divisor of 15 minutes, found {value}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _bounded(self) -> HorizonConfig:
        days = self.intervals * self.interval_min / (24 * 60)
        if days > MAX_HORIZON_DAYS:
            msg = f"the horizon spans {days:,.0f} days; at most {MAX_HORIZON_DAYS} are simulated"
            raise ValueError(msg)
        return self

    @property
    def interval_s(self) -> int:
        """Interval length in seconds (the mosaik step size)."""
        return self.interval_min * SECONDS_PER_MINUTE


class ForecastConfig(_Strict):
    """Forecast errors: decisions use forecasts, the physics layer uses actuals."""

    load_error_std: float = Field(
        0.03, ge=0.0, description="Std. dev. of the relative load forecast error (-)."
    )
    pv_error_std: float = Field(
        0.10, ge=0.0, description="Std. dev. of the relative PV forecast error (-)."
    )
    wind_error_std: float = Field(
        0.10, ge=0.0, description="Std. dev. of the relative wind forecast error (-)."
    )
    bulk_load_error_std: float = Field(
        0.02,
        ge=0.0,
        description=(
            "Std. dev. of the relative forecast error of every transmission (bulk) load, drawn "
            "per load and interval (-). The forward clearing uses the forecast, the real-time "
            "stage the actual load."
        ),
    )


class SettlementConfig(_Strict):
    """How deviations of the realised interface flow from the cleared interchange are paid."""

    deviation: Literal["real_time", "penalty"] = Field(
        "real_time",
        description=(
            "'real_time' (two-settlement): every deviation from the forward schedule is "
            "settled at the real-time LMP of its bus. 'penalty': in addition, each LDA pays "
            "imbalance_price_usd_per_mwh on the absolute deviation of its interface energy."
        ),
    )
    imbalance_price_usd_per_mwh: float = Field(
        50.0,
        ge=0.0,
        description=(
            "Penalty on the absolute deviation between realised and cleared interface energy "
            "of every LDA and interval ($/MWh); charged only with deviation: penalty, and used "
            "by 'gridlayers loop' to price imbalance in the LDA cost adder."
        ),
    )


class CoordinationConfig(_Strict):
    """Iterative TSO-DSO coordination (paradigm 'iterative'): ADMM rounds per interval."""

    penalty_usd_per_mwh_per_mw: float = Field(
        0.2,
        gt=0.0,
        le=1.0e4,
        description=(
            "ADMM penalty rho on the interface mismatch (($/MWh) per MW): both sides add "
            "rho/2 (p_TSO - p_DSO)^2 ($/h) and the interface price moves by rho times the "
            "mismatch each round. Larger: fewer rounds to agree, slower price discovery."
        ),
    )
    tolerance_mw: float = Field(
        0.01,
        gt=0.0,
        le=100.0,
        description=(
            "Convergence tolerance (MW): the rounds stop when every LDA's interface "
            "schedules of TSO and DSO differ by at most this (primal residual) and the "
            "TSO's schedules moved by at most this since the last round (dual residual "
            "rho times that, $/MWh)."
        ),
    )
    max_rounds: int = Field(
        60,
        ge=1,
        le=1000,
        description=(
            "Most ADMM rounds per market interval; if the rounds have not converged by then "
            "the DSOs' last proposals are cleared as fixed interchanges (an "
            "'admm_not_converged' event)."
        ),
    )


class OutputConfig(_Strict):
    """What a run writes under its output folder."""

    dir: Path | None = Field(
        None, description="Output folder; default 'runs/<scenario name>'. --out overrides it."
    )
    bus_voltages: bool = Field(
        True, description="Store every feeder bus voltage of every interval (larger results)."
    )
    branch_loading: bool = Field(
        False,
        description=(
            "Store the loading (% of rating) and from-bus flow (MW, Mvar) of every feeder "
            "line and transformer of every interval, from the AC power flow (table "
            "branch_interval; larger results)."
        ),
    )
    device_dispatch: bool = Field(
        False,
        description=(
            "Store every DER device's final set-point, realised injection (MW), PV "
            "availability (MW) and stored energy (MWh) of every interval (table "
            "device_interval; larger results)."
        ),
    )
    flexibility_probe: bool = Field(
        False,
        description=(
            "Each DSO also measures every interval how much of its batteries' and flexible "
            "loads' offered range (MW) the feeder can deliver at the interface, with the other "
            "DER at their final set-points (two extra LPs per LDA and interval; used by "
            "'gridlayers loop' and 'validate-plan')."
        ),
    )
    checkpoint_intervals: int = Field(
        4,
        ge=1,
        description=(
            "Complete market intervals per commit to results.duckdb (-). Each commit writes "
            "the intervals' rows, the simulators' state after the last one (checkpoint) and "
            "the progress record in one transaction, so a killed run keeps every committed "
            "interval and 'gridlayers run --resume' continues after it. A commit costs about "
            "34 ms (one fsync), so the default 4 (an hour of quarter-hours) keeps it near "
            "2 % of a default interval; 1 loses nothing to a kill, larger values write less "
            "often. Results do not depend on it."
        ),
    )


class SimulatorsConfig(_Strict):
    """How each mosaik simulator is started."""

    feeder: Literal["python", "cmd"] = Field(
        "python",
        description=(
            "With lda 'python': 'python' in-process; 'cmd': one subprocess per LDA feeder."
        ),
    )
    market: Literal["python", "cmd"] = Field(
        "python", description="'python': in-process; 'cmd': TSO market in a subprocess."
    )
    lda: Literal["python", "cmd", "connect"] = Field(
        "python",
        description=(
            "Where each partition's LDA-level simulators (one aggregator, one DSO and one "
            "feeder simulator for its LDAs) run: 'python' in-process; 'cmd' in subprocesses "
            "started by mosaik; 'connect' in processes already serving at 'addresses' "
            "('gridlayers serve')."
        ),
    )
    partitions: int | None = Field(
        None,
        ge=1,
        description=(
            "Number of LDA partitions (LDA i goes to partition i mod N). Default: 1 with lda "
            "'python', the number of CPU cores with 'cmd', the number of addresses with "
            "'connect'. Results do not depend on it."
        ),
    )
    addresses: list[str] = Field(
        default_factory=list,
        description=(
            "With lda 'connect': one 'host:port' per partition, each served by "
            "'gridlayers serve --port PORT' (its aggregator, DSO and feeder simulators listen "
            "on PORT, PORT+1 and PORT+2)."
        ),
    )
    step_timeout_s: float | None = Field(
        None,
        gt=0.0,
        description=(
            "Wall-clock seconds any simulator (in-process or in another process) may take "
            "to answer one step or data request (s). One that takes longer, hangs or stops "
            "ends the run as failed with a message naming it (e.g. 'simulator Feeder-0 "
            "(partition 2: rural) did not answer step at interval 17 ... within 30 s'); "
            "the intervals stored before are kept. Default: no time-out."
        ),
    )

    @field_validator("addresses")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65534:
                msg = f"address {address!r} is not 'host:port' (port 1-65533)"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _addresses_match(self) -> SimulatorsConfig:
        if self.lda == "connect":
            if not self.addresses:
                raise ValueError("lda 'connect' needs 'addresses': one 'host:port' per partition")
            if self.partitions not in (None, len(self.addresses)):
                msg = (
                    f"partitions {self.partitions} but {len(self.addresses)} addresses; give "
                    "one address per partition (or leave partitions out)"
                )
                raise ValueError(msg)
        elif self.addresses:
            raise ValueError("'addresses' is only used with lda 'connect'; remove it")
        return self

    def partition_count(self, n_ldas: int) -> int:
        """Return the number of LDA partitions to use for ``n_ldas`` LDAs (at least 1)."""
        import os

        if self.lda == "connect":
            wanted = len(self.addresses)
        elif self.partitions is not None:
            wanted = self.partitions
        else:
            wanted = 1 if self.lda == "python" else (os.cpu_count() or 1)
        return max(1, min(wanted, n_ldas)) if self.lda != "connect" else wanted


class Scenario(_Strict):
    """A gridlayers scenario (one YAML file)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Scenario name (file-safe).")
    description: str = Field("", description="Free text.")
    seed: int = Field(0, ge=0, description="Random seed for forecast errors and DER placement.")
    transmission: TransmissionConfig
    ldas: list[LDAConfig] = Field(min_length=1, description="The LDAs below the transmission net.")
    horizon: HorizonConfig
    paradigms: list[Paradigm] = Field(
        default_factory=lambda: ["passive"],
        min_length=1,
        description=(
            "Operational paradigms to run: 'passive' (DER self-schedule; realised interface flows "
            "enter the TSO clearing as load), 'minimal_dso', 'total_dso', 'total_tso', "
            "'iterative' (TSO-DSO ADMM rounds per interval, see 'coordination')."
        ),
    )
    coordination: CoordinationConfig = Field(
        default_factory=CoordinationConfig,
        description="ADMM settings of the 'iterative' paradigm (see docs/paradigms.md).",
    )
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    settlement: SettlementConfig = Field(default_factory=SettlementConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    simulators: SimulatorsConfig = Field(default_factory=SimulatorsConfig)
    planner: PlannerConfig | None = Field(
        None, description="Capacity expansion planner settings (see docs/planner.md)."
    )
    loop: LoopConfig | None = Field(
        None,
        description=(
            "Operations-to-planning feedback loop and plan validation (see docs/loop.md); "
            "needs 'planner.lda'."
        ),
    )

    @field_validator("ldas")
    @classmethod
    def _unique_names(cls, ldas: list[LDAConfig]) -> list[LDAConfig]:
        check_unique_names([lda.name for lda in ldas])
        return ldas

    @model_validator(mode="after")
    def _subareas_fit(self) -> Scenario:
        found = _subarea_problem(self)
        if found is not None:
            _raise_at(*found)
        return self

    @model_validator(mode="after")
    def _iterative_needs_optimal_dsos(self) -> Scenario:
        if "iterative" not in self.paradigms:
            return self
        for i, lda in enumerate(self.ldas):
            if lda.dso_strategy != "optimal":
                problem = (
                    "the iterative paradigm's ADMM rounds solve the 'optimal' DSO's own "
                    f"feeder problem, not {lda.dso_strategy!r}; use dso_strategy: optimal "
                    "or drop 'iterative' from 'paradigms'"
                )
                _raise_at(("ldas", i, "dso_strategy"), problem, lda.dso_strategy)
        return self

    @model_validator(mode="after")
    def _loop_needs_planner_ldas(self) -> Scenario:
        if self.loop is None:
            return self
        if self.planner is None or self.planner.lda is None:
            msg = "loop needs a 'planner:' section with 'lda: {ldas: [...]}'"
            raise ValueError(msg)
        planned = [a.name for a in self.planner.lda.ldas]
        missing = sorted(set(planned) - {lda.name for lda in self.ldas})
        if missing:
            msg = (
                f"planner LDAs {missing} have no co-simulation LDA of the same name in 'ldas'; "
                "the loop represents each planner LDA by that LDA's feeder"
            )
            raise ValueError(msg)
        days = self.planner.days
        unknown = sorted(set(self.loop.days) - set(days)) if days is not None else []
        if unknown:
            msg = f"loop.days {unknown} are not among planner.days {days}"
            raise ValueError(msg)
        if days is not None and set(days) - set(self.loop.days):
            msg = f"loop.days must give a date for every planner day {sorted(days)}"
            raise ValueError(msg)
        return self


class PlanScenario(BaseModel):
    """A scenario read by ``gridlayers plan``: only ``name``, ``description``, ``planner``.

    Other sections (a full co-simulation scenario with a planner section) are ignored here.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Scenario name (file-safe).")
    description: str = Field("", description="Free text.")
    planner: PlannerConfig
