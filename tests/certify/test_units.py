"""Pure parts of the reproduction tools: coverage (where crashes landed), schedule determinism and
run.json, ddmin on a fake oracle, the canonical form of candidates, the cut after the break."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness import coverage
from harness.certify import winners
from harness.checker import check
from harness.cli_tools import explicit_schedule
from harness.errors import ScheduleError, UsageError
from harness.faults import KINDS
from harness.generator import SCHEDULE_ACTIONS, IntentRef, Schedule, Step
from harness.contract import SlotState
from harness.history import Action, Details, History, Hop, OpKind, Process
from harness.runinfo import RunInfo, read_report_dir, sc1_command, write_run_info
from harness.runner import RunResult
from harness.shrink import NotReproducedError, Shrinker, _OutOfBudget, canonical, describe_step, steps_until_break, story
from tests.harness.builders import INTENT, Builder, failing_history, passing_history, row


def test_crash_points() -> None:
    b = Builder()
    b.crash()  # nothing sent yet
    b.fault(Action.LATENCY, Hop.APP_DB, latency=50)
    sent = b.invoke(Process.C1)
    b.crash()  # C1's request has no answer yet
    b.answer(sent, 201)
    b.crash()  # every request answered
    b.fault(Action.PARTITION, Hop.APP_DB)
    b.invoke(Process.C2, retry=True)  # never answered: unknown
    b.heal(Hop.APP_DB)
    cov = coverage.of_history(b.history())
    assert cov["crashes"] == 3
    assert cov["crash_points"] == {"before_first_booking": 1, "before_commit": 1, "after_commit_before_answer": 0,
                                   "during_replay": 0, "between_bookings": 1}
    assert cov["crashes_after_confirmation"] == 1
    assert cov["faults"]["latency"] == 1 and cov["faults"]["partition"] == 1 and cov["fault_hops"]["app-db"] == 2
    assert cov["fault_points"] == {"before_first_booking": 1, "before_commit": 0, "after_commit_before_answer": 0,
                                   "during_replay": 0, "between_bookings": 1}
    assert cov["bookings_sent"] == 1 and cov["retries"] == 1 and cov["heals"] == 1
    assert cov["answers"] == {"ok": 1, "fail": 0, "unknown": 1}
    total = coverage.add(coverage.add(coverage.empty(), cov), cov)
    assert total["runs"] == 2 and total["crash_points"]["before_commit"] == 2


def test_crash_points_read_from_the_truth_after_the_strike() -> None:
    b = Builder()
    first = b.invoke(Process.C1)
    b.crash()  # C1's request in flight, and the read after it shows C1 decided: it had committed
    b.snap(SlotState.BOOKED, row(Process.C1))
    b.answer(first, None)
    replay = b.invoke(Process.C1, retry=True)
    b.crash()  # only a replay of a decided intent in flight
    b.answer(replay, 200)
    other = b.invoke(Process.C2)
    b.crash()  # C2's first request in flight, and the next read shows it undecided
    b.snap(SlotState.BOOKED, row(Process.C1))
    b.answer(other, None)
    points = coverage.of_history(b.history())["crash_points"]
    assert points["after_commit_before_answer"] == 1 and points["during_replay"] == 1 and points["before_commit"] == 1


def test_same_seed_same_schedule() -> None:
    one = Schedule.generate("sc1-7", 50, "chaotic")
    two = Schedule.generate("sc1-7", 50, "chaotic")
    assert one.hash == two.hash and [str(s) for s in one.steps] == [str(s) for s in two.steps]
    assert Schedule.generate("sc1-8", 50, "chaotic").hash != one.hash
    again = Schedule.from_json(json.loads(json.dumps(one.to_json())))
    assert again.hash == one.hash and again.steps == one.steps


def write_dir(tmp_path: Path, valid: str = "FAIL") -> Path:
    schedule = Schedule.generate("sc1-1", 20)
    write_run_info(tmp_path, RunInfo("sc1-1", 20, "default", "local", schedule, {"BOOKING_STRATEGY": "racy"}))
    violations = [{"invariant": 5, "name": "ACK_NOT_HONOURED", "index": 9},
                  {"invariant": 1, "name": "DOUBLE_BOOKING", "index": 12}] if valid == "FAIL" else []
    (tmp_path / "verdict.json").write_text(json.dumps({"valid": valid, "violations": violations}))
    return tmp_path


def test_run_json_round_trip(tmp_path: Path) -> None:
    recorded = read_report_dir(write_dir(tmp_path))
    assert recorded.info.schedule == Schedule.generate("sc1-1", 20)
    assert recorded.info.strategy == "racy" and recorded.info.stack_kind == "local"
    assert recorded.primary == "DOUBLE_BOOKING"  # the most basic invariant broken, as the checker says
    assert recorded.first_index == 9
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["schedule_hash"] == recorded.info.schedule.hash and run["simcity_version"]


def test_tampered_schedule_is_refused(tmp_path: Path) -> None:
    write_dir(tmp_path)
    run = json.loads((tmp_path / "run.json").read_text())
    run["schedule"]["steps"][0] = "send_book(B)" if run["schedule"]["steps"][0] != "send_book(B)" else "no_op()"
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(ScheduleError, match="hash mismatch"):
        read_report_dir(tmp_path)


@pytest.mark.parametrize("setup, fragment", [
    (lambda d: None, "no run.json"),
    (lambda d: (d / "run.json").write_text("{"), "not JSON"),
    (lambda d: (d / "run.json").write_text('{"format": "x"}'), "not a SimCity run description"),
])
def test_bad_report_dirs(tmp_path: Path, setup, fragment: str) -> None:  # type: ignore[no-untyped-def]
    setup(tmp_path)
    with pytest.raises(UsageError, match=fragment):
        read_report_dir(tmp_path)


def test_explicit_schedule_flags(tmp_path: Path) -> None:
    ns = argparse.Namespace(seed="x", profile="default", steps="send_book(A), latency(app-db),send_book(B)",
                            schedule=None)
    assert [str(s) for s in explicit_schedule(ns).steps] == ["send_book(A)", "latency(app-db)", "send_book(B)"]  # type: ignore[union-attr]
    ns.steps = "send_book(C)"
    with pytest.raises(ScheduleError):
        explicit_schedule(ns)
    write_run_info(tmp_path, RunInfo("x", 5, "default", "local", Schedule.generate("x", 5)))
    ns.steps, ns.schedule = None, tmp_path / "run.json"
    assert explicit_schedule(ns) == Schedule.generate("x", 5)


S = Step.parse


def test_canonical_drops_reapplied_faults_and_idle_heals() -> None:
    steps = [S("heal(app-db)"), S("latency(app-db)"), S("send_book(A)"), S("latency(app-db)"),
             S("heal(app-db)"), S("heal(app-db)"), S("latency(app-db)"), S("latency(client-app)")]
    assert [str(s) for s in canonical(steps)] == [
        "latency(app-db)", "send_book(A)", "heal(app-db)", "latency(app-db)", "latency(client-app)"]


class FakeShrinker(Shrinker):
    """ddmin against an oracle: fails when every `needed` step is present (order kept)."""

    def __init__(self, needed: set[str], **kw: object) -> None:
        info = RunInfo("s", 40, "default", "local", Schedule.generate("s", 40))
        super().__init__(None, info, "DOUBLE_BOOKING", **kw)  # type: ignore[arg-type]
        self.needed = needed

    def fails(self, steps: tuple[Step, ...]) -> bool:
        if steps in self.cache:
            return self.cache[steps]
        self.runs += 1
        if self.runs > self.budget_runs:
            self.stopped_by = "run budget"
            raise _OutOfBudget
        verdict = self.needed <= {str(s) for s in steps}
        self.cache[steps] = verdict
        return verdict


def test_ddmin_finds_the_needed_steps() -> None:
    steps = tuple(Step.parse(s) for s in ["no_op()", "send_book(A)", "retry_book(A)", "no_op()", "send_book(B)",
                                           "restart_simcity()", "no_op()", "retry_book(B)"] * 5)
    shrinker = FakeShrinker({"send_book(A)", "send_book(B)"}, budget_runs=500)
    best = shrinker.shrink(steps)
    assert sorted(str(s) for s in best) == ["send_book(A)", "send_book(B)"]


def test_ddmin_uses_the_cut_after_the_break() -> None:
    steps = tuple(Step.parse(s) for s in ["send_book(A)", "send_book(B)"] + ["no_op()"] * 30)
    shrinker = FakeShrinker({"send_book(A)", "send_book(B)"}, budget_runs=500)
    assert [str(s) for s in shrinker.shrink(steps, prefix=2)] == ["send_book(A)", "send_book(B)"]
    assert shrinker.runs == 1 + 2  # the prefix, then its two halves


def test_budget_returns_the_best_so_far() -> None:
    steps = tuple(Step.parse(s) for s in ["no_op()", "send_book(A)", "no_op()", "send_book(B)"] * 10)
    shrinker = FakeShrinker({"send_book(A)", "send_book(B)"}, budget_runs=4)
    best = shrinker.shrink(steps)
    assert shrinker.stopped_by == "run budget" and 2 <= len(best) < len(steps)
    assert {"send_book(A)", "send_book(B)"} <= {str(s) for s in best}


def test_not_reproduced() -> None:
    with pytest.raises(NotReproducedError):
        FakeShrinker({"partition(app-db)"}, budget_runs=10).shrink((S("send_book(A)"), S("send_book(B)")))


def test_steps_until_break() -> None:
    b = Builder()
    b.rec.complete(b.rec.invoke(Process.NEMESIS, Action.NO_OP, Details(params=(("step", 1),))), OpKind.OK)
    sent = b.rec.invoke(Process.C1, Action.SEND_BOOK, Details(intent_id=INTENT[Process.C1], params=(("step", 2),)))
    b.snap(SlotState.FREE)
    b.answer(sent, 201)
    history = b.history()
    assert steps_until_break(history, history.ops[-1].index) == 2
    assert steps_until_break(history, None) is None


def test_a_replay_of_explicit_steps_carries_no_iterations() -> None:
    steps = sc1_command("s", "default", "local", {}, iterations=50, extra=["--steps", "send_book(A),race()"])
    assert "--iterations" not in steps and steps.endswith("--steps 'send_book(A),race()'")
    assert "--iterations 50" in sc1_command("s", "default", "local", {}, iterations=50)


def test_a_certified_run_records_who_won() -> None:
    assert winners(check(passing_history())) == "C1"
    assert winners(check(failing_history())) is None


def test_the_shrunk_schedule_is_told_as_a_story() -> None:
    steps = [Step.parse("latency(app-db)"), Step.parse("race()@2"), Step.parse("restart_simcity(+12ms)")]
    lines = story(steps).splitlines()
    assert lines[0] == "  1. latency(app-db): every packet between the app and its database is delayed"
    assert lines[1] == "  2. race()@2: C1 and C2 send their bookings at the same instant on slot 2"
    assert lines[2].endswith("killed (SIGKILL) and started again, 12 ms after the burst before it")
    assert "both intents sent again at once (C1 and C2 together)" in lines[3]


def _failure(history: History) -> RunResult:
    return RunResult(Schedule((Step.parse("send_book(A)"),), "test", "standard"), history, check(history),
                     wall_s=1.0, crashes=0)


def test_the_story_says_where_it_broke_with_short_names() -> None:
    b = Builder()  # broke in the settle phase: both intents resent at once, both confirmed
    b.settle()
    b.book(Process.C1, 201, retry=True)
    b.book(Process.C2, 201, retry=True)
    b.snap(SlotState.BOOKED, row(Process.C1), row(Process.C2))
    text = story([Step.parse("latency(app-db)")], _failure(b.history()))
    assert "both intents sent again at once" in text
    last = text.splitlines()[-1]
    assert last.startswith("broke in the settle phase, at op ") and "DOUBLE_BOOKING" in last
    assert INTENT[Process.C1] not in text and "(C1's intent)" in last
    b = Builder()  # broke during the steps: the run stops there, no settle phase follows
    invoke = b.rec.invoke(Process.C1, Action.SEND_BOOK, Details(intent_id=INTENT[Process.C1], params=(("step", 1),)))
    b.answer(invoke, 201)
    b.snap(SlotState.FREE, row(Process.C1))
    text = story([Step.parse("send_book(A)")], _failure(b.history()))
    assert "settle" not in text
    assert text.splitlines()[-1].startswith("broke after step 1, at op 3 (the run stops there): FREE_WITH_CONFIRMED")


def test_every_schedule_action_has_words() -> None:
    for action in SCHEDULE_ACTIONS:
        hop = KINDS[action].hops[0] if action in KINDS else Hop.APP_DB if action is Action.HEAL else None
        step = Step(action, intent=IntentRef.B if action.takes_intent else None, hop=hop)
        words = describe_step(step)
        assert words and "{" not in words, action
