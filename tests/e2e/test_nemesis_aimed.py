"""The nemesis against requests in flight, on the real local stack (real PostgreSQL, real proxies,
real app processes, real SIGKILLs; loopback only).

An aimed crash strikes milliseconds after a burst's release, while its requests are in the app;
a cut lands between the commit and the answer (the booking happened, the client never hears of
it); a database stall outlasts the client's timeout and lifts itself; `--profile storm` really puts
storm.toml's toxics on the proxies; `--slots K` runs K independent SC-1 instances, read in one
request each time, and still catches the racy mutant, naming its slot.

Where a test needs the app's answers to come a few ms after the fault, the database is placed
30 ms away from the app (LocalStack distance), as a hosted one is: every round trip of the
booking's transaction then takes that long, so a loaded machine cannot make the app answer
before the fault lands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from harness.checker import Validity, ViolationName
from harness.contract import CrashCheck
from harness.faults import plan_for_profile
from harness.generator import Schedule, Step
from harness.history import Action, History, Hop, Op, OpKind, step_of
from harness.nemesis import Nemesis, load_sources
from harness.report.text import render_text
from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.local import DB_PROXY, APP_PROXY, LocalStack
from tests.e2e.catching import assert_crashes_under_a_stall_are_watched
from toxics import ToxiproxyController, load_profile
from toxics.profiles import list_profiles

pytestmark = pytest.mark.timeout(60)

DB_AWAY_MS = 30


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack({"BOOKING_STRATEGY": "atomic"}) as started:
        yield started


@pytest.fixture(scope="module")
def far_db_stack() -> Iterator[LocalStack]:
    """The correct app with its database DB_AWAY_MS away: its answers come tens of ms after a
    burst's release, so faults aimed a few ms after it meet the requests inside the app."""
    with LocalStack({"BOOKING_STRATEGY": "atomic"}, distance={"app-db": DB_AWAY_MS}) as started:
        yield started


@pytest.fixture()
def proxies(stack: LocalStack) -> Iterator[ToxiproxyController]:
    """The stack's Toxiproxy API, to see what is really on the proxies."""
    api = ToxiproxyController(stack.endpoints.proxy_api_url)
    try:
        yield api
    finally:
        api.heal()
        api.close()


def schedule(*steps: str) -> Schedule:
    return Schedule(tuple(Step.parse(s) for s in steps), "nemesis-aimed", None)


def run(stack: LocalStack, steps: tuple[str, ...], *, progress: Callable[[int, int, str], None] | None = None,
        **config: object) -> RunResult:
    explicit = schedule(*steps)
    settings: dict[str, object] = {"seed": "nemesis-aimed", "iterations": len(explicit), "profile": "default"}
    settings.update(config)
    return run_sc1(stack, RunConfig(schedule=explicit, **settings), progress)  # type: ignore[arg-type]


def invokes_of_step(history: History, number: int, action: Action | None = None) -> list[Op]:
    return [op for op in history.ops if op.kind is OpKind.INVOKE and step_of(op) == number
            and (action is None or op.action is action)]


def fault_op(history: History, action: Action) -> Op:
    """The completion of the (only) `action` step: its params are what the nemesis injected."""
    [op] = [op for op in history.ops if op.action is action and op.kind is not OpKind.INVOKE]
    return op


def settle_at(history: History) -> int:
    return next(op.index for op in history.ops if op.action is Action.SETTLE and op.kind is OpKind.INVOKE)


def explain(result: RunResult) -> str:
    return f"{result.verdict.valid.value}: {[v.message for v in result.verdict.violations]} {result.verdict.reason}"


# --- (a) an aimed crash ------------------------------------------------------------------------------


def test_an_aimed_crash_strikes_while_the_race_is_in_flight(far_db_stack: LocalStack) -> None:
    result = run(far_db_stack, ("race()", "restart_simcity(+5ms)"), profile="calm", slots=1)
    history = result.history
    race = invokes_of_step(history, 1)
    [crash] = invokes_of_step(history, 2, Action.RESTART_SIMCITY)
    assert len(race) == 2 and {op.action for op in race} == {Action.SEND_BOOK}
    assert dict(crash.details.params)["aim_ms"] == 5
    # The race's invokes are recorded just before its release; the crash 5 ms after the release.
    for op in race:
        assert 0.005 <= crash.time_s - op.time_s <= 0.05, (crash.time_s, op.time_s)
    # The race's own pause and read go on while the crash is under way: that read is sent after
    # the crash began and before the app was back.
    crashed = history.completion_of(crash)
    assert crashed is not None
    race_read = next(op for op in history.ops if op.action is Action.SNAPSHOT and op.kind is OpKind.INVOKE
                     and op.index > race[-1].index)
    assert crash.index < race_read.index < crashed.index
    in_flight = [op for op in race if (done := history.completion_of(op)) is None or done.index > crash.index]
    assert in_flight, "every answer came back before the crash: it was not aimed at requests in flight"
    # A request in the killed app is unknown, never a failure.
    for op in in_flight:
        done = history.completion_of(op)
        assert done is None or done.kind is OpKind.INFO, done
    assert result.crashes == 1
    assert result.verdict.valid is Validity.PASS, explain(result)


