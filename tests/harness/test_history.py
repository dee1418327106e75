"""History: answer classification, snapshot parsing, JSONL round trip."""

from __future__ import annotations

import copy

import pytest

from harness import (
    Action, Answer, BookingStatus, Details, History, HistoryFormatError, Hop, MalformedSnapshotError,
    OpKind, Process, SlotState, classify_booking_answer, from_jsonl, parse_snapshot, to_jsonl,
)
from harness.history import outcome_of
from harness.checker import check
from tests.harness.builders import BOOKING, INTENT, SLOT, VENDOR, Builder, body, row, state_1

C1, C2 = Process.C1, Process.C2


@pytest.mark.parametrize(("status", "payload", "answer", "kind"), [
    (201, body(C1), Answer.CONFIRMED, OpKind.OK),
    (200, body(C1), Answer.REPLAYED, OpKind.OK),
    (409, body(C1, "rejected"), Answer.SLOT_TAKEN, OpKind.FAIL),
    (422, {"error": "intent_mismatch"}, Answer.INTENT_MISMATCH, OpKind.FAIL),
    (400, None, Answer.BAD_REQUEST, OpKind.FAIL),
    (404, None, Answer.NOT_FOUND, OpKind.FAIL),
    (500, None, Answer.UNKNOWN, OpKind.INFO),
    (503, {"error": "down"}, Answer.UNKNOWN, OpKind.INFO),
    (None, None, Answer.UNKNOWN, OpKind.INFO),  # reset or timeout
    (201, {"booking": {"status": "pending"}}, Answer.UNKNOWN, OpKind.INFO),  # success code, no proof
    (200, "not json", Answer.UNKNOWN, OpKind.INFO),
    (401, None, Answer.UNKNOWN, OpKind.INFO),
])
def test_classify_booking_answer(status: int | None, payload: object, answer: Answer, kind: OpKind) -> None:
    assert classify_booking_answer(status, payload) is answer
    assert outcome_of(answer) is kind


def rest_payload() -> list[dict[str, object]]:
    return [{
        "id": SLOT, "vendor_id": VENDOR, "state": "booked",
        "bookings": [{"id": BOOKING[C1], "intent_id": INTENT[C1], "slot_id": SLOT,
                      "customer_id": "00000000-0000-4000-8000-0000000000c1", "status": "confirmed",
                      "created_at": "2026-11-27T12:00:00+00:00", "updated_at": "2026-11-27T12:00:01+00:00"}],
    }]


def test_parse_snapshot_from_rest_json() -> None:
    snap = parse_snapshot(rest_payload())
    assert snap.slot_id == SLOT and snap.state is SlotState.BOOKED
    assert snap.bookings == (row(C1),)
    assert snap.confirmed == (row(C1),)
    assert parse_snapshot(rest_payload()[0]) == snap  # the bare object form
    assert parse_snapshot(snap.to_json()) == snap


@pytest.mark.parametrize(("mutate", "error"), [
    (lambda p: p.clear(), "expected exactly one slot, got 0"),
    (lambda p: p.append(copy.deepcopy(p[0])), "expected exactly one slot, got 2"),
    (lambda p: p[0].update(state="taken"), "snapshot[0].state: expected one of free, booked, got 'taken'"),
    (lambda p: p[0].pop("bookings"), "snapshot[0].bookings: expected an array"),
    (lambda p: p[0].update(id="slot-1"), "snapshot[0].id: not a UUID: 'slot-1'"),
    (lambda p: p[0]["bookings"][0].update(status="CONFIRMED"),
     "snapshot[0].bookings[0].status: expected one of pending, confirmed, rejected, failed, got 'CONFIRMED'"),
    (lambda p: p[0]["bookings"][0].pop("intent_id"), "snapshot[0].bookings[0].intent_id: expected a UUID string, got None"),
    (lambda p: p[0]["bookings"][0].update(created_at=5), "snapshot[0].bookings[0].created_at: expected a timestamp"),
    (lambda p: p[0]["bookings"].append("x"), "snapshot[0].bookings[1]: expected an object"),
])
def test_malformed_snapshot_names_the_field(mutate, error: str) -> None:
    payload = rest_payload()
    mutate(payload)
    with pytest.raises(MalformedSnapshotError, match=error.replace("[", r"\[").replace("]", r"\]")):
        parse_snapshot(payload)


