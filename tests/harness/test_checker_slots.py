"""Independent slots: a history of K SC-1 instances, one fixture each, every read holding one
snapshot per slot. The checker judges each slot on its own and names it; the history survives
JSONL; the one snapshot request of K slots is built and parsed per the contract."""

from __future__ import annotations

import itertools
import json

import pytest

from harness import (
    Action, BookingRow, BookingStatus, Details, Fixture, History, MalformedSnapshotError, Op,
    OpKind, Process, Recorder, SlotSnapshot, SlotState, TerminalState, Validity, ViolationName, check,
    from_jsonl, to_jsonl,
)
from harness.contract import SNAPSHOT_SELECT, parse_snapshots, snapshot_params
from tests.harness.builders import FIXTURE, slot_booking_id, slot_fixture

C1, C2 = Process.C1, Process.C2
BOOKED, FREE = SlotState.BOOKED, SlotState.FREE
CONFIRMED, REJECTED = BookingStatus.CONFIRMED, BookingStatus.REJECTED


F1, F2, F3 = slot_fixture(1), slot_fixture(2), slot_fixture(3)


def row(f: Fixture, p: Process, status: BookingStatus = CONFIRMED, *, on: Fixture | None = None) -> BookingRow:
    """p's booking of fixture f, as it would show on the slot of `on` (default: f's own slot)."""
    intent = f.intent_of(p)
    return BookingRow(slot_booking_id(f, p), intent.intent_id, (on or f).slot_id, intent.customer_id, status)


def snap(f: Fixture, state: SlotState, *rows: BookingRow) -> SlotSnapshot:
    return SlotSnapshot(f.slot_id, f.vendor_id, state, tuple(rows))


class Slots:
    """A hand-made history of several slots, with a fake clock (0.1 s per op)."""

    def __init__(self, *fixtures: Fixture) -> None:
        ticks = itertools.count()
        self.fixtures = fixtures
        self.rec = Recorder(tuple(fixtures), clock=lambda: next(ticks) / 10)

    def invoke(self, f: Fixture, p: Process, *, retry: bool = False) -> Op:
        action = Action.RETRY_BOOK if retry else Action.SEND_BOOK
        return self.rec.invoke(p, action, Details(intent_id=f.intent_of(p).intent_id))

    def answer(self, invoke: Op, f: Fixture, status: int | None) -> Op:
        p = invoke.process
        intent = f.intent_of(p)
        booking = {"id": slot_booking_id(f, p), "intent_id": intent.intent_id, "slot_id": f.slot_id,
                   "customer_id": intent.customer_id}
        payload: object = None
        if status in (200, 201):
            payload = {"booking": {**booking, "status": "confirmed"}}
        elif status == 409:
            payload = {"error": "slot_taken", "booking": {**booking, "status": "rejected"}}
        return self.rec.booking_answer(invoke, status=status, body=payload, latency_ms=3.0)

    def book(self, f: Fixture, p: Process, status: int | None, *, retry: bool = False) -> Op:
        return self.answer(self.invoke(f, p, retry=retry), f, status)

    def read(self, *snapshots: SlotSnapshot) -> Op:
        return self.rec.read_ok(self.rec.read_invoke(), *snapshots)

    def crash(self) -> Op:
        return self.rec.complete(self.rec.invoke(Process.NEMESIS, Action.RESTART_SIMCITY), OpKind.OK)

    def settle(self) -> Op:
        return self.rec.invoke(Process.CHECKER, Action.SETTLE)

    def history(self) -> History:
        return self.rec.history()


def state_1(f: Fixture) -> tuple[BookingRow, ...]:
    return row(f, C1), row(f, C2, REJECTED)


def clean_two_slots() -> Slots:
    """Slot 1 ends in STATE 1, slot 2 in STATE 2, both decided by definite answers."""
    h = Slots(F1, F2)
    h.read(snap(F1, FREE), snap(F2, FREE))
    h.book(F1, C1, 201)
    h.book(F2, C2, 201)
    h.read(snap(F1, BOOKED, row(F1, C1)), snap(F2, BOOKED, row(F2, C2)))
    h.book(F1, C2, 409)
    h.book(F2, C1, 409)
    h.read(snap(F1, BOOKED, *state_1(F1)), snap(F2, BOOKED, row(F2, C2), row(F2, C1, REJECTED)))
    return h