# --- (b) a cut between the commit and the answer --------------------------------------------------------


def test_a_cut_of_live_requests_loses_answers_of_bookings_that_happened(far_db_stack: LocalStack) -> None:
    result = run(far_db_stack, ("race()", "cut(client-app+3ms)", "no_op()", "no_op()"), step_pause_s=0.5)
    history = result.history
    cut = fault_op(history, Action.CUT)
    assert dict(cut.details.params) == {"reset_peer.timeout": 0, "reset_peer.toxicity_pct": 100}
    [cut_invoke] = invokes_of_step(history, 2, Action.CUT)
    race = invokes_of_step(history, 1)
    assert len(race) == 2
    settling = settle_at(history)

    cut_but_done = []
    for invoke in race:
        answer = history.completion_of(invoke)
        assert answer is not None and answer.index < settling
        if answer.kind is not OpKind.INFO:
            continue
        assert answer.index > cut_invoke.index  # it was in flight when the cut came
        # A read sent after that unknown answer, before anything else was sent for the intent,
        # shows the intent decided: the work was done, the answer lost.
        reads = [op for op in history.snapshots
                 if op.invoke_index is not None and answer.index < op.invoke_index < settling]
        rows = [r for op in reads for r in op.snapshots[0].rows_for(invoke.details.intent_id or "")]
        if rows and all(r.status.value in ("confirmed", "rejected") for r in rows):
            cut_but_done.append(invoke)
    assert cut_but_done, [(op.index, history.completion_of(op)) for op in race]
    # The settle phase resends, gets definite answers, and the correct app passes.
    assert result.verdict.valid is Validity.PASS, explain(result)


# --- (c) a database stall crossing the client's timeout -------------------------------------------------


STALL_STEPS = ("stall(app-db)", "race()", *("no_op()",) * 6, "race()")


def test_a_stall_crossing_the_timeout_is_unknown_then_lifts_itself(stack: LocalStack) -> None:
    result = run(stack, STALL_STEPS, step_pause_s=0.5, request_timeout_s=1.0)
    history = result.history
    stall = fault_op(history, Action.STALL)
    params = dict(stall.details.params)
    assert params["lasts_ms"] == 2500
    assert params["latency.latency"] == 1500 and params["latency.jitter"] == 1000
    lifted_by = stall.time_s + params["lasts_ms"] / 1000
    settling = settle_at(history)
    assert not any(op.action is Action.HEAL for op in history.ops if op.index < settling)

    during = invokes_of_step(history, 2)
    assert len(during) == 2 and all(op.time_s < lifted_by for op in during)
    for invoke in during:
        answer = history.completion_of(invoke)
        assert answer is not None and answer.kind is OpKind.INFO, answer
        assert answer.details.error == "ReadTimeout" and (answer.details.latency_ms or 0) >= 1000

    # The race after the lift, still before the settle phase heals anything: the database answers
    # at its own speed again (a stalled round trip alone takes >= 500 ms).
    after = invokes_of_step(history, len(STALL_STEPS))
    assert len(after) == 2 and all(op.time_s > lifted_by + 0.2 for op in after), (after, lifted_by)
    for invoke in after:
        answer = history.completion_of(invoke)
        assert answer is not None and answer.index < settling
        assert answer.details.answer is not None and answer.details.answer.is_definite, answer
        assert (answer.details.latency_ms or 0) < 500, answer
    assert result.verdict.valid is Validity.PASS, explain(result)


def toxic_names(api: ToxiproxyController, proxy: str) -> set[str]:
    return {t.name for t in api.toxics(proxy)}


