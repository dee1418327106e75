"""Property tests: any history of an atomic booking app passes; a racy app is caught; the checker
fed op by op, as a run feeds it, gives at every prefix the verdict `check()` gives of the prefix.

A small in-memory model of the contract's app (one per slot) decides intents first-come-first-
served; Hypothesis draws the interleaving of sends, decisions, lost answers, crashes, faults and
reads (points and intervals), on one slot or several.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from hypothesis import given, settings, strategies as st

from harness import (
    Action, BookingRow, BookingStatus, Details, Fixture, History, Hop, Op, OpKind, Process, Recorder,
    SlotSnapshot, SlotState, ViolationName, check, from_jsonl, to_jsonl,
)
from harness.checker import Checker
from tests.harness.builders import STRANGER, slot_booking_id, slot_fixture

CLIENTS = (Process.C1, Process.C2)


def events(slots: int = 1, *, tampered: bool = False) -> st.SearchStrategy[list[tuple]]:
    """A run's script; `tampered` adds what no correct app does: a booking row that comes and
    goes, and a booking call, of an intent no fixture issued."""
    slot = st.integers(0, slots - 1)
    send = st.tuples(st.just("send"), st.sampled_from(CLIENTS), slot)
    # Decide the oldest in-flight call of a client; the bool says whether its answer arrives.
    decide = st.tuples(st.just("decide"), st.sampled_from(CLIENTS), slot, st.booleans())
    legal = [
        send, send, decide, decide,  # drawn twice as often: without answers little happens
        st.tuples(st.just("snapshot")),
        st.tuples(st.just("crash")),
        st.tuples(st.just("fault")),
        st.tuples(st.just("snapshot")),
        # A read whose interval spans the events until it closes; one that gets no answer.
        st.tuples(st.just("read_open")),
        st.tuples(st.just("read_close")),
        st.tuples(st.just("read_lost")),
    ]
    strange = [st.tuples(st.just("stray_row"), slot), st.tuples(st.just("stranger_call"))]
    # A tampered script is drawn long: the faults of a model app show after several events.
    return st.lists(st.one_of(*legal, *(strange if tampered else [])), min_size=20 if tampered else 0, max_size=50)


@dataclass
class App:
    """The contract's app on one slot. `atomic=False` never rejects a fresh intent: the app whose
    check and claim of the slot race, and every racer wins. `durable=False` loses every booking
    in a crash, acknowledged or not, and books anew under new booking ids."""

    fixture: Fixture
    atomic: bool = True
    durable: bool = True
    rows: dict[Process, BookingStatus] = field(default_factory=dict)
    stray: bool = False  # a confirmed booking of an intent no fixture issued is on the slot
    lives: int = 0  # crashes that lost the bookings: a part of every later booking id

    def decide(self, p: Process) -> int:
        if p in self.rows:
            return 200 if self.rows[p] is BookingStatus.CONFIRMED else 409
        holder = any(s is BookingStatus.CONFIRMED for s in self.rows.values())
        if holder and self.atomic:
            self.rows[p] = BookingStatus.REJECTED
            return 409
        self.rows[p] = BookingStatus.CONFIRMED
        return 201

    def crash(self) -> None:
        if not self.durable:
            self.rows.clear()
            self.lives += 1

    def row(self, p: Process, status: BookingStatus) -> BookingRow:
        intent = self.fixture.intent_of(p)
        booking_id = slot_booking_id(self.fixture, p)
        booking_id = booking_id[:-4] + f"{self.lives % 100:02d}" + booking_id[-2:]
        return BookingRow(booking_id, intent.intent_id, self.fixture.slot_id,
                          intent.customer_id, status)

    def body(self, p: Process) -> dict[str, object]:
        """The answer body of p's booking, as the contract's app sends it."""
        row = self.row(p, self.rows[p])
        booking = {"id": row.id, "intent_id": row.intent_id, "slot_id": row.slot_id,
                   "customer_id": row.customer_id, "status": row.status.value}
        return {"booking": booking} if row.status is BookingStatus.CONFIRMED else {"error": "slot_taken",
                                                                                 "booking": booking}

    def snapshot(self) -> SlotSnapshot:
        rows = tuple(self.row(p, s) for p, s in sorted(self.rows.items()))
        if self.stray:
            rows += (replace(self.row(Process.C1, BookingStatus.CONFIRMED), id=STRANGER, intent_id=STRANGER),)
        booked = any(r.status is BookingStatus.CONFIRMED for r in rows)
        return SlotSnapshot(self.fixture.slot_id, self.fixture.vendor_id,
                            SlotState.BOOKED if booked else SlotState.FREE, rows)


def apps(slots: int, *, atomic: bool = True) -> tuple[App, ...]:
    return tuple(App(slot_fixture(k), atomic=atomic) for k in range(1, slots + 1))


def run(apps: tuple[App, ...], script: list[tuple]) -> History:
    """The history of `script` against the model apps (one per slot), then a settle phase."""
    ticks = itertools.count()
    rec = Recorder(tuple(app.fixture for app in apps), clock=lambda: next(ticks) / 10)
    in_flight: dict[tuple[int, Process], list[Op]] = {(k, p): [] for k in range(len(apps)) for p in CLIENTS}
    sent: set[tuple[int, Process]] = set()
    open_read: Op | None = None

    def send(k: int, p: Process) -> Op:
        action = Action.RETRY_BOOK if (k, p) in sent else Action.SEND_BOOK
        sent.add((k, p))
        return rec.invoke(p, action, Details(intent_id=apps[k].fixture.intent_of(p).intent_id))

    def decide(k: int, invoke: Op, arrives: bool) -> None:
        status = apps[k].decide(invoke.process)
        if arrives:
            rec.booking_answer(invoke, status=status, body=apps[k].body(invoke.process), latency_ms=3.0)
        else:
            rec.booking_answer(invoke, status=None, error="timed out")

    def read() -> Op:
        return rec.read_ok(rec.read_invoke(), *(app.snapshot() for app in apps))

    for event in script:
        kind = event[0]
        if kind == "send":
            in_flight[event[2], event[1]].append(send(event[2], event[1]))
        elif kind == "decide" and in_flight[event[2], event[1]]:
            decide(event[2], in_flight[event[2], event[1]].pop(0), event[3])
        elif kind == "crash":
            # In-flight calls die with the app, undecided and never answered: unknown outcome.
            in_flight = {key: [] for key in in_flight}
            for app in apps:
                app.crash()
            rec.complete(rec.invoke(Process.NEMESIS, Action.RESTART_SIMCITY), OpKind.OK)
        elif kind == "fault":
            rec.complete(rec.invoke(Process.NEMESIS, Action.LATENCY, Details(hop=Hop.APP_DB)), OpKind.OK)
        elif kind == "snapshot":
            read()
        elif kind == "read_open" and open_read is None:
            open_read = rec.read_invoke()
        elif kind == "read_close" and open_read is not None:
            rec.read_ok(open_read, *(app.snapshot() for app in apps))
            open_read = None
        elif kind == "read_lost":
            rec.read_failed(rec.read_invoke(), "REST unreachable")
        elif kind == "stray_row":
            apps[event[1]].stray = not apps[event[1]].stray
        elif kind == "stranger_call":
            invoke = rec.invoke(Process.C1, Action.SEND_BOOK, Details(intent_id=STRANGER))
            rec.booking_answer(invoke, status=201, body={"booking": {"id": STRANGER, "status": "confirmed"}})
    if open_read is not None:
        rec.read_ok(open_read, *(app.snapshot() for app in apps))
    # Settle: each client resends until it has a definite answer; then the final truth.
    settle = rec.invoke(Process.CHECKER, Action.SETTLE)
    for k in range(len(apps)):
        for p in CLIENTS:
            decide(k, send(k, p), True)
    read()
    rec.complete(settle, OpKind.OK)
    return rec.history()


@settings(max_examples=300, deadline=None)
@given(events())
def test_any_history_of_an_atomic_app_passes(script: list[tuple]) -> None:
    history = run(apps(1), script)
    verdict = check(history)
    assert verdict.passed, [v.message for v in verdict.violations]
    assert verdict.winner in CLIENTS
    assert from_jsonl(to_jsonl(history)) == history


@settings(max_examples=100, deadline=None)
@given(events(3))
def test_any_history_of_three_atomic_slots_passes(script: list[tuple]) -> None:
    verdict = check(run(apps(3), script))
    assert verdict.passed, [v.message for v in verdict.violations]
    assert all(winner in CLIENTS for _, winner in verdict.slot_outcomes)


def test_a_racy_app_is_caught() -> None:
    # Both intents decided, both win: both clients are told 201 and the slot holds two bookings.
    script = [("send", Process.C1, 0), ("send", Process.C2, 0), ("decide", Process.C1, 0, True),
              ("decide", Process.C2, 0, True), ("snapshot",)]
    verdict = check(run(apps(1, atomic=False), script))
    found = {v.name for v in verdict.violations}
    assert {ViolationName.DOUBLE_BOOKING, ViolationName.CONFLICTING_ANSWERS,
            ViolationName.ACK_NOT_HONOURED, ViolationName.NO_TERMINAL_STATE} <= found


@settings(max_examples=200, deadline=None)
@given(events())
def test_a_racy_app_never_passes(script: list[tuple]) -> None:
    # The settle phase decides both intents, so the racy app always ends with two winners.
    verdict = check(run(apps(1, atomic=False), script))
    assert ViolationName.DOUBLE_BOOKING in {v.name for v in verdict.violations}


@st.composite
def any_run(draw: st.DrawFn) -> History:
    """A history of 1-3 slots, each app atomic or racy, durable or not, maybe tampered with."""
    slots = draw(st.sampled_from((1, 1, 2, 3)))
    models = tuple(App(slot_fixture(k), atomic=draw(st.booleans()), durable=draw(st.booleans()))
                   for k in range(1, slots + 1))
    return run(models, draw(events(slots, tampered=True)))


@settings(max_examples=300, deadline=None)
@given(any_run())
def test_the_checker_fed_op_by_op_agrees_with_check_at_every_prefix(history: History) -> None:
    checker = Checker(history.fixtures)
    for n in range(len(history) + 1):
        prefix = History(history.fixtures, history.ops[:n])
        # Both asked at every step, as the runner does: asking must change nothing.
        for terminal in (False, True):
            assert checker.verdict(terminal=terminal) == check(prefix, terminal=terminal), (n, terminal)
        # What the runner asks after each step, without building the verdict.
        assert checker.violated() is check(prefix, terminal=False).failed, n
        if n < len(history):
            checker.observe(history.ops[n])


@settings(max_examples=200, deadline=None)
@given(any_run())
def test_each_slot_is_judged_as_its_own_one_slot_history(history: History) -> None:
    # The checker routes each op to its slot as it comes; `History.slot_view` cuts a slot's history
    # out afterwards. Both must give each slot the same verdict, named by slot.
    verdict = check(history)
    if len(history.fixtures) == 1:
        return
    for n in range(1, len(history.fixtures) + 1):
        alone = check(history.slot_view(n - 1))
        assert verdict.slot_outcomes[n - 1] == (alone.final_state, alone.winner)
        assert [v for v in verdict.violations if v.slot == n] == [
            replace(v, slot=n, message=f"slot {n}: {v.message}") for v in alone.violations]