# --- the checker, slot by slot ---------------------------------------------------------------------


def test_two_clean_slots_pass_with_an_outcome_each() -> None:
    verdict = check(clean_two_slots().history())
    assert verdict.valid is Validity.PASS, [v.message for v in verdict.violations]
    assert verdict.slot_outcomes == ((TerminalState.STATE_1, C1), (TerminalState.STATE_2, C2))
    # The one-slot fields are slot 1's.
    assert verdict.final_state is TerminalState.STATE_1 and verdict.winner is C1
    slots = verdict.to_json()["slots"]
    assert slots == [{"slot": 1, "final_state": "STATE_1", "winner": "C1"},
                     {"slot": 2, "final_state": "STATE_2", "winner": "C2"}]


def test_a_double_booking_in_slot_2_only_fails_naming_slot_2() -> None:
    h = Slots(F1, F2)
    h.book(F1, C1, 201)
    h.book(F2, C1, None)
    h.book(F2, C2, None)
    bad_read = h.read(snap(F1, BOOKED, row(F1, C1)), snap(F2, BOOKED, row(F2, C1), row(F2, C2)))
    h.book(F1, C2, 409)
    h.read(snap(F1, BOOKED, *state_1(F1)), snap(F2, BOOKED, row(F2, C1), row(F2, C2)))
    verdict = check(h.history())
    assert verdict.valid is Validity.FAIL
    assert verdict.violations and all(v.slot == 2 for v in verdict.violations), verdict.violations
    double = [v for v in verdict.violations if v.name is ViolationName.DOUBLE_BOOKING]
    assert len(double) == 1
    assert double[0].message.startswith("slot 2: ")
    assert F2.slot_id in double[0].message and F1.slot_id not in double[0].message
    # The index is the op of the whole history, where the broken read completed.
    assert double[0].index == bad_read.index
    assert verdict.primary == double[0]
    as_json = verdict.to_json()["violations"]
    assert any(v["slot"] == 2 and v["name"] == "DOUBLE_BOOKING" for v in as_json)  # type: ignore[union-attr,index]


def test_a_double_booking_in_slot_3_of_3_is_named_slot_3() -> None:
    h = Slots(F1, F2, F3)
    for f in (F1, F2, F3):
        h.book(f, C1, None)
        h.book(f, C2, None)
    h.read(snap(F1, BOOKED, row(F1, C1)), snap(F2, BOOKED, row(F2, C2)),
           snap(F3, BOOKED, row(F3, C1), row(F3, C2)))
    verdict = check(h.history(), terminal=False)
    assert verdict.failed
    assert {(v.name, v.slot) for v in verdict.violations} == {(ViolationName.DOUBLE_BOOKING, 3)}
    assert verdict.violations[0].message.startswith("slot 3: ")


def test_a_clean_slot_and_an_all_unknown_slot_are_inconclusive_naming_that_slot() -> None:
    h = Slots(F1, F2)
    h.book(F1, C1, 201)
    h.book(F2, C1, None)
    h.book(F2, C2, None)
    h.read(snap(F1, BOOKED, row(F1, C1)), snap(F2, FREE))
    h.settle()
    h.book(F1, C1, 200, retry=True)
    h.book(F1, C2, 409)
    h.book(F2, C1, None, retry=True)
    h.book(F2, C2, None, retry=True)
    h.read(snap(F1, BOOKED, *state_1(F1)), snap(F2, FREE))
    verdict = check(h.history())
    assert verdict.valid is Validity.INCONCLUSIVE
    assert verdict.violations == ()
    assert verdict.reason is not None and verdict.reason.startswith("slot 2: ")
    assert "slot 1:" not in verdict.reason
    assert "unknown" in verdict.reason
    assert verdict.slot_outcomes == ((TerminalState.STATE_1, C1), (None, None))


