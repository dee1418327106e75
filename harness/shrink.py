"""`simcity shrink REPORT_DIR`: cut a failing schedule down to a short one that still fails.

Delta debugging (Zeller's ddmin) over the schedule's steps, bookings and faults alike, on ONE stack
reused across trials (the runner starts every trial from a fresh fixture and a healed network).
A candidate "still fails" when at least `need` of up to `tries` runs of it FAIL with the same
primary violation name as the recorded run: timing is not part of a schedule, so one schedule can
fail on one run and pass on the next; `need=1, tries=2` (the default) keeps a candidate that failed
once in two tries, and a run that already decided stops the tries early.

Before ddmin proper, the schedule is cut after the step where the recorded run broke (the runner
stops there, so later steps never mattered), if that prefix still fails. Every candidate is first
made valid: a fault applied again while the same kind is already active on that hop (Toxiproxy
refuses a second toxic of one name) and a heal of a hop with nothing active are dropped.

Bounded by a run budget and a time budget; when either runs out, the shortest failing schedule
found so far is the answer. A trial the stack could not carry out proves nothing either way (it
counts as not failing); three in a row end the shrink as infrastructure trouble.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.errors import InfrastructureError
from harness.generator import Schedule, Step
from harness.history import Action, History, Hop, OpKind, step_of
from harness.report.names import Names
from harness.runinfo import RunInfo
from harness.runner import RunConfig, RunResult, run_sc1
from harness.stacks.base import Stack

Steps = tuple[Step, ...]
MAX_INFRA_ERRORS_IN_A_ROW = 3
TrialCallback = Callable[[int, int, bool], None]  # (runs used, candidate length, still fails)


class _OutOfBudget(Exception):
    pass


class NotReproducedError(Exception):
    """The recorded failure did not come back: there is nothing to shrink."""


@dataclass
class ShrinkResult:
    original: Schedule
    shrunk: Schedule
    primary: str
    runs: int  # sc1 runs carried out
    trials: int  # distinct candidates tested
    wall_s: float
    stopped_by: str | None = None  # "run budget" / "time budget" when a budget ran out
    last_failure: RunResult | None = None  # a failing run of the shrunk schedule
    log: list[tuple[int, bool]] = field(default_factory=list)  # (length, failed) per trial


def canonical(steps: Sequence[Step]) -> Steps:
    """`steps` made runnable: no fault re-applied while active on its hop, no heal of a clean hop."""
    active: dict[Hop, set[Action]] = {hop: set() for hop in Hop}
    out = []
    for step in steps:
        if step.hop is not None:
            if step.action is Action.HEAL:
                if not active[step.hop]:
                    continue
                active[step.hop].clear()
            elif step.action in active[step.hop]:
                continue
            else:
                active[step.hop].add(step.action)
        out.append(step)
    return tuple(out)


def steps_until_break(history: History, first_index: int | None) -> int | None:
    """How many schedule steps the recorded run performed up to its first violation (None: all
    of them, or a history whose invokes do not name their step)."""
    if first_index is None:
        return None
    last = None
    for op in history.ops:
        if op.index > first_index:
            break
        if op.kind is not OpKind.INVOKE:
            continue
        if op.action is Action.SETTLE:
            return None  # it broke in the settle phase: every step ran
        last = step_of(op) or last
    return last


class Shrinker:
    def __init__(self, stack: Stack, info: RunInfo, primary: str, *, tries: int = 2, need: int = 1,
                 budget_runs: int = 100, budget_s: float = 600.0,
                 on_trial: TrialCallback | None = None) -> None:
        if not 1 <= need <= tries:
            raise ValueError("need 1 <= need <= tries")
        self.stack = stack
        self.info = info
        self.primary = primary
        self.tries = tries
        self.need = need
        self.budget_runs = budget_runs
        self.deadline = time.monotonic() + budget_s
        self.on_trial = on_trial
        self.runs = 0
        self.cache: dict[Steps, bool] = {}
        self.failures: dict[Steps, RunResult] = {}
        self.log: list[tuple[int, bool]] = []
        self.stopped_by: str | None = None
        self.best: Steps = ()
        self.infra_errors = 0  # in a row

    # -- the test ------------------------------------------------------------------------------

    def fails(self, steps: Steps) -> bool:
        """Does this candidate still fail with the recorded primary violation (k of m tries)?"""
        if steps in self.cache:
            return self.cache[steps]
        failed = 0
        for attempt in range(self.tries):
            if failed >= self.need or failed + (self.tries - attempt) < self.need:
                break  # decided either way
            if self.runs >= self.budget_runs:
                self.stopped_by = "run budget"
                raise _OutOfBudget
            if time.monotonic() > self.deadline:
                self.stopped_by = "time budget"
                raise _OutOfBudget
            self.runs += 1
            schedule = Schedule(steps, self.info.seed, self.info.schedule.mix)
            try:
                result = run_sc1(self.stack, RunConfig(seed=self.info.seed, iterations=len(steps),
                                                       profile=self.info.profile, schedule=schedule,
                                                       slots=self.info.slots))
            except InfrastructureError:
                # Unresolved, as ddmin calls it: this try proves nothing. Trouble that persists is
                # the stack's, not the candidate's: give up then.
                self.infra_errors += 1
                if self.infra_errors >= MAX_INFRA_ERRORS_IN_A_ROW:
                    raise
                continue
            self.infra_errors = 0
            primary = result.verdict.primary
            if primary is not None and primary.name.value == self.primary:
                failed += 1
                self.failures[steps] = result
        verdict = failed >= self.need
        self.cache[steps] = verdict
        self.log.append((len(steps), verdict))
        if self.on_trial:
            self.on_trial(self.runs, len(steps), verdict)
        return verdict

    def test(self, candidate: Sequence[Step]) -> Steps | None:
        """The canonical form of `candidate` if it still fails, else None."""
        steps = canonical(candidate)
        return steps if steps and self.fails(steps) else None

    # -- ddmin -----------------------------------------------------------------------------------

    def shrink(self, steps: Steps, prefix: int | None = None) -> Steps:
        """The shortest failing candidate found; NotReproducedError when `steps` itself (and its
        prefix up to the recorded break) did not fail again within the tries and budgets."""
        try:
            start = None
            if prefix is not None and 0 < prefix < len(steps):
                start = self.test(steps[:prefix])
            if start is None:
                start = self.test(steps)
        except _OutOfBudget:
            start = None
        if start is None:
            raise NotReproducedError(
                f"the recorded {self.primary} did not come back in {self.tries} tries of the schedule "
                f"({self.runs} runs); nothing to shrink")
        self.best = start
        try:
            self._ddmin(start)
        except _OutOfBudget:
            pass
        return self.best

    def _ddmin(self, current: Steps) -> None:
        n = 2
        while len(current) >= 2:
            chunks = _split(current, n)
            reduced = None
            for chunk in chunks:  # reduce to a subset
                reduced = self.test(chunk)
                if reduced is not None:
                    n = 2
                    break
            if reduced is None and n > 2:  # reduce to a complement
                for i in range(len(chunks)):
                    reduced = self.test(tuple(s for j, c in enumerate(chunks) if j != i for s in c))
                    if reduced is not None:
                        n = max(n - 1, 2)
                        break
            if reduced is not None:
                current = self.best = reduced
                continue
            if n >= len(current):
                break  # 1-minimal: no single step can go
            n = min(2 * n, len(current))


def _split(steps: Steps, n: int) -> list[Steps]:
    size, extra = divmod(len(steps), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(steps[start:end])
        start = end
    return [c for c in chunks if c]


def shrink_run(stack: Stack, info: RunInfo, primary: str, history: History | None, first_index: int | None,
               **options: object) -> ShrinkResult:
    started = time.monotonic()
    shrinker = Shrinker(stack, info, primary, **options)  # type: ignore[arg-type]
    prefix = steps_until_break(history, first_index) if history is not None else None
    best = shrinker.shrink(info.schedule.steps, prefix)
    shrunk = Schedule(best, info.seed, info.profile)
    return ShrinkResult(info.schedule, shrunk, primary, shrinker.runs, len(shrinker.cache),
                        time.monotonic() - started, shrinker.stopped_by, shrinker.failures.get(best),
                        shrinker.log)


# --- the shrunk schedule as a story ----------------------------------------------------------------

_HOP_WORDS = {Hop.CLIENT_APP: "between the customers and the app", Hop.APP_DB: "between the app and its database"}
# What each step does, in words; {who} the customer, {hop} the hop, {slot} and {aim} when given.
_STEP_WORDS = {
    Action.SEND_BOOK: "{who} sends its booking{slot}",
    Action.RETRY_BOOK: "{who} resends the same booking (same intent){slot}",
    Action.RACE: "C1 and C2 send their bookings at the same instant{slot}",
    Action.DUPLICATE: "{who}'s booking is delivered three times at once{slot}",
    Action.REORDER: "{who}'s booking is held on the wire while a resend of it overtakes it{slot}",
    Action.RESTART_SIMCITY: "the app is killed (SIGKILL) and started again{aim}",
    Action.NO_OP: "nothing happens for a moment",
    Action.HEAL: "the faults {hop} are lifted",
    Action.LATENCY: "every packet {hop} is delayed{aim}",
    Action.JITTER: "packets {hop} are delayed by varying amounts{aim}",
    Action.DROPS: "connections {hop} are dropped or reset{aim}",
    Action.TIMEOUTS: "connections {hop} hang until they time out{aim}",
    Action.PARTITION: "nothing gets through {hop} (a partition){aim}",
    Action.CUT: "every live request {hop} is reset just as its answer comes back{aim}",
    Action.STALL: "the database stalls (0.5 to 2.5 s per query, for 2.5 s){aim}",
}


def describe_step(step: Step) -> str:
    """One schedule step in words."""
    return _STEP_WORDS[step.action].format(
        who=step.intent.process.value if step.intent else "",
        hop=_HOP_WORDS[step.hop] if step.hop else "",
        slot=f" on slot {step.slot}" if step.slot != 1 else "",
        aim=f", {step.aim_ms} ms after the burst before it" if step.aim_ms is not None else "")


SETTLE_WORDS = ("then the settle phase: every fault healed, the app healthy, and both intents sent again "
                "at once (C1 and C2 together), until each has a definite answer; then the final read")


def story(steps: Sequence[Step], failure: RunResult | None = None) -> str:
    """The shrunk schedule as a person reads it: each step with what it does, the settle phase that
    follows the steps (often where the damage is done: both intents at once), and, from a failing
    run of it, what broke and where (a run stops at its first violation)."""
    lines = [f"{n:>3}. {step}: {describe_step(step)}" for n, step in enumerate(steps, 1)]
    primary = failure.verdict.primary if failure is not None else None
    if failure is None or primary is None:
        return "\n".join([*lines, f"     {SETTLE_WORDS}"])
    history = failure.history
    what = f"{primary.name.value}: {Names(history).plain(primary.message)}"
    step = steps_until_break(history, primary.index)
    if step is None:  # it broke while settling
        return "\n".join([*lines, f"     {SETTLE_WORDS}", f"broke in the settle phase, at op {primary.index}: {what}"])
    return "\n".join([*lines, f"broke after step {step}, at op {primary.index} (the run stops there): {what}"])
