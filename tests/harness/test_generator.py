"""The seeded schedule: reproducible, varied, biased by its action mix, replayable from text."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from harness import MIXES, Action, Hop, IntentRef, Schedule, ScheduleError, Step
from harness.faults import FAULT_ACTIONS
from harness.generator import SCHEDULE_ACTIONS


def test_same_seed_same_schedule_and_hash() -> None:
    a = Schedule.generate("sc1-1", 50, "standard")
    b = Schedule.generate("sc1-1", 50, "standard")
    assert a == b and a.hash == b.hash and len(a.hash) == 12


def test_different_seed_or_mix_differs() -> None:
    base = Schedule.generate("sc1-1", 50)
    assert Schedule.generate("sc1-2", 50).hash != base.hash
    assert Schedule.generate("sc1-1", 50, "chaotic").hash != base.hash


def test_a_longer_run_extends_a_shorter_one() -> None:
    # Lets a failure found in 50 steps be replayed with 20 or 200 and keep its beginning.
    assert Schedule.generate("sc1-1", 200).steps[:50] == Schedule.generate("sc1-1", 50).steps


def test_known_schedule_is_stable_across_versions() -> None:
    # Changing this hash breaks every replay command ever printed: do it on purpose only.
    assert Schedule.generate("sc1-1", 50).hash == "f6b8abfaf011"


def test_every_action_kind_appears_over_a_long_schedule() -> None:
    steps = Schedule.generate("sc1-long", 2000, "standard").steps
    assert {s.action for s in steps} == set(SCHEDULE_ACTIONS)
    assert {(s.action, s.hop) for s in steps if s.hop} >= {(a, h) for a in (Action.PARTITION, Action.HEAL) for h in Hop}
    assert {s.intent for s in steps if s.action is Action.RETRY_BOOK} == set(IntentRef)


def test_fifty_default_steps_usually_have_every_ingredient() -> None:
    # Weights, not quotas: a given seed may lack one ingredient, but almost none may.
    runs = [Counter(s.action for s in Schedule.generate(f"sc1-{i}", 50).steps) for i in range(100)]
    faults = (Action.LATENCY, Action.JITTER, Action.DROPS, Action.TIMEOUTS, Action.PARTITION)
    ingredients = {
        "demand": lambda c: sum(c[a] for a in c if a.is_demand) >= 10,
        "races": lambda c: c[Action.RACE] >= 2,
        "duplicates or reorders": lambda c: c[Action.DUPLICATE] + c[Action.REORDER] >= 1,
        "retries": lambda c: c[Action.RETRY_BOOK] >= 1,
        "crashes": lambda c: c[Action.RESTART_SIMCITY] >= 1,
        "faults": lambda c: sum(c[a] for a in faults) >= 1,
        "heals": lambda c: c[Action.HEAL] >= 1,
    }
    for name, present in ingredients.items():
        assert sum(map(present, runs)) >= 95, name
    mean_crashes = sum(c[Action.RESTART_SIMCITY] for c in runs) / len(runs)
    assert 2 <= mean_crashes <= 8, "a few crashes, not a crash loop"


def test_quiet_has_no_faults_and_chaotic_has_more() -> None:
    calm = Schedule.generate("sc1-1", 500, "quiet").steps
    assert all(s.hop is None and s.action is not Action.RESTART_SIMCITY for s in calm)
    def faults(profile: str) -> int:
        return sum(1 for s in Schedule.generate("sc1-1", 500, profile).steps if s.action in FAULT_ACTIONS)
    assert faults("chaotic") > faults("standard") > 0


# No deadline: the machine is shared with other suites, and speed is not what is tested here.
@settings(deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(0, 120), st.sampled_from(sorted(MIXES)))
def test_generated_schedules_are_consistent(seed: str, iterations: int, profile: str) -> None:
    schedule = Schedule.generate(seed, iterations, profile)
    assert len(schedule) == iterations
    sent: set[IntentRef] = set()
    active: dict[Hop, set[Action]] = {h: set() for h in Hop}
    for step in schedule.steps:
        if step.action is Action.RETRY_BOOK:
            assert step.intent in sent, "a retry reuses an intent already sent"
        if step.action is Action.RACE:
            sent.update(IntentRef)
        elif step.intent:
            sent.add(step.intent)
        if step.action is Action.HEAL:
            assert step.hop and active[step.hop], "heal only what is broken"
            active[step.hop].clear()
        elif step.action in FAULT_ACTIONS:
            assert step.hop and step.action not in active[step.hop], "one toxic of a kind per hop"
            active[step.hop].add(step.action)
    # Round trips: text steps and JSON keep the same hash.
    assert Schedule.from_actions([str(s) for s in schedule.steps]).hash == schedule.hash
    assert Schedule.from_json(json.loads(json.dumps(schedule.to_json()))) == schedule


def test_from_actions_builds_an_explicit_schedule() -> None:
    schedule = Schedule.from_actions(["send_book(A)", "latency(app-db)", Step(Action.RESTART_SIMCITY),
                                      " heal( app-db ) ", "retry_book(A)", "no_op()"])
    assert [str(s) for s in schedule.steps] == [
        "send_book(A)", "latency(app-db)", "restart_simcity()", "heal(app-db)", "retry_book(A)", "no_op()"]
    assert schedule.steps[1] == Step(Action.LATENCY, hop=Hop.APP_DB)
    assert schedule.seed is None and len(schedule) == 6


@pytest.mark.parametrize("text", [
    "book(A)", "send_book()", "send_book(C)", "send_book(A", "latency()", "latency(A)",
    "latency(app-db, 800)", "heal()", "no_op(A)", "snapshot()", "settle()", "restart_simcity(app-db)",
    "race(A)", "duplicate()", "reorder(app-db)",
])
def test_bad_steps_are_rejected(text: str) -> None:
    with pytest.raises(ScheduleError):
        Step.parse(text)


def test_bad_inputs_are_usage_errors() -> None:
    with pytest.raises(ScheduleError, match="unknown action mix .hurricane."):
        Schedule.generate("sc1-1", 10, "hurricane")
    with pytest.raises(ScheduleError):
        Schedule.generate("", 10)
    with pytest.raises(ScheduleError):
        Schedule.generate("sc1-1", -1)
    data = Schedule.generate("sc1-1", 5).to_json()
    data["hash"] = "000000000000"
    with pytest.raises(ScheduleError, match="hash mismatch"):
        Schedule.from_json(data)
    assert ScheduleError.exit_code == 2


def test_the_free_slot_is_usually_first_met_by_a_race() -> None:
    # Concurrent demand: while neither customer has sent, a race of both is much likelier than a
    # lone send, so the race for the free slot is in the schedule.
    firsts = []
    for i in range(200):
        steps = Schedule.generate(f"sc1-{i}", 50).steps
        firsts.append(next((s.action for s in steps if s.action.is_demand), None))
    assert firsts.count(Action.RACE) / len(firsts) >= 0.75


def test_both_customers_keep_racing_through_the_run() -> None:
    # Faults and crashes spoil many races; back-to-back bookings of both customers recur, so the
    # race is run again later in the schedule.
    for i in range(50):
        steps = Schedule.generate(f"sc1-{i}", 50).steps
        races = [n for n, s in enumerate(steps) if s.action is Action.RACE]
        pairs = [n for n in range(1, len(steps))
                 if steps[n - 1].intent and steps[n].intent and steps[n - 1].intent is not steps[n].intent]
        assert len(races) + len(pairs) >= 2, [str(s) for s in steps]