def test_a_failing_slot_outweighs_an_inconclusive_one() -> None:
    h = Slots(F1, F2)
    h.book(F1, C1, None)
    h.book(F2, C1, 201)
    h.read(snap(F1, FREE), snap(F2, FREE))  # slot 2's ack is not honoured
    verdict = check(h.history())
    assert verdict.valid is Validity.FAIL
    assert {v.slot for v in verdict.violations} == {2}
    assert verdict.reason is None


def test_slot_1s_intent_on_slot_2s_snapshot_is_flagged_in_slot_2() -> None:
    h = Slots(F1, F2)
    h.book(F1, C1, 201)
    h.book(F2, C2, 201)
    # Slot 2's snapshot carries a booking of slot 1's intent: one slot's booking leaked into another.
    h.read(snap(F1, BOOKED, row(F1, C1)), snap(F2, BOOKED, row(F2, C2), row(F1, C1, REJECTED, on=F2)))
    verdict = check(h.history(), terminal=False)
    assert verdict.failed
    flagged = {(v.name, v.slot) for v in verdict.violations}
    assert flagged == {(ViolationName.BOOKING_WITHOUT_INTENT, 2)}, verdict.violations
    assert F1.intent_of(C1).intent_id in verdict.violations[0].message


def test_a_loss_after_a_crash_is_judged_in_the_slot_that_lost_it() -> None:
    # Crashes belong to no slot: each slot's view keeps them.
    h = Slots(F1, F2)
    h.book(F1, C1, 201)
    h.book(F2, C1, 201)
    h.read(snap(F1, BOOKED, row(F1, C1)), snap(F2, BOOKED, row(F2, C1)))
    h.crash()
    h.read(snap(F1, BOOKED, row(F1, C1)), snap(F2, FREE))
    verdict = check(h.history(), terminal=False)
    names = {(v.name, v.slot) for v in verdict.violations}
    assert (ViolationName.BOOKING_LOST_AFTER_CRASH, 2) in names
    assert all(slot == 2 for _, slot in names)


def test_answers_in_one_slot_never_count_against_another() -> None:
    # Both slots' C1 are told confirmed: one winner per slot, not two winners.
    h = Slots(F1, F2)
    h.book(F1, C1, 201)
    h.book(F2, C1, 201)
    h.book(F1, C2, 409)
    h.book(F2, C2, 409)
    h.read(snap(F1, BOOKED, *state_1(F1)), snap(F2, BOOKED, *state_1(F2)))
    verdict = check(h.history())
    assert verdict.passed, [v.message for v in verdict.violations]
    assert verdict.slot_outcomes == ((TerminalState.STATE_1, C1), (TerminalState.STATE_1, C1))


# --- the history of several slots ------------------------------------------------------------------


def test_slot_view_keeps_op_indexes_and_only_its_slot() -> None:
    h = clean_two_slots()
    h.crash()
    history = h.history()
    by_index = {op.index: op for op in history.ops}
    for k, f in enumerate((F1, F2)):
        view = history.slot_view(k)
        assert view.fixtures == (f,) and view.fixture == f
        mine = {i.intent_id for i in f.intents}
        for op in view.ops:
            original = by_index[op.index]
            assert op.kind is original.kind and op.action is original.action and op.time_s == original.time_s
            assert op.details.intent_id is None or op.details.intent_id in mine
            if original.snapshots:
                assert op.snapshots == (original.snapshots[k],)
        # Every op of the slot and every op of no slot are kept, none of the other slot's.
        kept = {op.index for op in view.ops}
        assert kept == {op.index for op in history.ops if op.details.intent_id in (None, *mine)}
        assert any(op.action is Action.RESTART_SIMCITY for op in view.ops)


def test_a_multi_slot_history_and_read_refuse_the_one_slot_accessors() -> None:
    history = clean_two_slots().history()
    with pytest.raises(ValueError, match="slot_view"):
        history.fixture  # noqa: B018
    read = history.snapshots[0]
    assert len(read.snapshots) == 2
    with pytest.raises(ValueError, match="slot_view"):
        read.snapshot  # noqa: B018


