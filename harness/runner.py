"""One SC-1 run: steady state, the schedule (client + nemesis), a snapshot after every action,
the settle phase, and the checker's verdict. Faults are healed in `finally`, whatever happened.

The runner owns timing only; what to do comes from the generator, how from the client and the
nemesis, and whether it was legal from the checker, joined by the one recorded history.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from harness.checker import Checker, Validity, Verdict, check
from harness.client import AppClient, BookingReply, PreparedBooking, TruthReader, send_skew_us
from harness.contract import CRASH_CHECK_PARAM, classify_booking_answer
from harness.errors import InfrastructureError, SimCityError, StopSignal, UsageError
from harness.faults import KINDS, FaultPlan, plan_for_profile
from harness.generator import Schedule, Step, mix_named
from harness.history import Action, Details, History, Intent, Op, OpKind, Process
from harness.recorder import Recorder
from harness.nemesis import Nemesis, load_sources
from harness.stacks._wait import PROBE_PAUSE_S
from harness.stacks.base import Stack

ProgressCallback = Callable[[int, int, str], None]

# Reads travelling at once, at most: a REST 100 ms away keeps about 4 in flight, one sent every
# 30 ms step pause.
MAX_READS_IN_FLIGHT = 8

# duplicate(X) delivers one intent this many times at once.
DUPLICATE_COPIES = 3
# How long reorder(X) holds its first request's last bytes on the wire: long enough for the retry
# released right behind it to be served first, far below any client timeout.
REORDER_HOLD_S = 0.05


@dataclass(frozen=True)
class RunConfig:
    seed: str = "sc1-1"
    iterations: int = 50
    profile: str = "default"  # the fault profile (harness.faults.plan_for_profile)
    mix: str | None = None  # the action mix; None: the one the profile implies
    slots: int = 1  # independent SC-1 instances attacked in one run, each with its own fixture
    # Pause after each action before its snapshot: long enough for fire-and-forget requests to
    # reach the app and overlap, short enough for 50 iterations in a few seconds.
    step_pause_s: float = 0.03
    request_timeout_s: float = 2.0
    settle_attempts: int = 10
    settle_timeout_s: float = 30.0
    stop_at_first_violation: bool = True
    schedule: Schedule | None = None  # an explicit schedule (replay, shrink) instead of the seed's


@dataclass(repr=False)
class RunResult:
    schedule: Schedule
    history: History
    verdict: Verdict
    wall_s: float
    crashes: int
    restart_seconds: list[float] = field(default_factory=list)
    # CPU seconds of the harness process itself: its cost, with every wait (crashes, sleeps,
    # the app's and REST's answers) excluded.
    harness_cpu_s: float = 0.0

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run builds the repr of its finished main task (this result
        # inside) each time it sets or restores its SIGINT handler, and a dataclass repr of the
        # whole history cost ~6 ms a time at 50 iterations, growing with the run.
        return (f"RunResult({self.verdict.valid.value}, {len(self.history.ops)} ops, {self.crashes} crashes, "
                f"{self.wall_s:.1f} s)")


def plan_schedule(config: RunConfig) -> tuple[Schedule, FaultPlan]:
    """What a run will do: its schedule (the config's own, or drawn from the seed) and the fault
    plan behind its fault steps. Every mistake is a UsageError, raised before anything starts."""
    plan = plan_for_profile(config.profile, config.mix)
    if config.slots < 1:
        raise UsageError(f"--slots must be >= 1, got {config.slots}")
    if config.schedule is not None:
        if config.schedule.slots > config.slots:
            raise UsageError(f"the schedule books slot {config.schedule.slots}, and the run has "
                             f"{config.slots} (give --slots {config.schedule.slots})")
        return config.schedule, plan
    mix = mix_named(plan.mix)
    if plan.only is not None:
        mix = mix.only(plan.only)
    return Schedule.generate(config.seed, config.iterations, mix, slots=config.slots), plan


class ReadsInFlight:
    """Reads sent without being waited for, at most `limit` at once: past that, none is started,
    so a slow REST sets the pace, not the load. A read that failed raises at `drain` (REST
    unreachable: infrastructure trouble)."""

    def __init__(self, limit: int = MAX_READS_IN_FLIGHT) -> None:
        self._limit = limit
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, read: Callable[[], Awaitable[None]]) -> bool:
        """Start `read()` unless `limit` reads are in flight; whether it started. It never waits
        and never raises, so a timer's callback may call it: a read that failed raises at
        `drain`."""
        if self.full():
            return False
        self._tasks.add(asyncio.create_task(read()))
        return True

    def full(self) -> bool:
        return len(self._tasks) >= self._limit

    async def drain(self) -> None:
        """Until every read sent has its answer recorded."""
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._raise_failed()

    def _raise_failed(self) -> None:
        for task in [t for t in self._tasks if t.done()]:
            self._tasks.discard(task)
            task.result()

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancel the reads still in flight (the run stopped); the tasks, to be awaited."""
        for task in self._tasks:
            task.cancel()
        tasks, self._tasks = list(self._tasks), set()
        return tasks


class Run:
    """The state of one run in progress: clients, nemesis, recorder, in-flight requests."""

    def __init__(self, stack: Stack, config: RunConfig, progress: ProgressCallback | None = None) -> None:
        self.stack = stack
        self.config = config
        self.progress = progress
        self.schedule, plan = plan_schedule(config)
        crashes = sum(step.action is Action.RESTART_SIMCITY for step in self.schedule.steps)
        if crashes and not stack.can_crash:
            # Said before anything runs: a run that stops half-way at its first crash loses it all.
            raise UsageError(f"the schedule crashes the app {crashes} times, and this stack cannot: "
                             "give --restart-cmd (or --profile calm, or --steps without restart_simcity())")
        self.sources = load_sources(plan.sources)
        self.inflight: set[asyncio.Task[BookingReply]] = set()
        self.sent: set[str] = set()  # intent ids sent at least once
        self.last_release = 0.0  # monotonic time the last burst left: where aimed steps aim from
        self.transient: set[asyncio.Task[None]] = set()  # transient faults waiting to lift themselves
        self.reads = ReadsInFlight()
        self.recorder: Recorder | None = None  # from the fixture on: what `partial` saves
        self.nemesis: Nemesis | None = None  # while executing: it counts the crashes
        self._started = self._cpu_started = 0.0

    def _result(self, history: History, verdict: Verdict) -> RunResult:
        crashes, restarts = (self.nemesis.crashes, self.nemesis.restart_seconds) if self.nemesis else (0, [])
        return RunResult(self.schedule, history, verdict, time.monotonic() - self._started, crashes, restarts,
                         time.process_time() - self._cpu_started)

    def partial(self, reason: str) -> RunResult | None:
        """The run so far, for a run that could not finish (infrastructure trouble, Ctrl-C): its
        history and the verdict so far. A violation already seen stays a FAIL (a finding about the
        app, whatever stopped the run); otherwise the verdict is INCONCLUSIVE, with `reason`."""
        if self.recorder is None:
            return None
        history = self.recorder.history()
        # Judged afresh from what was recorded: an interrupt may have struck inside the run's
        # checker, half-way through an op.
        verdict = check(history, terminal=False)
        if verdict.failed:
            verdict = replace(verdict, reason=f"the run stopped early: {reason}")
        else:
            verdict = replace(verdict, valid=Validity.INCONCLUSIVE, reason=reason)
        return self._result(history, verdict)

    async def read(self, recorder: Recorder, truth: TruthReader) -> None:
        """One snapshot read of every slot in ONE request, recorded as an interval: invoked before
        the request is sent, completed when its answer is parsed (CONTRACT.md section 3)."""
        invoke = recorder.read_invoke()
        try:
            snapshots = await truth.snapshots([f.slot_id for f in recorder.fixtures])
        except SimCityError as exc:
            recorder.read_failed(invoke, str(exc))
            raise
        recorder.read_ok(invoke, *snapshots)

    async def execute(self) -> RunResult:
        self._started, self._cpu_started = time.monotonic(), time.process_time()
        endpoints = self.stack.endpoints
        app = AppClient(endpoints.app_url, timeout_s=self.config.request_timeout_s)
        truth = TruthReader(endpoints.rest_url, endpoints.service_key)
        self.nemesis = nemesis = Nemesis(self.stack, self.sources)
        try:
            # Steady state: a clean network and a healthy app (a previous run may have left it
            # restarting or reconnecting to its database).
            await asyncio.to_thread(nemesis.heal_all)
            await self.wait_healthy(app, "before the run")
            await asyncio.to_thread(nemesis.note_boot_id)
            fixtures = tuple([await app.create_fixture(self.config.seed) for _ in range(self.config.slots)])
            # The checker judges each op as it is recorded, so a verdict after every step costs
            # the step's ops only, not the whole history again.
            checker = Checker(fixtures)
            self.recorder = recorder = Recorder(fixtures, on_record=checker.observe)
            await self.read(recorder, truth)
            verdict: Verdict | None = None
            steps = self.schedule.steps
            total = len(steps)
            strike: asyncio.Task[None] | None = None  # an aimed step under way
            for number, step in enumerate(steps, 1):
                if strike is not None:  # this step was aimed: it started with the burst before it
                    await strike
                    strike = None
                else:
                    await self.perform(step, number, recorder, fixtures[step.slot - 1].intent_of, app, nemesis)
                if number < total and steps[number].aim_ms is not None:
                    # The next step strikes the requests this one released, `aim_ms` after their
                    # release, while this step's own pause and read go on as usual: the read keeps
                    # probing the window, the strike lands in it.
                    strike = asyncio.create_task(self._aimed(steps[number], number + 1, recorder, nemesis))
                    self.transient.add(strike)
                await asyncio.sleep(self.config.step_pause_s)
                await self.step_read(recorder, truth)
                if self.progress:
                    self.progress(number, total, str(step))
                if self.config.stop_at_first_violation and checker.violated():
                    verdict = await self.stop_at_violation(strike, recorder, truth, checker)
                    break
            if verdict is None:
                await self.reads.drain()  # the settle phase's read must be the last one
                if self.config.stop_at_first_violation and checker.violated():  # a late read saw it
                    verdict = await self.stop_at_violation(None, recorder, truth, checker)
            if verdict is None:
                await self.settle(recorder, tuple(i for f in fixtures for i in f.intents), app, truth, nemesis)
                verdict = checker.verdict(terminal=True)
            return self._result(recorder.history(), verdict)
        finally:
            for task in (*self.inflight, *self.transient):
                task.cancel()
            await asyncio.gather(*self.inflight, *self.transient, *self.reads.cancel(), return_exceptions=True)
            try:
                await asyncio.to_thread(nemesis.heal_all)
            finally:
                nemesis.close()
                await truth.aclose()

    async def step_read(self, recorder: Recorder, truth: TruthReader) -> None:
        """The read after a step, waited for: the next step comes once the truth was looked at.
        While it travels, another read leaves every step's pause (not waited for), so the reads
        look at the slots one pause apart however far away REST is. One read per step spaced them
        by REST's round trip as well (230 ms with REST 100 ms away), and a mutant's 50 ms window
        fell between two: split_tx was caught in 3 of 8 seeds there, ack_before_commit in none.
        The checker takes reads as intervals (CONTRACT.md section 3): overlapping ones are judged
        as they are. The extra reads leave from a timer rather than from a task racing the step's
        read: the step's read is awaited as it is, which costs a paced step about 0.06 ms less CPU
        than a task and asyncio.wait (measured here, in the VM's cold wakes)."""
        stop_reading = self._read_every_pause(recorder, truth)
        try:
            await self.read(recorder, truth)
        finally:
            stop_reading()

    def _read_every_pause(self, recorder: Recorder, truth: TruthReader) -> Callable[[], None]:
        """Start a read every step's pause (not waited for; none while 8 are in flight) until the
        function returned is called. With no pause (a benchmark's back-to-back run) none is sent:
        the step reads and the final read are all there is."""
        pause = self.config.step_pause_s
        if pause <= 0:
            return lambda: None
        loop = asyncio.get_running_loop()

        def read_again() -> None:
            nonlocal timer
            self.reads.start(lambda: self.read(recorder, truth))
            timer = loop.call_later(pause, read_again)

        timer = loop.call_later(pause, read_again)
        return lambda: timer.cancel()

    async def stop_at_violation(self, strike: asyncio.Task[None] | None, recorder: Recorder, truth: TruthReader,
                                checker: Checker) -> Verdict:
        """One more look at the truth once the requests and reads in flight have landed: the damage
        behind what broke (two clients told "confirmed" is the symptom; the forensic snapshot shows
        the rows)."""
        if strike is not None:
            await strike
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=self.config.request_timeout_s)
        await self.reads.drain()
        await self.read(recorder, truth)
        return checker.verdict(terminal=False)

    def demand(self, step: Step, intent_of: Callable[[Process], Intent]) -> list[tuple[Intent, Action]]:
        """The booking requests a demand step releases together, each as the history names it: a
        send for an intent's first request, a retry (same intent id) after that."""
        def first_or_retry(intent: Intent) -> tuple[Intent, Action]:
            return intent, Action.RETRY_BOOK if intent.intent_id in self.sent else Action.SEND_BOOK

        if step.action is Action.RACE:
            return [first_or_retry(intent_of(p)) for p in (Process.C1, Process.C2)]
        assert step.intent is not None
        intent = intent_of(step.intent.process)
        if step.action in (Action.SEND_BOOK, Action.RETRY_BOOK):
            return [(intent, step.action)]
        copies = DUPLICATE_COPIES if step.action is Action.DUPLICATE else 2
        return [first_or_retry(intent)] + [(intent, Action.RETRY_BOOK)] * (copies - 1)

    async def release(self, recorder: Recorder, app: AppClient, requests: list[tuple[Intent, Action]], *,
                      step: int, hold_first_s: float = 0.0) -> list[asyncio.Task[BookingReply]]:
        """Open a connection per request, record each invoke, then release them all in the same
        instant (the barrier); fire and forget: each answer is recorded whenever it comes, or
        never (UNKNOWN). With `hold_first_s` the first request's body is held on the wire that
        long, so the requests after it overtake it."""
        prepared = await app.prepare([intent for intent, _ in requests])
        params = (("step", step), ("burst", len(requests)))
        invokes = [recorder.invoke(i.process, action, Details(intent_id=i.intent_id, params=params))
                   for i, action in requests]
        for n, booking in enumerate(prepared):
            booking.release(hold_s=hold_first_s if n == 0 else 0.0)
        skew = send_skew_us(prepared)
        self.last_release = min((p.sent_at for p in prepared if p.sent_at is not None), default=time.monotonic())
        self.sent.update(intent.intent_id for intent, _ in requests)
        tasks = []
        for invoke, booking in zip(invokes, prepared):
            task = asyncio.create_task(self._answered(recorder, invoke, booking, skew))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
            tasks.append(task)
        return tasks

    async def perform(self, step: Step, number: int, recorder: Recorder, intent_of: Callable[[Process], Intent],
                      app: AppClient, nemesis: Nemesis) -> None:
        if step.action.is_demand:
            hold = REORDER_HOLD_S if step.action is Action.REORDER else 0.0
            await self.release(recorder, app, self.demand(step, intent_of), step=number, hold_first_s=hold)
            return
        await self.perform_nemesis(step, number, recorder, nemesis)

    async def perform_nemesis(self, step: Step, number: int, recorder: Recorder, nemesis: Nemesis) -> None:
        """A step that sends no booking: a no-op, a crash, a fault or a heal."""
        if step.action is Action.NO_OP:
            recorder.complete(recorder.invoke(Process.NEMESIS, Action.NO_OP, Details(params=(("step", number),))),
                              OpKind.OK)
            return
        aim = (("aim_ms", step.aim_ms),) if step.aim_ms is not None else ()
        invoke = recorder.invoke(Process.NEMESIS, step.action, Details(hop=step.hop, params=(("step", number), *aim)))
        if step.action is Action.RESTART_SIMCITY:
            took, check = await asyncio.to_thread(nemesis.crash)
            recorder.complete(invoke, OpKind.OK, Details(params=(("restart_ms", round(took * 1000)),
                                                                 (CRASH_CHECK_PARAM, check.value))))
        elif step.action is Action.HEAL:
            await asyncio.to_thread(nemesis.heal, step.hop)
            recorder.complete(invoke, OpKind.OK, Details(hop=step.hop))
        else:
            assert step.hop is not None
            params, token = await asyncio.to_thread(nemesis.inject, step.action, step.hop)
            lasts_s = KINDS[step.action].lasts_s
            if lasts_s is not None and token is not None:
                params += (("lasts_ms", round(lasts_s * 1000)),)
                self.transient.add(asyncio.create_task(self._lift_later(nemesis, token, lasts_s)))
            recorder.complete(invoke, OpKind.OK, Details(hop=step.hop, params=params))

    async def _aimed(self, step: Step, number: int, recorder: Recorder, nemesis: Nemesis) -> None:
        assert step.aim_ms is not None
        await asyncio.sleep(max(0.0, self.last_release + step.aim_ms / 1000 - time.monotonic()))
        await self.perform_nemesis(step, number, recorder, nemesis)

    @staticmethod
    async def _lift_later(nemesis: Nemesis, token: int, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await asyncio.to_thread(nemesis.lift, token)

    async def _answered(self, recorder: Recorder, invoke: Op, booking: PreparedBooking, skew_us: int) -> BookingReply:
        reply = await booking.answer()
        recorder.booking_answer(invoke, status=reply.status, body=reply.body, latency_ms=reply.latency_ms,
                                error=reply.error, params=(("skew_us", skew_us),))
        return reply

    async def wait_healthy(self, app: AppClient, when: str) -> None:
        deadline = time.monotonic() + self.config.settle_timeout_s
        while not await app.healthy():
            if time.monotonic() > deadline:
                raise InfrastructureError(f"the app was not healthy within {self.config.settle_timeout_s:.0f} s {when}")
            await asyncio.sleep(PROBE_PAUSE_S)

    async def _try_healthy(self, app: AppClient, when: str) -> str | None:
        """Wait for health; why not, instead of raising: an app that stays unhealthy while
        settling gets its intents resent all the same, and answers that stay unknown make the
        verdict INCONCLUSIVE, never a product FAIL."""
        try:
            await self.wait_healthy(app, when)
        except InfrastructureError as exc:
            return str(exc)
        return None

    async def settle(self, recorder: Recorder, intents: tuple[Intent, ...], app: AppClient,
                     truth: TruthReader, nemesis: Nemesis) -> None:
        """Heal, wait healthy, let in-flight answers land, then resend both intents until each has
        a definite answer (bounded), and take the final snapshot. Reads go on at the steps' pace
        all the while: requests still in flight, and the resends, are decided in this phase too,
        and a window they open (a slot booked with no booking yet, an answer before its commit)
        must be looked into as during the steps."""
        settle = recorder.invoke(Process.CHECKER, Action.SETTLE)
        stop_reading = self._read_every_pause(recorder, truth)
        try:
            self._settling("healing every fault")
            await asyncio.to_thread(nemesis.heal_all)
            self._settling("waiting for the app to be healthy")
            unhealthy = await self._try_healthy(app, "after healing")
            if self.inflight:
                self._settling(f"waiting for {len(self.inflight)} answer(s) in flight")
                await asyncio.wait(set(self.inflight), timeout=self.config.request_timeout_s + 1.0)
            # Both customers resend together, as real ones would: until each has a definite answer.
            pending = list(intents)
            for attempt in range(self.config.settle_attempts):
                self._settling(f"resending {len(pending)} intent(s) until answered, try {attempt + 1}")
                replies = await asyncio.gather(*await self.release(
                    recorder, app, [(i, Action.RETRY_BOOK) for i in pending], step=0))
                pending = [i for i, reply in zip(pending, replies)
                           if not classify_booking_answer(reply.status, reply.body).is_definite]
                if not pending:
                    break
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
        finally:
            stop_reading()
        self._settling("reading the final state")
        await self.reads.drain()  # a read that failed raises here: REST is unreachable
        await self.read(recorder, truth)
        recorder.complete(settle, OpKind.OK, Details(error=unhealthy))

    def _settling(self, what: str) -> None:
        """Progress through the settle phase: every step is done, and it can take seconds."""
        if self.progress:
            total = len(self.schedule.steps)
            self.progress(total, total, f"settle: {what}")


def stop_reason(exc: BaseException) -> str:
    """One line on what stopped a run, for the report it leaves."""
    if isinstance(exc, StopSignal):
        return f"stopped by {signal.Signals(exc.signum).name} before the run finished"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C) before the run finished"
    return f"infrastructure trouble: {exc}"


def run_sc1(stack: Stack, config: RunConfig, progress: ProgressCallback | None = None, *,
            on_stop: Callable[[RunResult], None] | None = None) -> RunResult:
    """Run SC-1 once against a started stack. A run stopped by infrastructure trouble or Ctrl-C
    hands what it recorded so far to `on_stop` (to be saved: evidence is never lost), then the
    exception goes on."""
    run = Run(stack, config, progress)
    try:
        return asyncio.run(run.execute())
    except (SimCityError, KeyboardInterrupt) as exc:
        partial = run.partial(stop_reason(exc))
        if partial is not None and on_stop is not None:
            on_stop(partial)
        raise
