"""Recursive layers: edge cases of sub-area scenarios (docs/layers.md).

Each test names the defect it guards against and the mutation that breaks it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from conftest import query_frame, write_scenario
from gridlayers.areas.operator import SubAreaOperator
from gridlayers.dso.offer_blocks import InfeasibleDSOError
from gridlayers.runner import run_scenario
from gridlayers.scenarios import ScenarioError, load_scenario
from gridlayers.scenarios.resolve import resolve_scenario
from test_nested import AC_TOL_MW, MG_BUS, _ac_exchange, _nested, _system

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

NESTED = Path(__file__).resolve().parents[1] / "scenarios" / "nested.yaml"


@functools.cache
def _shared_system() -> dict:
    """The rural test system with a quarter of the synthetic DER (read-only here)."""
    return _system(0.25)


def _tables(run: Path, sql: str):  # noqa: ANN202
    return query_frame(run, sql)


# ------------------------------------------------------- H1, H3 in the co-simulation
@pytest.fixture(scope="module")
def firm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nested.yaml for 1 interval without DER, the building allowed no export.

    The building's feeder PV alone exports 0.147 MW at 11:00, so its PCC limit
    (``max_export_mw: 0``) cannot be kept by any dispatch.
    """
    folder = tmp_path_factory.mktemp("firm")
    data = yaml.safe_load(NESTED.read_text())
    data["horizon"]["intervals"] = 1
    del data["ldas"][0]["der"]
    data["ldas"][0]["subareas"][0]["subareas"][0]["max_export_mw"] = 0.0
    assert run_scenario(load_scenario(write_scenario(folder, data)), folder / "run").ok
    return folder / "run"


def test_cosim_subareas_without_der_offer_their_load(firm_run: Path) -> None:
    """H1: an LDA with sub-areas and no DER runs; each operator offers its firm injections.

    Mutation: Area entities created only for LDAs with aggregators (the DSO then waits
    for ``area_offer`` messages nobody sends: ``KeyError: no offer from its sub-area``).
    """
    rows = _tables(firm_run, "SELECT * FROM area_interface ORDER BY area")
    assert list(rows.area) == ["bldg", "mg"]
    # no devices: a firm resource (one point), cleared at it
    assert (abs(rows.p_max_mw - rows.p_min_mw) < 1e-9).all()
    assert (abs(rows.cleared_mw - rows.p_min_mw) < 1e-6).all()
    assert rows.fallback[rows.area == "mg"].isna().all()


def test_cosim_infeasible_pcc_limit_is_soft_and_recorded(firm_run: Path) -> None:
    """H3: a PCC limit no dispatch can keep is penalised slack, reported, an event.

    Mutation: ``PccLimit`` hard in the soft-limit model too (the soft model then fails
    as well and the building goes network-blind, ignoring its limit).
    """
    row = _tables(firm_run, "SELECT * FROM area_interface WHERE area = 'bldg'").iloc[0]
    assert bool(row.slack)
    assert "conflicting constraints: PccLimit" in row.fallback
    assert "soft-limit fallback used (PCC limit exceeded by 0.14" in row.fallback
    assert "network-blind" not in row.fallback
    assert 0.14 < row.p_min_mw == pytest.approx(row.p_max_mw, abs=1e-9)  # the least violation
    events = _tables(firm_run, "SELECT source, message FROM event WHERE kind = 'area_fallback'")
    assert list(events.source) == ["rural.bldg"]
    assert list(events.message) == [row.fallback]
    assert row.realised_mw is not None  # stored, not NULL: the power flow converged