def test_a_later_stall_is_not_lifted_by_an_earlier_ones_timer(stack: LocalStack,
                                                              proxies: ToxiproxyController) -> None:
    seen: list[tuple[int, float, set[str]]] = []

    def look(done: int, total: int, step: str) -> None:
        if not step.startswith("settle:"):  # the settle phase heals everything: no look at a stall there
            seen.append((done, time.monotonic(), toxic_names(proxies, DB_PROXY)))

    steps = ("stall(app-db)", "heal(app-db)", "no_op()", "no_op()", "stall(app-db)", "no_op()", "no_op()",
             "no_op()")
    result = run(stack, steps, step_pause_s=0.5, progress=look)
    assert result.verdict.valid is Validity.PASS, explain(result)
    at = {done: t for done, t, _ in seen}
    first_lift_by = at[1] + 2.5  # the first stall began before step 1 was reported
    second_begins_after = at[4]  # the second stall began after step 4 was reported
    checks = [(t, names) for done, t, names in seen
              if done > 5 and first_lift_by + 0.3 < t < second_begins_after + 2.5 - 0.3]
    assert checks, f"no look fell between the first stall's lift and the second's: {seen}"
    for t, names in checks:
        assert "stall_latency_downstream" in names, (
            f"{t - second_begins_after:.2f} s into the second stall (of 2.5 s), app_db has {names}")


# --- (d) --profile storm applies storm.toml ----------------------------------------------------------------


def only_storm_has(hop: str) -> set[str]:
    """Toxic types storm.toml puts on `hop` that no kind's own profile puts there."""
    storm = {f.effect.type for f in load_profile("storm").faults if f.hop == hop and hasattr(f.effect, "type")}
    others = {f.effect.type for name in list_profiles() if name != "storm"
              for f in load_profile(name).faults if f.hop == hop and hasattr(f.effect, "type")}
    return storm - others


def test_profile_storm_really_puts_storms_toxics_on_the_proxies(stack: LocalStack,
                                                                 proxies: ToxiproxyController) -> None:
    assert "slicer" in only_storm_has("client-app")
    on_proxy: dict[int, dict[str, dict[str, int]]] = {}

    def look(done: int, total: int, step: str) -> None:
        on_proxy[done] = {t.type: dict(t.attributes) for proxy in (APP_PROXY, DB_PROXY) for t in proxies.toxics(proxy)}

    steps = ("latency(client-app)", "race()", "heal(client-app)", "drops(app-db)", "heal(app-db)",
             "cut(client-app)", "heal(client-app)")
    result = run(stack, steps, profile="storm", progress=look)
    history = result.history

    latency = dict(fault_op(history, Action.LATENCY).details.params)
    assert latency["latency.latency"] == 100 and latency["latency.jitter"] == 80  # storm's, not latency.toml's 150
    assert latency["slicer.average_size"] == 64 and latency["slicer.delay"] == 500
    assert latency["limit_data.bytes"] == 200 and latency["limit_data.toxicity_pct"] == 10
    assert on_proxy[1]["slicer"]["average_size"] == 64, on_proxy[1]

    drops = dict(fault_op(history, Action.DROPS).details.params)
    assert drops["latency.latency"] == 40 and drops["timeout.timeout"] == 2000
    assert drops["reset_peer.timeout"] == 300 and drops["reset_peer.toxicity_pct"] == 15
    assert not any(key.startswith("limit_data.") for key in drops), "drops.toml's own toxics leaked in"
    assert set(on_proxy[4]) >= {"latency", "reset_peer", "timeout"}, on_proxy[4]

    cut = dict(fault_op(history, Action.CUT).details.params)
    assert "slicer.average_size" in cut and "reset_peer.timeout" not in cut  # storm's client-app, not cut.toml
    # Each heal left the proxies clean.
    assert on_proxy[3] == {} and on_proxy[5] == {} and on_proxy[7] == {}
    assert result.verdict.valid is not Validity.FAIL, explain(result)


def test_a_stall_under_storm_lifts_all_it_injected(stack: LocalStack, proxies: ToxiproxyController) -> None:
    nemesis = Nemesis(stack, load_sources(plan_for_profile("storm").sources))
    try:
        injected, token = nemesis.inject(Action.STALL, Hop.APP_DB)
        params = dict(injected)
        assert params.get("partition") == 1  # storm's app-db toxics and its partition went on
        assert token is not None
        nemesis.lift(token)
        state = proxies.proxy(DB_PROXY)
        assert state.toxics == ()
        assert state.enabled, "the stall lifted itself, and the database is still partitioned"
        assert not nemesis.database_cut_off()
    finally:
        nemesis.heal_all()
        nemesis.close()


def test_a_crash_while_app_db_is_cut_off_waits_until_the_app_listens_and_is_watched(stack: LocalStack) -> None:
    # The local stack saw every process of the old app die and a new one start.
    assert_crashes_under_a_stall_are_watched(stack)


