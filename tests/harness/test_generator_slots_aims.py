"""Slots and aims in the schedule: `race()@3` books slot 3 of a `--slots` run, and
`restart_simcity(+40ms)` strikes 40 ms after the burst before it. Their text forms, what the
generator draws, and the runner's refusal of a schedule that needs more slots than the run has."""

from __future__ import annotations

import pytest

from harness.errors import ScheduleError, UsageError
from harness.generator import AIM_SPAN_MS, AIMABLE, MAX_AIM_MS, IntentRef, Schedule, Step
from harness.history import Action, Hop
from harness.runner import RunConfig, plan_schedule

SEEDS = [f"slots-{n}" for n in range(50)]


# --- text forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "step"), [
    ("race()@3", Step(Action.RACE, slot=3)),
    ("send_book(A)@2", Step(Action.SEND_BOOK, intent=IntentRef.A, slot=2)),
    ("duplicate(B)@4", Step(Action.DUPLICATE, intent=IntentRef.B, slot=4)),
    ("restart_simcity(+0ms)", Step(Action.RESTART_SIMCITY, aim_ms=0)),
    ("restart_simcity(+40ms)", Step(Action.RESTART_SIMCITY, aim_ms=40)),
    ("partition(client-app+300ms)", Step(Action.PARTITION, hop=Hop.CLIENT_APP, aim_ms=300)),
    ("cut(client-app+120ms)", Step(Action.CUT, hop=Hop.CLIENT_APP, aim_ms=120)),
    (f"timeouts(app-db+{MAX_AIM_MS}ms)", Step(Action.TIMEOUTS, hop=Hop.APP_DB, aim_ms=MAX_AIM_MS)),
])
def test_slot_and_aim_text_round_trips(text: str, step: Step) -> None:
    assert Step.parse(text) == step
    assert str(step) == text
    assert Step.parse(str(step)) == step


def test_slot_1_and_no_aim_are_the_plain_forms() -> None:
    assert str(Step.parse("race()@1")) == "race()"
    assert Schedule.from_actions(["race()@1"]).hash == Schedule.from_actions(["race()"]).hash
    # +0ms is an aim (strike at the release), not the absence of one.
    assert Step.parse("restart_simcity(+0ms)") != Step.parse("restart_simcity()")
    assert str(Step.parse("restart_simcity()")) == "restart_simcity()"


@pytest.mark.parametrize("text", [
    "latency(app-db+5ms)",  # latency acts on new bytes, not on requests in flight: not aimable
    "jitter(client-app+5ms)",
    "stall(app-db+5ms)",
    "heal(app-db+5ms)",
    "no_op(+5ms)",
    "send_book(A+5ms)",
    "race(+5ms)",
    "heal(app-db)@2",  # only demand names a slot
    "restart_simcity()@2",
    "no_op()@2",
    "latency(app-db)@2",
    f"restart_simcity(+{MAX_AIM_MS + 1}ms)",
    "restart_simcity(+5000ms)",
    "race()@0",
    "send_book(A)@0",
    "restart_simcity(-5ms)",
    "restart_simcity(+5s)",
])
def test_misplaced_slots_and_aims_are_rejected(text: str) -> None:
    with pytest.raises(ScheduleError):
        Step.parse(text)


def test_bad_slots_and_aims_are_rejected_when_built_directly() -> None:
    with pytest.raises(ScheduleError):
        Step(Action.RACE, slot=0)
    with pytest.raises(ScheduleError):
        Step(Action.RACE, slot=-1)
    with pytest.raises(ScheduleError):
        Step(Action.RESTART_SIMCITY, aim_ms=-1)
    with pytest.raises(ScheduleError):
        Step(Action.LATENCY, hop=Hop.APP_DB, aim_ms=5)


def test_the_aimable_actions_are_a_crash_and_the_live_connection_faults() -> None:
    assert AIMABLE == {Action.RESTART_SIMCITY, Action.DROPS, Action.TIMEOUTS, Action.PARTITION, Action.CUT}


# --- generated schedules with several slots ---------------------------------------------------------


def test_demand_names_slots_1_to_k_and_nothing_else_names_a_slot() -> None:
    for seed in SEEDS:
        for step in Schedule.generate(seed, 50, slots=4).steps:
            if step.action.is_demand:
                assert 1 <= step.slot <= 4, step
            else:
                assert step.slot == 1, step


def test_every_slot_gets_demand_in_most_runs() -> None:
    full = sum({s.slot for s in Schedule.generate(seed, 50, slots=4).steps if s.action.is_demand} == {1, 2, 3, 4}
               for seed in SEEDS)
    assert full >= 45, f"only {full} of {len(SEEDS)} schedules of 50 steps reached all 4 slots"


def test_every_slot_usually_has_a_race() -> None:
    # Each slot is an SC-1 instance of its own: its free slot should be met by a race too.
    raced = sum({s.slot for s in Schedule.generate(seed, 50, slots=4).steps if s.action is Action.RACE}
                == {1, 2, 3, 4} for seed in SEEDS)
    assert raced >= 40, raced