# ------------------------------------------------------------- H3 at domain level
def test_infeasible_pcc_limit_gives_the_least_violation() -> None:
    """H3: the building may import nothing but its DER cannot cover its load.

    Its resource is the least-violation point with the PCC slack reported; the
    microgrid above carries on. Mutation: ``PccLimit`` hard in the soft model
    (``DSOFaultError`` out of :meth:`NestedArea.virtual_resource`).
    """
    s = _system(0.01)  # almost no DER: the building's load is firm
    nested = _nested(s, bldg={"max_import_mw": 0.0})
    vr = nested.virtual_resource(s["p"], s["q"], s["offers"])
    mg, bldg = nested.children[0], nested.children[0].children[0]
    child = mg._child_vr["bldg"]
    assert child.slack is not None
    assert child.slack["pcc_mw"] == pytest.approx(-child.p_min_mw, abs=1e-6)
    assert child.p_max_mw - child.p_min_mw < 1e-6  # one point: the least import
    assert 0.15 < -child.p_min_mw < 0.3  # the building's net load (MW)
    assert "PCC limit exceeded by 0.2" in bldg.fallback[0]
    assert mg.fallback == []  # the limit is the building's only
    result = nested.disaggregate(vr.p_min_mw, 25.0)
    row = next(r for r in nested.interfaces if r["area"] == "bldg")
    assert row["cleared_mw"] == pytest.approx(child.p_min_mw, abs=1e-6)
    assert result.slack is not None
    assert result.slack["pcc_mw"] > 0.15


def test_blind_fallback_keeps_the_pcc_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """H3: sub-area problems fail outright: NestedArea goes network-blind within the limit.

    Mutations: no fallback in :class:`NestedArea` (the error propagates); the blind
    resource not clipped to the PCC limit (``mg`` offers and is awarded ~1.3 MW).
    """

    def fail(*args: object, **kwargs: object) -> None:
        raise InfeasibleDSOError("injected")

    s = _system(0.5)
    nested = _nested(s, mg={"max_export_mw": 0.3})
    monkeypatch.setattr(SubAreaOperator, "virtual_resource", fail)
    monkeypatch.setattr(SubAreaOperator, "disaggregate", fail)
    vr = nested.virtual_resource(s["p"], s["q"], s["offers"])
    result = nested.disaggregate(vr.p_max_mw, 60.0)  # the TSO takes all it can
    rows = {r["area"]: r for r in nested.interfaces}
    for name in ("mg", "bldg"):
        assert rows[name]["fallback"] == (
            "offer: injected; network-blind fallback used; "
            "settle: injected; network-blind fallback used"
        )
    assert rows["mg"]["p_max_mw"] == pytest.approx(0.3)
    assert rows["mg"]["cleared_mw"] == pytest.approx(0.3)
    assert set(result.setpoints_mw) == set(s["devices"])
    assert _ac_exchange(s, result.setpoints_mw, MG_BUS) <= 0.3 + AC_TOL_MW


