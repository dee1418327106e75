"""Shared by the end-to-end SC-1 tests of every stack kind."""

from __future__ import annotations

from harness.expectations import EXPECTED_CATCH
from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.base import Stack


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