def test_a_retry_on_a_slot_follows_a_send_of_that_intent_on_that_slot() -> None:
    for seed in SEEDS:
        sent: dict[int, set[IntentRef]] = {k: set() for k in range(1, 4)}
        for step in Schedule.generate(seed, 80, slots=3).steps:
            if step.action is Action.RETRY_BOOK:
                assert step.intent in sent[step.slot], (seed, str(step))
            if step.action is Action.RACE:
                sent[step.slot].update(IntentRef)
            elif step.intent is not None:
                sent[step.slot].add(step.intent)


def test_one_slot_schedules_never_print_a_slot() -> None:
    for seed in SEEDS:
        schedule = Schedule.generate(seed, 50)
        assert all("@" not in str(s) for s in schedule.steps), seed
        assert schedule.slots == 1
        assert all("@" not in text for text in schedule.to_json()["steps"])  # type: ignore[union-attr]


def test_more_slots_draw_another_schedule_from_the_same_seed() -> None:
    for seed in SEEDS[:10]:
        one, four = Schedule.generate(seed, 50), Schedule.generate(seed, 50, slots=4)
        assert one.steps != four.steps and one.hash != four.hash
        assert Schedule.generate(seed, 50, slots=4) == four  # and that one is reproducible


def test_a_slots_schedule_round_trips_through_json() -> None:
    schedule = Schedule.generate("slots-json", 60, slots=3)
    assert Schedule.from_json(schedule.to_json()) == schedule
    assert any("@" in text for text in schedule.to_json()["steps"])  # type: ignore[union-attr]


def test_bad_slot_counts_are_refused() -> None:
    with pytest.raises(ScheduleError, match="slots"):
        Schedule.generate("sc1-1", 10, slots=0)
    with pytest.raises(UsageError, match="--slots"):
        plan_schedule(RunConfig(slots=0))


# --- generated aims --------------------------------------------------------------------------------


def test_aimed_steps_directly_follow_a_demand_step_within_the_span() -> None:
    aimed = 0
    for seed in SEEDS:
        steps = Schedule.generate(seed, 50, "chaotic", slots=2).steps
        for n, step in enumerate(steps):
            if step.aim_ms is None:
                continue
            aimed += 1
            assert n > 0 and steps[n - 1].action.is_demand, (seed, n, [str(s) for s in steps[max(0, n - 1):n + 1]])
            assert step.action in AIMABLE
            assert 0 <= step.aim_ms <= AIM_SPAN_MS == 300
    assert aimed >= 50, "aims are common in the chaotic mix"


def test_an_aimable_step_right_after_demand_is_always_aimed_and_never_otherwise() -> None:
    for seed in SEEDS:
        steps = Schedule.generate(seed, 50).steps
        for before, step in zip(steps, steps[1:]):
            if step.action in AIMABLE:
                assert (step.aim_ms is not None) == before.action.is_demand, (seed, str(before), str(step))
        assert steps[0].aim_ms is None


def test_aims_cover_the_first_milliseconds_and_the_slow_tail() -> None:
    aims = [s.aim_ms for seed in SEEDS for s in Schedule.generate(seed, 50).steps if s.aim_ms is not None]
    assert len(aims) >= 100
    assert sum(a < 10 for a in aims) >= 0.2 * len(aims), "log-uniform: the first ms densely covered"
    assert sum(a > 100 for a in aims) >= 0.1 * len(aims), "and the slow tail too"
    assert min(aims) <= 1 and max(aims) >= 250


def test_aimed_crashes_appear_in_the_standard_mix() -> None:
    crashes = [s for seed in SEEDS for s in Schedule.generate(seed, 50).steps if s.action is Action.RESTART_SIMCITY]
    aimed = [s for s in crashes if s.aim_ms is not None]
    assert aimed and len(aimed) < len(crashes), "some crashes are aimed at a burst, some strike between"


# --- the schedule's slots against the run's ------------------------------------------------------------


def test_schedule_slots_is_the_highest_slot_its_demand_names() -> None:
    assert Schedule.from_actions([]).slots == 1
    assert Schedule.from_actions(["race()", "restart_simcity()"]).slots == 1
    assert Schedule.from_actions(["race()", "send_book(A)@3", "race()@2"]).slots == 3
    assert Schedule.generate("slots-1", 50, slots=4).slots <= 4


def test_a_schedule_needing_more_slots_than_the_run_has_is_refused() -> None:
    schedule = Schedule.from_actions(["race()", "race()@3"])
    with pytest.raises(UsageError, match="--slots 3") as raised:
        plan_schedule(RunConfig(slots=2, schedule=schedule))
    assert "\n" not in str(raised.value)
    assert plan_schedule(RunConfig(slots=3, schedule=schedule))[0] is schedule
    assert plan_schedule(RunConfig(slots=5, schedule=schedule))[0] is schedule


def test_plan_schedule_draws_with_the_runs_slots() -> None:
    schedule, _ = plan_schedule(RunConfig(seed="slots-plan", iterations=50, slots=4))
    assert schedule == Schedule.generate("slots-plan", 50, "standard", slots=4)
    one, _ = plan_schedule(RunConfig(seed="slots-plan", iterations=50))
    assert one == Schedule.generate("slots-plan", 50, "standard")