# ----------------------------------------------------------------- H2, H4: validation
def _bldg(**fields: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data["ldas"][0]["subareas"][0]["subareas"][0].update(fields)

    return edit


def _mg(**fields: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data["ldas"][0]["subareas"][0].update(fields)

    return edit


def _lda(**fields: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data["ldas"][0].update(fields)

    return edit


def _simulators(**fields: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data["simulators"].update(fields)

    return edit


BLDG = "ldas[0].subareas[0].subareas[0]"


@pytest.mark.parametrize(
    ("edit", "field", "words", "fix"),
    [  # H2 (a): the building at its microgrid's own PCC
        (_bldg(pcc_bus=80), f"{BLDG}.pcc_bus", "PCC of its parent 'mg'", "strictly below bus 80"),
        # H2 (b): named like the LDA, like another sub-area
        (_bldg(name="rural"), f"{BLDG}.name", "name of an LDA", "rename the sub-area"),
        (_bldg(name="mg"), f"{BLDG}.name", "already used by ldas[0].subareas[0]", "rename one"),
        # H2 (c): bus 2 is fed by the two parallel HV/MV transformers
        (
            _mg(pcc_bus=2, subareas=[]),
            "ldas[0].subareas[0].pcc_bus",
            "found 2 (trafo 0, trafo 1)",
            "exactly one in-service line or transformer",
        ),
        # H2: the schema's error names the field it is about
        (_simulators(lda="cmd"), "simulators.lda", "need in-process LDAs", "lda: python"),
        # H4: the external strategy has no dispatch to send the sub-areas' voltages from
        (_lda(dso_strategy="external"), "ldas[0].dso_strategy", "'external'", "'optimal'"),
    ],
)
def test_validation_names_field_and_fix(
    tmp_path: Path, edit: Callable[[dict], None], field: str, words: str, fix: str
) -> None:
    """H2, H4: each used to validate and then fail the run (or named no field).

    Mutations: no same-PCC check; no LDA-name or per-field duplicate check; resolve not
    calling the PCC-branch finder; the in-process check raised as a bare ValueError
    (empty field); no external-strategy check.
    """
    data = yaml.safe_load(NESTED.read_text())
    edit(data)
    path = write_scenario(tmp_path, data)
    with pytest.raises(ScenarioError) as info:
        resolve_scenario(load_scenario(path), path)
    assert info.value.field == field
    assert words in info.value.problem
    text = str(info.value)
    assert text.startswith(f"{path}: {field}: ")
    assert fix in text


def test_external_strategy_without_total_dso_is_fine(tmp_path: Path) -> None:
    """H4: the refusal applies only where the sub-areas run (``total_dso``)."""
    data = yaml.safe_load(NESTED.read_text())
    data["ldas"][0]["dso_strategy"] = "external"
    data["paradigms"] = ["minimal_dso"]
    path = write_scenario(tmp_path, data)
    assert load_scenario(path).ldas[0].dso_strategy == "external"


# ------------------------------------------------------------------ M1: Q at the PCC
def test_parent_models_the_reactive_power_crossing_the_pcc() -> None:
    """M1: the DSO's model carries the microgrid's reactive export across the PCC.

    Firm injections only, one level: the DSO's view (the microgrid's P as its firm
    export at the PCC, its Q as it reports it) gives the flat model's PCC-branch flows
    and feeder export. Measured 3e-8 Mvar; the sum of the microgrid's reactive
    injections (mutation: ``q_pcc_mvar`` ignored) is 1.1e-3 Mvar off.
    """
    from gridlayers.areas.nested import AreaSpec, build_nested
    from gridlayers.dso import DSOOperator

    s = _shared_system()
    nested = build_nested(
        s["net"], s["feeder"], s["devices"], (AreaSpec("mg", MG_BUS),), DSOOperator, name="rural"
    )
    nested.virtual_resource(s["p"], s["q"], s["offers"])
    mg = nested.children[0]
    p, q, _ = nested._inputs
    p.loc[MG_BUS] += mg.feeder.solve_power_flow(*mg._inputs[:2]).interface_p_mw
    parent = s["feeder"].solve_power_flow(p, q)
    flat = s["feeder"].solve_power_flow(s["p"], s["q"])
    node = s["feeder"].bus_node_bus[MG_BUS]
    assert parent.q_branch_mvar[node] == pytest.approx(flat.q_branch_mvar[node], abs=1e-5)
    assert parent.interface_q_mvar == pytest.approx(flat.interface_q_mvar, abs=1e-5)
    assert parent.p_branch_mw[node] == pytest.approx(flat.p_branch_mw[node], abs=1e-3)


# ------------------------------------------------------------- M4: NULL, not NaN
def test_realised_export_of_a_failed_power_flow_is_none() -> None:
    """M4: a power flow that did not converge gives ``None`` (stored NULL), not NaN.

    Mutation: the finiteness check removed (NaN stored, which SQL aggregates propagate).
    """
    import numpy as np

    from gridlayers.areas.topology import pcc_branch, realised_exchange_mw, subtree_buses

    s = _shared_system()
    branch = pcc_branch(s["net"], subtree_buses(s["feeder"], MG_BUS))
    lines, trafos = len(s["net"].line), len(s["net"].trafo)
    flows = np.arange(lines, dtype=float)
    position = s["net"].line.index.get_loc(branch[1])
    assert branch[0] == "line"
    assert branch[2] == "to"  # the microgrid hangs below its PCC line: export = -p_from
    assert realised_exchange_mw(s["net"], branch, flows, np.zeros(trafos)) == -position
    failed = np.full(lines, np.nan)
    assert realised_exchange_mw(s["net"], branch, failed, np.zeros(trafos)) is None
