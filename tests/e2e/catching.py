"""Shared by the end-to-end SC-1 tests of every stack kind."""

from __future__ import annotations

from harness.contract import CrashCheck
from harness.expectations import EXPECTED_CATCH
from harness.history import Action, Hop
from harness.nemesis import Nemesis, load_sources
from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.base import Stack, wait_healthy


def first_catch(stack: Stack, seeds: int, iterations: int) -> tuple[str, RunResult] | None:
    """The first of seeds sc1-1..sc1-N whose run FAILs, with that run; None if all pass."""
    for n in range(1, seeds + 1):
        result = run_sc1(stack, RunConfig(seed=f"sc1-{n}", iterations=iterations))
        if not result.verdict.passed:
            return f"sc1-{n}", result
    return None


def assert_caught_for_the_right_invariant(stack: Stack, strategy: str, seeds: int, iterations: int) -> None:
    """`strategy` FAILs on one of the first `seeds` seeds, headlined by a violation that is the
    right catch for its bug (harness.expectations)."""
    caught = first_catch(stack, seeds, iterations)
    assert caught is not None, f"{strategy} passed {seeds} seeds of {iterations} iterations"
    seed, result = caught
    primary = result.verdict.primary
    assert primary is not None
    assert primary.name in EXPECTED_CATCH[strategy], (
        f"{strategy} on {seed}: caught as {primary.name}, expected one of {sorted(EXPECTED_CATCH[strategy])}")


def assert_crashes_under_a_stall_are_watched(stack: Stack) -> None:
    """On a stack that watches its crashes, a crash while app-db is stalled waits until the new app
    listens, asks /health for no boot id (its answer would wait on the app's own 1 s database
    ping), twice in a row (the second with the boot id unknown), and the app that comes back once
    healed is a new start."""
    before = stack.boot_id()
    nemesis = Nemesis(stack, load_sources())
    try:
        nemesis.note_boot_id()
        nemesis.inject(Action.STALL, Hop.APP_DB)
        assert nemesis.database_cut_off()
        for _ in range(2):
            _, check = nemesis.crash()
            assert check is CrashCheck.WATCHED
            assert stack.restart_answer is None  # no answer of /health was waited for
    finally:
        nemesis.heal_all()
        nemesis.close()
    health_url = stack.app_health_url()
    assert health_url is not None
    wait_healthy(health_url)
    after = stack.boot_id()
    assert before is not None and after is not None and after != before
