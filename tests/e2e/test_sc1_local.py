"""SC-1 end to end on the embedded local stack: the correct app passes, every mutant is caught
for the right invariant. Real PostgreSQL, real proxies, real app processes, real SIGKILLs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.checker import check
from harness.expectations import MUTANTS
from harness.history import Action
from harness.runner import RunConfig, run_sc1
from harness.stacks.local import LocalStack
from tests.e2e.catching import assert_caught_for_the_right_invariant

ITERATIONS = 50
ATOMIC_SEEDS = [f"sc1-{n}" for n in range(1, 11)]
SEEDS_PER_MUTANT = 6


@pytest.fixture(scope="module")
def atomic_stack() -> Iterator[LocalStack]:
    with LocalStack({"BOOKING_STRATEGY": "atomic"}) as stack:
        yield stack


@pytest.mark.parametrize("seed", ATOMIC_SEEDS)
def test_atomic_passes(atomic_stack: LocalStack, seed: str) -> None:
    result = run_sc1(atomic_stack, RunConfig(seed=seed, iterations=ITERATIONS))
    assert result.verdict.passed, [str(v) for v in result.verdict.violations]
    assert result.verdict.winner is not None and result.verdict.final_state is not None


@pytest.mark.parametrize("strategy", MUTANTS)
def test_every_mutant_is_caught_for_the_right_invariant(strategy: str) -> None:
    with LocalStack({"BOOKING_STRATEGY": strategy}) as stack:
        assert_caught_for_the_right_invariant(stack, strategy, SEEDS_PER_MUTANT, ITERATIONS)


def test_progress_goes_on_through_the_settle_phase(atomic_stack: LocalStack) -> None:
    seen: list[tuple[int, int, str]] = []
    result = run_sc1(atomic_stack, RunConfig(seed="sc1-1", iterations=10),
                     lambda done, total, what: seen.append((done, total, what)))
    assert result.verdict.passed
    steps = [each for each in seen if not each[2].startswith("settle: ")]
    settle = seen[len(steps):]
    assert [done for done, _, _ in steps] == list(range(1, 11))
    assert settle[0][2] == "settle: healing every fault" and settle[-1][2] == "settle: reading the final state"
    assert any(what.startswith("settle: resending 2 intent(s)") for _, _, what in settle)
    assert all(done == total == 10 for done, total, _ in settle)


@pytest.mark.parametrize("strategy", ["atomic", "racy"])
def test_a_runs_verdict_is_the_verdict_of_its_recorded_history(strategy: str) -> None:
    # The runner judges every op as it is recorded; `simcity check` and replays judge the saved
    # history in one pass. A run that broke stops before settling: judged without its end.
    verdicts = []
    with LocalStack({"BOOKING_STRATEGY": strategy}) as stack:
        for seed in ("sc1-1", "sc1-2", "sc1-3"):
            result = run_sc1(stack, RunConfig(seed=seed, iterations=30, slots=4))
            settled = any(op.action is Action.SETTLE for op in result.history.ops)
            assert result.verdict == check(result.history, terminal=settled), seed
            verdicts.append(result.verdict)
    if strategy == "atomic":
        assert all(v.passed for v in verdicts), [v.violations for v in verdicts]
    else:
        assert any(v.failed for v in verdicts), "racy passed 3 seeds of 30 iterations x 4 slots"
