"""External DSO agents over ZeroMQ (gridlayers.gateway): decisions, time-outs, bad replies.

The agent always runs in a separate process (a small script around
``gridlayers.gateway.client.serve``) that follows a *plan*: one behaviour per request, in
order, then ``merit`` (the example agent) for every further request. Most checks call the
``external`` strategy directly on the rural SimBench feeder with three devices (fast); one
runs the bundled default scenario through mosaik.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from conftest import rural_linear_feeder
from gridlayers.domain import BidBlock, BidCurve
from gridlayers.dso import DSOOperator
from gridlayers.dso.strategies import DSO_STRATEGIES, DSOStrategy, make_dso
from gridlayers.gateway import protocol
from gridlayers.gateway.client import MeritOrderAgent
from gridlayers.gateway.dso import ExternalDSO
from gridlayers.gateway.transport import check_endpoint

REPO = Path(__file__).resolve().parents[1]
LMP = 30.0

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: The agent process: ``python agent.py PLAN_JSON LOG_JSONL``. Behaviours per request:
#: ``merit`` (MeritOrderAgent), ``distinct`` (award, redispatch: every device at its minimum),
#: ``hang`` (sleep ``seconds``, then answer as ``merit``: a late reply), ``raw`` (send
#: ``text`` with ``{SEQ}`` replaced by the request's sequence number).
AGENT = """
import json, sys, time
import zmq
from gridlayers.gateway.client import MeritOrderAgent, reply_to

plan, log = json.loads(sys.argv[1]), open(sys.argv[2], "a")
agent = MeritOrderAgent()

def distinct(request):
    if request["type"] in ("award", "redispatch"):
        return {"setpoints_mw": {d: v["offer"]["p_min_mw"] for d, v in request["devices"].items()}}
    return agent(request)

