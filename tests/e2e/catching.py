"""Shared by the end-to-end SC-1 tests of every stack kind."""

from __future__ import annotations

from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.base import Stack


def first_catch(stack: Stack, seeds: int, iterations: int) -> tuple[str, RunResult] | None:
    """The first of seeds sc1-1..sc1-N whose run FAILs, with that run; None if all pass."""
    for n in range(1, seeds + 1):
        result = run_sc1(stack, RunConfig(seed=f"sc1-{n}", iterations=iterations))
        if not result.verdict.passed:
            return f"sc1-{n}", result
    return None