def test_a_read_must_hold_one_snapshot_per_slot() -> None:
    h = Slots(F1, F2)
    with pytest.raises(ValueError, match="1 slots in a run of 2"):
        h.rec.read_ok(h.rec.read_invoke(), snap(F1, FREE))


def test_a_two_slot_history_round_trips_through_jsonl_losslessly() -> None:
    history = clean_two_slots().history()
    text = to_jsonl(history)
    back = from_jsonl(text)
    assert back == history
    assert to_jsonl(back) == text
    assert check(back) == check(history)
    header = json.loads(text.splitlines()[0])
    assert [s["slot_id"] for s in header["slots"]] == [F1.slot_id, F2.slot_id]
    assert header["slot_id"] == F1.slot_id  # slot 1 stays at the top level, as one-slot histories have it
    read = next(json.loads(line) for line in text.splitlines()[1:] if "snapshots" in line)
    assert [s["id"] for s in read["snapshots"]] == [F1.slot_id, F2.slot_id]


def test_a_one_slot_history_header_has_no_slots_key() -> None:
    ticks = itertools.count()
    rec = Recorder(FIXTURE, clock=lambda: next(ticks) / 10)
    rec.snapshot(SlotSnapshot(FIXTURE.slot_id, FIXTURE.vendor_id, FREE))
    text = to_jsonl(rec.history())
    header = json.loads(text.splitlines()[0])
    assert "slots" not in header
    assert header["slot_id"] == FIXTURE.slot_id
    op = json.loads(text.splitlines()[-1])
    assert "snapshot" in op and "snapshots" not in op
    assert from_jsonl(text) == rec.history()


# --- the one snapshot request of K slots --------------------------------------------------------------


def test_snapshot_params_for_one_slot_is_the_contracts_eq() -> None:
    assert snapshot_params([F1.slot_id]) == {"id": f"eq.{F1.slot_id}", "select": SNAPSHOT_SELECT}


def test_snapshot_params_for_several_slots_is_one_in_filter() -> None:
    params = snapshot_params([F1.slot_id, F2.slot_id, F3.slot_id])
    assert params == {"id": f"in.({F1.slot_id},{F2.slot_id},{F3.slot_id})", "select": SNAPSHOT_SELECT}


def test_parse_snapshots_orders_by_the_requested_ids() -> None:
    s1 = snap(F1, BOOKED, row(F1, C1))
    s2 = snap(F2, FREE)
    s3 = snap(F3, BOOKED, row(F3, C2))
    payload = [s3.to_json(), s1.to_json(), s2.to_json()]  # REST's order is its own
    assert parse_snapshots(payload, [F1.slot_id, F2.slot_id, F3.slot_id]) == (s1, s2, s3)
    assert parse_snapshots(payload, [F3.slot_id, F2.slot_id, F1.slot_id]) == (s3, s2, s1)


def test_parse_snapshots_refuses_a_missing_slot() -> None:
    with pytest.raises(MalformedSnapshotError, match=F2.slot_id):
        parse_snapshots([snap(F1, FREE).to_json()], [F1.slot_id, F2.slot_id])
    with pytest.raises(MalformedSnapshotError):
        parse_snapshots([], [F1.slot_id])


def test_parse_snapshots_refuses_a_slot_answered_twice() -> None:
    payload = [snap(F1, FREE).to_json(), snap(F2, FREE).to_json(), snap(F1, BOOKED, row(F1, C1)).to_json()]
    with pytest.raises(MalformedSnapshotError, match="twice"):
        parse_snapshots(payload, [F1.slot_id, F2.slot_id])


def test_parse_snapshots_refuses_what_is_not_an_array_and_names_a_bad_field() -> None:
    with pytest.raises(MalformedSnapshotError, match="array"):
        parse_snapshots(snap(F1, FREE).to_json(), [F1.slot_id])
    bad = snap(F2, FREE).to_json()
    bad["state"] = "maybe"
    with pytest.raises(MalformedSnapshotError, match="state"):
        parse_snapshots([snap(F1, FREE).to_json(), bad], [F1.slot_id, F2.slot_id])