socket = zmq.Context.instance().socket(zmq.REP)
socket.setsockopt(zmq.LINGER, 0)
socket.bind("tcp://127.0.0.1:*")
print("ready", socket.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
n = 0
while True:
    request = json.loads(socket.recv())
    step = plan[n] if n < len(plan) else {"mode": "merit"}
    n += 1
    if step["mode"] == "raw":
        socket.send(step["text"].replace("{SEQ}", str(request["sequence"])).encode())
        continue
    if step["mode"] == "hang":
        time.sleep(step["seconds"])
    reply = reply_to(request, distinct if step["mode"] == "distinct" else agent)
    entry = {"request": request["type"], "lda": request["lda"], "reply": reply}
    log.write(json.dumps(entry) + "\\n")
    log.flush()
    socket.send(json.dumps(reply).encode())
"""


@pytest.fixture
def agent(tmp_path: Path) -> Iterator:
    """Start agent processes: ``agent(plan) -> (endpoint, log path)``; stopped afterwards."""
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    started: list[subprocess.Popen] = []

    def start(plan: list[dict]) -> tuple[str, Path]:
        log = tmp_path / f"agent{len(started)}.jsonl"
        proc = subprocess.Popen(
            [sys.executable, str(script), json.dumps(plan), str(log)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(proc)
        line = proc.stdout.readline().split()
        assert line[0] == "ready", line
        return line[1], log

    yield start
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def case() -> dict:
    """Rural feeder, one PV and two batteries, uncongested forecast injections."""
    net, feeder, p, q = rural_linear_feeder()
    buses = [int(b) for b in feeder.buses[1:4]]
    battery = BidCurve(-0.5, (BidBlock(0.5, 20.0), BidBlock(0.5, 60.0)))
    offers = {"pv": BidCurve(0.0, (BidBlock(1.0, 1.0),)), "bat1": battery, "bat2": battery}
    return {
        "feeder": feeder,
        "devices": dict(zip(offers, buses, strict=True)),
        "p": p,
        "q": q,
        "offers": offers,
    }


def _external(case: dict, endpoint: str, **params: object) -> ExternalDSO:
    dso = make_dso("external", case["feeder"], case["devices"], endpoint=endpoint,
                   lda_name="rural", **params)  # fmt: skip
    assert isinstance(dso, ExternalDSO)
    assert isinstance(dso, DSOStrategy)  # the protocol's two methods
    return dso


def _reference(case: dict, award: float | None):  # noqa: ANN202
    """What the fallback ("optimal") decides on the same inputs (``award`` in MW)."""
    ref = DSOOperator(case["feeder"], case["devices"], blocks_per_device=6, max_blocks=10)
    vr = ref.virtual_resource(case["p"], case["q"], case["offers"])
    return vr, None if award is None else ref.disaggregate(award, LMP)


def _kinds(dso: ExternalDSO) -> list[str]:
    return [e["kind"] for e in dso.drain_events()]


# --------------------------------------------------------------------------- decisions
def test_external_is_registered() -> None:
    assert "external" in DSO_STRATEGIES


def test_the_agents_decisions_are_used(case: dict, agent) -> None:  # noqa: ANN001
    endpoint, log = agent([{"mode": "merit"}, {"mode": "distinct"}])
    dso = _external(case, endpoint)
    vr = dso.virtual_resource(case["p"], case["q"], case["offers"])
    request = protocol.request("offer", 1, "rural", max_blocks=10, **protocol.interval_inputs(
        case["p"], case["q"], case["offers"], case["devices"]))  # fmt: skip
    expected = MeritOrderAgent.offer(json.loads(protocol.dumps(request)))
    assert vr.curve == protocol.parse_curve(expected, 10)
    assert vr.method == "external"
    award = vr.p_min_mw + 0.5 * (vr.p_max_mw - vr.p_min_mw)
    dis = dso.disaggregate(award, LMP)
    # distinctive: every device at its minimum, whatever the award
    assert dis.setpoints_mw == {d: c.p_min_mw for d, c in case["offers"].items()}
    assert (dis.dlmp_usd_per_mwh == LMP).all()
    assert set(dis.dlmp_usd_per_mwh.index) == set(case["feeder"].bus_node_bus)
    _, ref = _reference(case, award)
    assert ref.setpoints_mw != pytest.approx(dis.setpoints_mw)
    assert _kinds(dso) == []
    assert dso.stats["accepted"] == 2
    assert dso.stats["fallbacks"] == 0
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["request"] for e in logged] == ["offer", "award"]
    assert {e["lda"] for e in logged} == {"rural"}


def test_minimal_dso_redispatch_is_the_agents(case: dict, agent) -> None:  # noqa: ANN001
    endpoint, _ = agent([{"mode": "merit"}, {"mode": "distinct"}, {"mode": "hang", "seconds": 30}])
    dso = _external(case, endpoint, timeout_ms=2000)  # replies may be slow on a loaded machine
    proposed = {"pv": 1.0, "bat1": 0.0, "bat2": 0.0}
    args = (case["p"], case["q"], case["offers"], LMP)
    same = dso.redispatch(proposed, *args)  # the example agent accepts the proposal
    assert same.setpoints_mw == proposed
    assert same.redispatch_cost_usd_per_h == 0.0
    assert same.changed_mw == 0.0
    assert same.violations_predicted == same.violations_after == 0
    moved = dso.redispatch(proposed, *args)  # every device to its minimum
    assert moved.setpoints_mw == {"pv": 0.0, "bat1": -0.5, "bat2": -0.5}
    # |30 - 1| * 1 MW (PV block) + 2 * |30 - 20| * 0.5 MW (first battery blocks emptied)
    assert moved.redispatch_cost_usd_per_h == pytest.approx(39.0, abs=1e-12)
    assert moved.changed_mw == pytest.approx(2.0)
    assert moved.interface_p_mw < same.interface_p_mw - 1.9
    assert _kinds(dso) == []
    fallback = dso.redispatch(proposed, *args)  # times out: the optimal DSO's redispatch
    ref = DSOOperator(case["feeder"], case["devices"], blocks_per_device=6, max_blocks=10)
    assert fallback.setpoints_mw == pytest.approx(ref.redispatch(proposed, *args).setpoints_mw)
    assert _kinds(dso) == ["gateway_timeout", "gateway_fallback"]


# --------------------------------------------------------------------------- time-outs
def test_a_hanging_agent_times_out_and_the_fallback_decides(case: dict, agent) -> None:  # noqa: ANN001
    endpoint, _ = agent([{"mode": "hang", "seconds": 30}])
    dso = _external(case, endpoint, timeout_ms=200)
    start = time.perf_counter()
    vr = dso.virtual_resource(case["p"], case["q"], case["offers"])
    award = vr.p_min_mw + 0.3 * (vr.p_max_mw - vr.p_min_mw)
    dis = dso.disaggregate(award, LMP)
    elapsed = time.perf_counter() - start
    ref_vr, ref_dis = _reference(case, award)
    assert vr.curve == ref_vr.curve  # the fallback's decisions, exactly
    assert dis.setpoints_mw == pytest.approx(ref_dis.setpoints_mw, abs=1e-9)
    assert 0.4 <= elapsed < 10.0  # two time-outs of 0.2 s, the fallback's solves; not 30 s
    events = dso.drain_events()
    assert [e["kind"] for e in events] == ["gateway_timeout", "gateway_fallback"] * 2
    assert events[0]["message"] == f"offer: no reply from {endpoint} within 200 ms"
    assert events[1]["message"] == "offer: 'optimal' used"
    assert events[2]["message"].startswith("award: no reply")
    assert dso.stats["timeouts"] == 2
    assert dso.stats["fallbacks"] == 2
    assert dso.client.resets == 2


def test_the_socket_is_reset_after_a_time_out(case: dict, agent) -> None:  # noqa: ANN001
    """Lazy pirate: a late reply is dropped and the next request gets its own answer."""
    # the offer's reply comes 1.5 s late: after its 1 s time-out, and before the award
    # request (sent after that time-out) has waited 1 s
    endpoint, log = agent([{"mode": "hang", "seconds": 1.5}, {"mode": "distinct"}])
    dso = _external(case, endpoint, timeout_ms=1000)
    vr = dso.virtual_resource(case["p"], case["q"], case["offers"])  # times out
    assert _kinds(dso) == ["gateway_timeout", "gateway_fallback"]
    award = vr.p_min_mw + 0.5 * (vr.p_max_mw - vr.p_min_mw)
    dis = dso.disaggregate(award, LMP)  # the agent answers this one (after its late reply)
    assert _kinds(dso) == []
    assert dis.setpoints_mw == {d: c.p_min_mw for d, c in case["offers"].items()}
    assert dso.stats["accepted"] == 1
    # the next interval works as normal; the agent-made offer primes the fallback lazily
    vr2 = dso.virtual_resource(case["p"], case["q"], case["offers"])
    assert vr2.method == "external"
    assert [json.loads(line)["request"] for line in log.read_text().splitlines()] == [
        "offer", "award", "offer"]  # fmt: skip


# ------------------------------------------------------------------------ bad replies
AWARD_GARBAGE = {
    "not JSON": ("this is not json", "reply is not JSON"),
    "wrong version": ('{"version": 2, "type": "award", "sequence": {SEQ}, "setpoints_mw": {}}',
                      "unsupported version 2"),
    "NaN": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
            '"setpoints_mw": {"pv": NaN, "bat1": 0, "bat2": 0}}', "non-finite number NaN"),
    "unknown device": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                       '"setpoints_mw": {"pv": 0, "bat1": 0, "bat2": 0, "ghost": 1}}',
                       "unknown device(s) ['ghost']"),
    "missing device": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                       '"setpoints_mw": {"pv": 0, "bat1": 0}}', "misses device(s) ['bat2']"),
    "out of range": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                     '"setpoints_mw": {"pv": 5, "bat1": 0, "bat2": 0}}',
                     "setpoints_mw['pv'] = 5.0 MW is outside the offered range [0.0, 1.0] MW"),
    "overflow": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                 '"setpoints_mw": {"pv": 1e999, "bat1": 0, "bat2": 0}}',
                 "setpoints_mw['pv'] must be finite, got inf"),
    "huge integer": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                     '"setpoints_mw": {"pv": 1' + "0" * 400 + ', "bat1": 0, "bat2": 0}}',
                     "setpoints_mw['pv'] must be finite"),
    "integer past the digit limit": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                                     '"setpoints_mw": {"pv": 1' + "0" * 5000 + '}}',
                                     "reply is not usable JSON (ValueError"),
    "string number": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                      '"setpoints_mw": {"pv": "0.5", "bat1": 0, "bat2": 0}}',
                      "setpoints_mw['pv'] must be a number, got str"),
    "wrong unit": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                   '"setpoints_kw": {"pv": 500, "bat1": 0, "bat2": 0}}',
                   "missing field(s) ['setpoints_mw']"),
    "extra field": ('{"version": 1, "type": "award", "sequence": {SEQ}, "p_kw": 1, '
                    '"setpoints_mw": {"pv": 0, "bat1": 0, "bat2": 0}}',
                    "unknown field(s) ['p_kw']"),
    "stale sequence": ('{"version": 1, "type": "award", "sequence": 0, '
                       '"setpoints_mw": {"pv": 0, "bat1": 0, "bat2": 0}}',
                       "sequence 0 does not match"),
    "bad DLMP bus": ('{"version": 1, "type": "award", "sequence": {SEQ}, '
                     '"setpoints_mw": {"pv": 0, "bat1": 0, "bat2": 0}, '
                     '"dlmp_usd_per_mwh": {"999999": 1.0}}', "'999999', not an energised bus"),
    "agent error": ('{"version": 1, "type": "error", "sequence": {SEQ}, "message": "no idea"}',
                    "agent reported an error: no idea"),
    "JSON array": ("[1, 2]", "reply must be a JSON object, got list"),
}  # fmt: skip

OFFER_GARBAGE = {
    "decreasing prices": ('{"version": 1, "type": "offer", "sequence": {SEQ}, "curve": '
                          '{"p_min_mw": -1, "blocks": [{"quantity_mw": 1, "price_usd_per_mwh": 9},'
                          ' {"quantity_mw": 1, "price_usd_per_mwh": 3}]}}', "non-decreasing"),
    "too many blocks": ('{"version": 1, "type": "offer", "sequence": {SEQ}, "curve": '
                        '{"p_min_mw": 0, "blocks": ['
                        + ", ".join(['{"quantity_mw": 0.01, "price_usd_per_mwh": 1}'] * 11)
                        + "]}}", "at most 10 blocks"),
    "negative quantity": ('{"version": 1, "type": "offer", "sequence": {SEQ}, "curve": '
                          '{"p_min_mw": 0, "blocks": [{"quantity_mw": -1, '
                          '"price_usd_per_mwh": 1}]}}', "quantity_mw must be >= 0"),
    "range beyond the devices": ('{"version": 1, "type": "offer", "sequence": {SEQ}, "curve": '
                                 '{"p_min_mw": 0, "blocks": [{"quantity_mw": 500, '
                                 '"price_usd_per_mwh": 1}]}}', "is outside ["),
    "infinity": ('{"version": 1, "type": "offer", "sequence": {SEQ}, "curve": '
                 '{"p_min_mw": -Infinity, "blocks": []}}', "non-finite number -Infinity"),
}  # fmt: skip


def test_invalid_replies_are_rejected_by_name_and_the_fallback_decides(
    case: dict,
    agent,  # noqa: ANN001
) -> None:
    plan = []
    for offer_text, _ in OFFER_GARBAGE.values():
        plan.append({"mode": "raw", "text": offer_text})
    for award_text, _ in AWARD_GARBAGE.values():
        plan += [{"mode": "merit"}, {"mode": "raw", "text": award_text}]
    endpoint, _ = agent(plan)
    dso = _external(case, endpoint, timeout_ms=5000)
    ref_vr, _ = _reference(case, None)
    for name, (_, problem) in OFFER_GARBAGE.items():
        vr = dso.virtual_resource(case["p"], case["q"], case["offers"])
        assert vr.curve == ref_vr.curve, name
        events = dso.drain_events()
        assert [e["kind"] for e in events] == ["gateway_invalid_reply", "gateway_fallback"], name
        assert events[0]["message"].startswith("offer: invalid reply: "), name
        assert problem in events[0]["message"], (name, events[0]["message"])
    for name, (_, problem) in AWARD_GARBAGE.items():
        vr = dso.virtual_resource(case["p"], case["q"], case["offers"])  # the agent's
        assert vr.method == "external"
        award = ref_vr.p_min_mw + 0.4 * (ref_vr.p_max_mw - ref_vr.p_min_mw)  # feasible
        dis = dso.disaggregate(award, LMP)
        _, ref = _reference(case, award)
        assert dis.setpoints_mw == pytest.approx(ref.setpoints_mw, abs=1e-6), name
        events = dso.drain_events()
        assert [e["kind"] for e in events] == ["gateway_invalid_reply", "gateway_fallback"], name
        assert problem in events[0]["message"], (name, events[0]["message"])
    n_bad = len(OFFER_GARBAGE) + len(AWARD_GARBAGE)
    assert dso.stats["invalid"] == n_bad
    assert dso.stats["fallbacks"] == n_bad
    assert dso.stats["timeouts"] == 0
    assert dso.client.resets == 0


def test_award_tolerance_rejects_set_points_that_miss_the_award(case: dict, agent) -> None:  # noqa: ANN001
    endpoint, _ = agent([{"mode": "merit"}, {"mode": "distinct"}])
    dso = _external(case, endpoint, award_tolerance_mw=0.01)
    vr = dso.virtual_resource(case["p"], case["q"], case["offers"])
    assert vr.method == "external"
    ref_vr, _ = _reference(case, None)
    dso.disaggregate(ref_vr.p_max_mw, LMP)  # all devices at their minimum: far below
    events = dso.drain_events()
    assert events[0]["kind"] == "gateway_invalid_reply"
    assert "award_tolerance_mw 0.01" in events[0]["message"]


# ------------------------------------------------------------------ endpoints, params
@pytest.mark.parametrize(
    "endpoint",
    ["tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://127.0.0.2:5555", "tcp://[::1]:5555"],
)
def test_loopback_endpoints_are_accepted(endpoint: str) -> None:
    assert check_endpoint(endpoint) == endpoint


@pytest.mark.parametrize(
    "endpoint", ["tcp://10.1.2.3:5555", "tcp://0.0.0.0:5555", "tcp://example.org:5555"]
)
def test_remote_endpoints_need_allow_remote(case: dict, endpoint: str) -> None:
    with pytest.raises(ValueError, match="allow_remote: true"):
        _external(case, endpoint)
    assert _external(case, endpoint, allow_remote=True).client.endpoint == endpoint


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5555", "tcp://127.0.0.1", "5555"])
def test_malformed_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="must be tcp://HOST:PORT"):
        check_endpoint(endpoint)


def test_unknown_gateway_params_are_refused(case: dict) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        _external(case, "tcp://127.0.0.1:5555", timeout_s=1)


def test_the_gateway_never_pickles() -> None:
    forbidden = ("import pickle", "pickle.", "_pyobj", "marshal", "shelve")
    sources = (REPO / "src" / "gridlayers" / "gateway").glob("*.py")
    assert not [(p.name, f) for p in sources for f in forbidden if f in p.read_text()]


# ------------------------------------------------------------------------- end to end
def test_a_co_simulation_applies_the_agents_set_points(tmp_path: Path, agent) -> None:  # noqa: ANN001
    """Default scenario, rural LDA, 2 quarter-hours; Total DSO (the 2nd offer times out),
    then Minimal DSO (the agent's redispatch puts every device at its minimum)."""
    from gridlayers.runner import run_scenario
    from gridlayers.scenarios import load_scenario

    # the 2nd offer's reply comes 2.5 s late: after the 2 s time-out, but before the award
    # request of that interval (sent after the time-out) has waited 2 s
    plan = [{"mode": "merit"}, {"mode": "distinct"}, {"mode": "hang", "seconds": 2.5},
            {"mode": "distinct"}, {"mode": "distinct"}, {"mode": "distinct"}]  # fmt: skip
    endpoint, log = agent(plan)
    data = yaml.safe_load((REPO / "scenarios" / "default.yaml").read_text())
    data["horizon"] = {"start": "2016-06-01 12:00", "intervals": 2, "interval_min": 15}
    data["ldas"] = data["ldas"][:1]
    data["ldas"][0]["dso_strategy"] = "external"
    data["ldas"][0]["dso_params"] = {"endpoint": endpoint, "timeout_ms": 2000}
    data["paradigms"] = ["total_dso", "minimal_dso"]
    data["output"] = {"bus_voltages": False, "device_dispatch": True}
    file = tmp_path / "external.yaml"
    file.write_text(yaml.safe_dump(data))
    outcome = run_scenario(load_scenario(file), tmp_path / "out")
    assert outcome.ok, outcome.summary["error"]
    assert outcome.summary["paradigms"]["total_dso"]["intervals"] == 2
    assert outcome.summary["paradigms"]["minimal_dso"]["intervals"] == 2

    con = duckdb.connect(str(tmp_path / "out" / "results.duckdb"), read_only=True)
    applied = con.execute(
        "SELECT paradigm, interval, device, setpoint_mw FROM device_interval "
        "ORDER BY paradigm, interval, device"
    ).df()
    events = con.execute("SELECT paradigm, interval, source, kind, message FROM event").df()
    con.close()
    replies = [json.loads(line) for line in log.read_text().splitlines()]
    for paradigm, kind in (("total_dso", "award"), ("minimal_dso", "redispatch")):
        decided = [r["reply"]["setpoints_mw"] for r in replies if r["request"] == kind]
        assert len(decided) == 2
        for k, setpoints in enumerate(decided):
            rows = applied[(applied.paradigm == paradigm) & (applied.interval == k)]
            got = rows.set_index("device")["setpoint_mw"]
            assert got.to_dict() == pytest.approx(setpoints, abs=1e-9)
            assert len(got) == len(setpoints) > 0
    gateway = events[events.kind.str.startswith("gateway_")]
    assert gateway[["paradigm", "interval", "source", "kind"]].values.tolist() == [
        ["total_dso", 1, "rural", "gateway_timeout"],
        ["total_dso", 1, "rural", "gateway_fallback"]]  # fmt: skip
    assert gateway.message.iloc[0] == f"offer: no reply from {endpoint} within 2000 ms"
