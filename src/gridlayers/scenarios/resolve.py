"""Resolve every reference in a scenario without running anything.

Checks that need data: the transmission case or JSON file loads, each SimBench
code exists, each feeder has exactly one interface (ext_grid), each interface bus
exists in the transmission net, and standard profile names exist.
"""

from __future__ import annotations

from pathlib import Path

from gridlayers.scenarios.load import ScenarioError
from gridlayers.scenarios.schema import PlanScenario, Scenario


def _net_or_error(source: object, file: Path, field: str, kind: str) -> object:
    from gridlayers.grid.networks import network_from_source

    try:
        return network_from_source(source)
    except FileNotFoundError as exc:
        raise ScenarioError(file, field, f"{kind} file not found: {exc.filename}") from None
    except ValueError as exc:
        raise ScenarioError(file, field, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any loader failure is a scenario problem
        problem = f"cannot load {kind}: {type(exc).__name__}: {exc}"
        raise ScenarioError(file, field, problem) from None


def resolve_scenario(scenario: Scenario, file: Path) -> None:
    """Raise :class:`ScenarioError` for the first reference that does not resolve.

    Parameters
    ----------
    scenario : Scenario
        A structurally valid scenario.
    file : Path
        The scenario file (named in error messages).

    """
    from gridlayers.grid.networks import simbench_codes

    tr = scenario.transmission
    tr_field = "transmission.case" if tr.case else "transmission.json"
    net = _net_or_error(tr, file, tr_field, "transmission network")
    _check_calibration(tr, file)
    if (
        tr.load_profile != "flat"
        and not tr.load_profile.startswith("isone8_day")  # checked by the schema
        and not _has_standard_profile(f"{tr.load_profile}_pload")
    ):
        raise ScenarioError(
            file,
            "transmission.load_profile",
            f"unknown SimBench standard load profile {tr.load_profile!r}",
            "use e.g. 'mv_urban', 'mv_rural' or 'flat'.",
        )
    for i, lda in enumerate(scenario.ldas):
        base = f"ldas[{i}]"
        if lda.interface_bus not in net.bus.index:
            raise ScenarioError(
                file,
                f"{base}.interface_bus",
                f"bus {lda.interface_bus} is not in the transmission net "
                f"(valid: {net.bus.index.min()}..{net.bus.index.max()})",
            )
        feeder = lda.feeder
        if feeder.simbench and feeder.simbench not in simbench_codes():
            raise ScenarioError(
                file,
                f"{base}.feeder.simbench",
                f"unknown SimBench code {feeder.simbench!r}",
                "use a code such as '1-MV-rural--0-sw' (simbench.collect_all_simbench_codes()).",
            )
        feeder_net = _check_feeder(feeder, file, base)
        if lda.subareas:
            _check_subareas(feeder_net, lda.subareas, file, base)
        _check_der_profiles(lda.der, file, f"{base}.der")
        _check_dso_strategy(lda.dso_strategy, file, f"{base}.dso_strategy")
    if scenario.planner is not None:
        resolve_plan_scenario(scenario, file)
    _check_loop_zones(scenario, net, file)


def resolve_plan_scenario(scenario: PlanScenario | Scenario, file: Path) -> None:
    """Raise :class:`ScenarioError` if the ``planner`` section does not fit its data.

    Reads the planner inputs once (about a second for the bundled ISO-NE data): the data
    folder and its files, ``zones``, ``days`` and every planner LDA's ``zone``.
    """
    from gridlayers.planner import InputDataError, read_inputs

    config = scenario.planner
    if config.data_dir is not None and not Path(config.data_dir).is_dir():
        found = "a file" if Path(config.data_dir).exists() else "nothing"
        problem = f"expected a folder of planner data, found {found} at {config.data_dir}"
        raise ScenarioError(file, "planner.data_dir", problem)
    try:
        inputs = read_inputs(config)
    except InputDataError as exc:
        raise ScenarioError(file, "planner.data_dir", str(exc)) from None
    except ValueError as exc:
        text = str(exc)
        field = next((f for f in ("planner.zones", "planner.days") if f in text), "planner")
        raise ScenarioError(file, field, text.removeprefix(field + " ")) from None
    if config.lda is None:
        return
    zones = inputs.onshore_zones
    for i, lda in enumerate(config.lda.ldas):
        if lda.zone not in zones:
            raise ScenarioError(
                file,
                f"planner.lda.ldas[{i}].zone",
                f"expected an onshore zone of the model {list(zones)}, found {lda.zone!r}",
            )


def _check_der_profiles(der: object, file: Path, base: str) -> None:
    """PV profiles must be SimBench standard profiles; flexible loads follow their bus."""
    from gridlayers.der.builder import BUS_PROFILE

    for kind in ("devices", "penetration"):
        for i, item in enumerate(getattr(der, kind)):
            name = getattr(item, "profile", None)
            field = f"{base}.{kind}[{i}].profile"
            if name is None:
                continue
            if item.type == "pv" and not _has_standard_profile(name):
                problem = f"unknown SimBench standard generation profile {name!r}"
                raise ScenarioError(file, field, problem, "use e.g. 'PV3'.")
            if item.type == "flexible_load" and name != BUS_PROFILE:
                problem = f"expected {BUS_PROFILE!r} (the bus's own load), found {name!r}"
                raise ScenarioError(file, field, problem)


def _check_loop_zones(scenario: Scenario, net: object, file: Path) -> None:
    """Price feedback and planned transmission need the planner's zones as the net's buses."""
    loop = scenario.loop
    if loop is None or not (loop.price_feedback or loop.planned_transmission):
        return
    if loop.planned_transmission:
        from gridlayers.grid.isone_net import read_planner_data

        zones = list(read_planner_data(scenario.planner.data_dir).onshore_zones)
        names = [str(n) for n in net.bus.name]
        if names != zones:
            raise ScenarioError(
                file,
                "loop.planned_transmission",
                f"needs the ISO-NE net (buses {zones}) as transmission, found buses {names[:8]}",
                "use the net of python -m gridlayers.grid.isone_net (networks/isone8.json).",
            )
    zone_of = {a.name: a.zone for a in scenario.planner.lda.ldas}
    for i, lda in enumerate(scenario.ldas):
        if lda.name not in zone_of:
            continue
        name = str(net.bus.name.at[lda.interface_bus])
        if name != zone_of[lda.name]:
            raise ScenarioError(
                file,
                f"ldas[{i}].interface_bus",
                f"loop.price_feedback needs the bus of planner zone {zone_of[lda.name]!r}, "
                f"found bus {lda.interface_bus} named {name!r}",
            )


def _check_calibration(transmission: object, file: Path) -> None:
    """Apply the transmission calibration once (a misfit table is a scenario error).

    Otherwise a technology table that does not fit the net would only fail when the run
    builds its market, instead of exiting 2 with a one-line message.
    """
    from gridlayers.grid.networks import transmission_network

    fields = ("generator_technologies", "marginal_cost_usd_per_mwh", "availability")
    given = [f for f in fields if getattr(transmission, f, None)]
    if not given:
        return
    try:
        transmission_network(transmission)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        problem = str(exc.args[0]) if exc.args else str(exc)
        raise ScenarioError(file, f"transmission.{given[0]}", problem) from None


def _has_standard_profile(*columns: str) -> bool:
    """Return whether every SimBench standard profile column exists.

    Reads the columns a run reads (from the on-disk cache once extracted), instead of
    listing every standard profile, which parses all of SimBench's profile tables.
    """
    from gridlayers.grid.profiles import standard_profile

    try:
        for column in columns:
            standard_profile(column)
    except KeyError:
        return False
    return True


def _check_feeder(feeder: object, file: Path, base: str) -> object:
    if not feeder.simbench:
        for attr in ("load_profile", "sgen_profile"):
            name = getattr(feeder, attr)
            columns = (f"{name}_pload", f"{name}_qload") if attr == "load_profile" else (name,)
            if not _has_standard_profile(*columns):
                raise ScenarioError(
                    file, f"{base}.feeder.{attr}", f"unknown SimBench standard profile {name!r}"
                )
    field = f"{base}.feeder." + ("json" if feeder.json_path is not None else "pandapower")
    if feeder.simbench:
        field = f"{base}.feeder.simbench"
    net = _net_or_error(feeder, file, field, "feeder network")
    n_ext = int(net.ext_grid.in_service.sum())
    if n_ext != 1:
        raise ScenarioError(
            file,
            field,
            f"a feeder needs exactly one in-service ext_grid (its T–D interface), found {n_ext}",
        )
    return net


def _check_subareas(net: object, areas: list, file: Path, base: str) -> None:
    """Check that every sub-area fits the feeder (``subarea_problem`` in areas.topology).

    Its PCC bus is in the feeder, strictly inside its parent, apart from its siblings and
    fed by exactly one branch.
    """
    import warnings

    from gridlayers.areas.topology import subarea_problem
    from gridlayers.dso.lindistflow import LinDistFlowFeeder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feeder = LinDistFlowFeeder(net)
    found = subarea_problem(feeder, areas, f"{base}.subareas", net)
    if found is not None:
        raise ScenarioError(file, *found)


def _check_dso_strategy(name: str, file: Path, field: str) -> None:
    from gridlayers.dso.strategies import resolve_dso_strategy

    try:
        resolve_dso_strategy(name)
    except ValueError as exc:
        raise ScenarioError(file, field, str(exc)) from None