def full_history() -> History:
    b = Builder()
    b.fault(Action.LATENCY, Hop.APP_DB, latency_ms=800)
    state_1(b)
    b.answer(b.invoke(C2, retry=True), None, error="ReadTimeout")
    b.crash()
    b.heal(Hop.APP_DB)
    b.heal()
    b.snap(SlotState.BOOKED, row(C1), row(C2, BookingStatus.REJECTED))
    return b.history()


def test_jsonl_round_trip_is_lossless() -> None:
    history = full_history()
    text = to_jsonl(history)
    assert from_jsonl(text) == history
    assert to_jsonl(from_jsonl(text)) == text
    assert len(text.splitlines()) == len(history) + 1


def test_recorder_assigns_indexes_times_and_pairs() -> None:
    history = full_history()
    assert [op.index for op in history] == list(range(len(history)))
    assert all(a.time_s < b.time_s for a, b in zip(history.ops, history.ops[1:]))
    answer = next(op for op in history if op.details.error == "ReadTimeout")
    assert answer.kind is OpKind.INFO and answer.details.answer is Answer.UNKNOWN
    invoke = history.ops[answer.invoke_index]
    assert invoke.kind is OpKind.INVOKE and history.completion_of(invoke) == answer


def test_details_have_no_place_for_headers() -> None:
    # The service key travels in request headers; a history must have nowhere to keep them.
    assert "headers" not in Details.__dataclass_fields__


@pytest.mark.parametrize("text", [
    "",
    "not json\n",
    '{"type": "op"}\n',
    '{"type": "header", "version": 99}\n',
])
def test_bad_history_files(text: str) -> None:
    with pytest.raises(HistoryFormatError):
        from_jsonl(text)


def test_bad_op_line_names_the_problem() -> None:
    lines = to_jsonl(full_history()).splitlines()
    lines[2] = lines[2].replace('"kind": "', '"kind": "bogus-')
    with pytest.raises(HistoryFormatError, match="bad op"):
        from_jsonl("\n".join(lines))


def test_booking_invokes_must_name_their_intent() -> None:
    with pytest.raises(ValueError, match="intent_id"):
        Builder().rec.invoke(Process.C1, Action.SEND_BOOK)


def test_a_version_1_history_loads_with_its_reads_widened() -> None:
    # Version 1 recorded a read's invoke at its answer. Read back, each read starts where the
    # previous one ended: an ack recorded just before such a read may have landed during it.
    b = Builder()
    b.snap(SlotState.FREE)
    b.book(C1, 201)
    b.snap(SlotState.FREE)  # as version 1 saw it: the ack "before" a read that missed it
    b.snap(SlotState.BOOKED, row(C1))
    text = to_jsonl(b.history())
    as_v2 = from_jsonl(text)
    assert "ACK_NOT_HONOURED" in {v.name.value for v in check(as_v2).violations}
    v1 = from_jsonl(text.replace('"version": 2', '"version": 1', 1))
    assert [op.index for op in v1] == list(range(len(v1)))
    reads = [op for op in v1 if op.action is Action.SNAPSHOT and op.kind is OpKind.OK]
    assert all(v1.ops[r.invoke_index].action is Action.SNAPSHOT for r in reads)
    assert v1.ops[reads[1].invoke_index].index < next(op.index for op in v1 if op.details.status == 201)
    assert check(v1).passed


def test_an_unknown_format_version_is_one_clear_line() -> None:
    text = to_jsonl(full_history()).replace('"version": 2', '"version": 7', 1)
    with pytest.raises(HistoryFormatError, match=r"format version 7 is not one this SimCity reads \(1, 2\)"):
        from_jsonl(text)