def test_a_run_that_crashes_the_app_under_a_stall_passes_and_says_the_crash_was_watched(stack: LocalStack) -> None:
    # The correct app under the same stress as the test above, through a whole run: the steps after
    # the crash meet an app whose database is still stalled, and the settle phase heals and waits.
    result = run(stack, ("race()", "stall(app-db)", "restart_simcity()", "retry_book(A)", "retry_book(B)"))
    assert result.verdict.valid is Validity.PASS, explain(result)
    [crash] = [op for op in result.history.ops if op.action is Action.RESTART_SIMCITY and op.kind is OpKind.OK]
    assert dict(crash.details.params)["boot_id"] == CrashCheck.WATCHED.value
    summary = render_text(result.history, result.verdict)
    assert "crashes: 1 (1 watched by SimCity itself: every process of the app gone, a new one listening)" in summary


def test_a_fault_step_that_injects_nothing_is_recorded_as_skipped(stack: LocalStack,
                                                                  proxies: ToxiproxyController) -> None:
    result = run(stack, ("race()", "cut(client-app+3ms)"), profile="calm")
    assert toxic_names(proxies, APP_PROXY) == set()
    cut = fault_op(result.history, Action.CUT)
    params = dict(cut.details.params)
    assert params, "the history says a cut happened and nothing says it did nothing"
    assert params.get("skipped") == 1


# --- (e) --slots K ------------------------------------------------------------------------------------------


def test_three_slots_of_the_correct_app_pass_read_in_one_request_each_time(stack: LocalStack) -> None:
    result = run_sc1(stack, RunConfig(seed="slots-3", iterations=40, slots=3))
    history = result.history
    verdict = result.verdict
    assert verdict.valid is Validity.PASS, explain(result)
    assert len(history.fixtures) == 3 and len({f.slot_id for f in history.fixtures}) == 3
    assert len(verdict.slot_outcomes) == 3
    assert all(state is not None and winner is not None for state, winner in verdict.slot_outcomes)

    invokes = [op for op in history.ops if op.action is Action.SNAPSHOT and op.kind is OpKind.INVOKE]
    answers = [op for op in history.ops if op.action is Action.SNAPSHOT and op.kind is not OpKind.INVOKE]
    # One read (one request for all 3 slots) at the start, after every step (aimed ones too), and
    # at the end of the settle phase; more where one took longer than a step's pause
    # (harness.runner.Run.step_read) or the settle phase did.
    assert any(s.aim_ms is not None for s in result.schedule.steps)
    assert len(invokes) == len(answers) >= len(result.schedule.steps) + 2
    for op in answers:
        assert op.kind is OpKind.OK
        assert [s.slot_id for s in op.snapshots] == [f.slot_id for f in history.fixtures]

    # Every booking went to the slot its step names.
    slot_of_intent = {i.intent_id: n for n, f in enumerate(history.fixtures, 1) for i in f.intents}
    booked_slots = set()
    for op in history.ops:
        if op.kind is OpKind.INVOKE and op.action.is_booking and (number := step_of(op)):
            assert slot_of_intent[op.details.intent_id or ""] == result.schedule.steps[number - 1].slot, op
            booked_slots.add(slot_of_intent[op.details.intent_id or ""])
    assert booked_slots == {1, 2, 3}


def test_the_racy_mutant_is_caught_on_four_slots_naming_the_slot() -> None:
    with LocalStack({"BOOKING_STRATEGY": "racy"}) as racy:
        results = []
        for n in range(1, 4):
            result = run_sc1(racy, RunConfig(seed=f"sc1-{n}", iterations=50, slots=4))
            results.append(result)
            if result.verdict.failed:
                break
    tried = [f"sc1-{n}: {explain(r)}" for n, r in enumerate(results, 1)]
    assert results[0].verdict.failed, f"racy was not caught on the first seed with --slots 4: {tried}"
    result = results[0]
    primary = result.verdict.primary
    assert primary is not None and primary.name is ViolationName.DOUBLE_BOOKING, explain(result)
    assert 1 <= primary.slot <= 4
    assert primary.message.startswith(f"slot {primary.slot}: ")
    slot_id = result.history.fixtures[primary.slot - 1].slot_id
    assert slot_id in primary.message
    # The slot it names is the one with two confirmed bookings, in the read it points at.
    [read] = [op for op in result.history.ops if op.index == primary.index]
    confirmed = {k + 1 for k, s in enumerate(read.snapshots) if len(s.confirmed) > 1}
    assert primary.slot in confirmed
