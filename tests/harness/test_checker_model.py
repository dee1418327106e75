"""Property tests: any history of an atomic booking app passes; a racy app is caught.

A small in-memory model of the contract's app decides intents first-come-first-served; Hypothesis
draws the interleaving of sends, decisions, lost answers, crashes and snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings, strategies as st

from harness import (
    BookingStatus, History, Op, Process, SlotSnapshot, SlotState, ViolationName, check, from_jsonl, to_jsonl,
)
from tests.harness.builders import SLOT, VENDOR, Builder, row

CLIENTS = (Process.C1, Process.C2)

events = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(CLIENTS)),
        # Decide the oldest in-flight call of a client; the bool says whether its answer arrives.
        st.tuples(st.just("decide"), st.sampled_from(CLIENTS), st.booleans()),
        st.tuples(st.just("crash")),
        st.tuples(st.just("snapshot")),
    ),
    max_size=40,
)


@dataclass
class App:
    """The contract's app. `atomic=False` never rejects a fresh intent: the app whose check and
    claim of the slot race, and every racer wins."""

    atomic: bool = True
    rows: dict[Process, BookingStatus] = field(default_factory=dict)

    def decide(self, p: Process) -> int:
        if p in self.rows:
            return 200 if self.rows[p] is BookingStatus.CONFIRMED else 409
        holder = any(s is BookingStatus.CONFIRMED for s in self.rows.values())
        if holder and self.atomic:
            self.rows[p] = BookingStatus.REJECTED
            return 409
        self.rows[p] = BookingStatus.CONFIRMED
        return 201

    def snapshot(self) -> SlotSnapshot:
        rows = tuple(row(p, s) for p, s in sorted(self.rows.items()))
        booked = any(s is BookingStatus.CONFIRMED for s in self.rows.values())
        return SlotSnapshot(SLOT, VENDOR, SlotState.BOOKED if booked else SlotState.FREE, rows)


def run(app: App, script: list[tuple]) -> History:
    b = Builder()
    in_flight: dict[Process, list[Op]] = {p: [] for p in CLIENTS}
    sent: set[Process] = set()
    for event in script:
        if event[0] == "send":
            p = event[1]
            in_flight[p].append(b.invoke(p, retry=p in sent))
            sent.add(p)
        elif event[0] == "decide" and in_flight[event[1]]:
            invoke = in_flight[event[1]].pop(0)
            status = app.decide(event[1])
            b.answer(invoke, status if event[2] else None)
        elif event[0] == "crash":
            # In-flight calls die with the app, undecided and never answered: unknown outcome.
            in_flight = {p: [] for p in CLIENTS}
            b.crash()
        elif event[0] == "snapshot":
            snap(b, app)
    # Settle: each client resends until it has a definite answer; then the final truth.
    for p in CLIENTS:
        b.answer(b.invoke(p, retry=p in sent), app.decide(p))
    snap(b, app)
    return b.history()


def snap(b: Builder, app: App) -> None:
    truth = app.snapshot()
    b.snap(truth.state, *truth.bookings)


@settings(max_examples=300, deadline=None)
@given(events)
def test_any_history_of_an_atomic_app_passes(script: list[tuple]) -> None:
    history = run(App(atomic=True), script)
    verdict = check(history)
    assert verdict.passed, [v.message for v in verdict.violations]
    assert verdict.winner in CLIENTS
    assert from_jsonl(to_jsonl(history)) == history


def test_a_racy_app_is_caught() -> None:
    # Both intents decided, both win: both clients are told 201 and the slot holds two bookings.
    script = [("send", Process.C1), ("send", Process.C2), ("decide", Process.C1, True),
              ("decide", Process.C2, True), ("snapshot",)]
    verdict = check(run(App(atomic=False), script))
    found = {v.name for v in verdict.violations}
    assert {ViolationName.DOUBLE_BOOKING, ViolationName.CONFLICTING_ANSWERS,
            ViolationName.ACK_NOT_HONOURED, ViolationName.NO_TERMINAL_STATE} <= found


@settings(max_examples=200, deadline=None)
@given(events)
def test_a_racy_app_never_passes(script: list[tuple]) -> None:
    # The settle phase decides both intents, so the racy app always ends with two winners.
    verdict = check(run(App(atomic=False), script))
    assert ViolationName.DOUBLE_BOOKING in {v.name for v in verdict.violations}
