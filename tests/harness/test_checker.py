"""The oracle: every forbidden state fires with its name; legal histories pass."""

from __future__ import annotations

import pytest

from harness import (
    Action, BookingStatus, Hop, Invariant, Process, SlotState, TerminalState, Validity, Verdict,
    ViolationName, check,
)
from tests.harness.builders import (
    BOOKING, INTENT, OTHER_SLOT, STRANGER, Builder, CUSTOMER, row, state_1,
)

C1, C2 = Process.C1, Process.C2
BOOKED, FREE = SlotState.BOOKED, SlotState.FREE
CONFIRMED, REJECTED, PENDING, FAILED = (BookingStatus.CONFIRMED, BookingStatus.REJECTED,
                                        BookingStatus.PENDING, BookingStatus.FAILED)


def names(verdict: Verdict) -> set[ViolationName]:
    return {v.name for v in verdict.violations}


def assert_fires(verdict: Verdict, name: ViolationName, invariant: Invariant, index: int | None = None) -> None:
    assert verdict.valid is Validity.FAIL
    found = [v for v in verdict.violations if v.name is name]
    assert found, f"{name} not in {names(verdict)}"
    assert found[0].invariant is invariant
    assert found[0].message
    if index is not None:
        assert found[0].index == index


def assert_passes(verdict: Verdict, state: TerminalState, winner: Process) -> None:
    assert verdict.violations == (), [v.message for v in verdict.violations]
    assert verdict.valid is Validity.PASS and verdict.passed
    assert verdict.final_state is state and verdict.winner is winner


# --- legal histories ---------------------------------------------------------------------------


def test_state_1_passes() -> None:
    assert_passes(check(state_1(Builder()).history()), TerminalState.STATE_1, C1)


def test_state_2_passes_with_replays() -> None:
    b = Builder()
    b.book(C2, 201)
    b.snap(BOOKED, row(C2))
    b.book(C1, 409)
    b.book(C2, 200, retry=True)
    b.book(C1, 409, retry=True)
    b.snap(BOOKED, row(C1, REJECTED), row(C2))
    assert_passes(check(b.history()), TerminalState.STATE_2, C2)


def test_lost_answers_are_unknown_not_failures() -> None:
    b = Builder()
    b.book(C1, None)  # timeout: the booking happened anyway
    b.book(C1, 503, retry=True)
    b.snap(BOOKED, row(C1))
    b.book(C2, None)  # reset: the loser never learnt
    b.snap(BOOKED, row(C1), row(C2, REJECTED))
    v = check(b.history())
    assert_passes(v, TerminalState.STATE_1, C1)


def test_pending_rows_then_decided() -> None:
    b = Builder()
    i1, i2 = b.invoke(C1), b.invoke(C2)
    b.snap(FREE, row(C1, PENDING), row(C2, PENDING))
    b.snap(BOOKED, row(C1), row(C2, PENDING))
    b.answer(i1, 201)
    b.answer(i2, 409)
    b.snap(BOOKED, row(C1), row(C2, REJECTED))
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


@pytest.mark.parametrize("loser_rows", [(row(C2, FAILED),), (row(C2, REJECTED),), ()],
                         ids=["failed", "rejected", "absent"])
def test_loser_failed_rejected_or_absent(loser_rows: tuple) -> None:
    b = Builder()
    b.book(C1, 201)
    b.book(C2, 422)  # definite failure that says nothing about the slot
    b.book(C2, 404, retry=True)
    b.book(C2, 400, retry=True)
    b.snap(BOOKED, row(C1), *loser_rows)
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_crash_with_unknown_outcome_passes() -> None:
    b = Builder()
    b.invoke(C1)  # in flight when the app is killed: never answered
    b.crash()
    b.snap(BOOKED, row(C1))
    b.book(C1, 200, retry=True)
    b.book(C2, 409)
    b.snap(BOOKED, row(C1), row(C2, REJECTED))
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_crash_before_commit_then_other_wins() -> None:
    b = Builder()
    b.invoke(C1)
    b.crash()
    b.snap(FREE)  # C1's call died with the app: no row, and nobody was told anything
    b.book(C2, 201)
    b.book(C1, 409, retry=True)
    b.snap(BOOKED, row(C1, REJECTED), row(C2))
    assert_passes(check(b.history()), TerminalState.STATE_2, C2)


def test_answer_before_the_snapshot_that_shows_it() -> None:
    b = Builder()
    i1 = b.invoke(C1)
    b.snap(FREE)  # taken while the call was in flight
    b.answer(i1, 201)
    b.snap(BOOKED, row(C1))
    b.book(C2, 409)
    b.snap(BOOKED, row(C1), row(C2, REJECTED))
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_snapshot_shows_booking_before_the_answer() -> None:
    b = Builder()
    i1 = b.invoke(C1)
    b.snap(BOOKED, row(C1))
    b.answer(i1, 201)
    b.snap(BOOKED, row(C1))
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_faults_and_heals_do_not_matter_to_the_oracle() -> None:
    b = Builder()
    b.fault(Action.LATENCY, Hop.APP_DB, latency_ms=800)
    b.fault(Action.PARTITION, Hop.CLIENT_APP)
    state_1(b)
    b.heal()
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_in_progress_check_skips_the_terminal_state() -> None:
    b = Builder()
    b.invoke(C1)
    b.snap(FREE)
    v = check(b.history(), terminal=False)
    assert v.passed and v.final_state is None and v.snapshots_checked == 1


# --- invariant 1: cardinality -------------------------------------------------------------------


def test_double_booking() -> None:
    b = Builder()
    b.invoke(C1), b.invoke(C2)
    s = b.snap(BOOKED, row(C1), row(C2))
    v = check(b.history())
    assert_fires(v, ViolationName.DOUBLE_BOOKING, Invariant.CARDINALITY, s.index)
    assert v.first_violation is not None and v.first_violation.index == s.index


# --- invariant 2: slot coherence ---------------------------------------------------------------


def test_free_with_confirmed() -> None:
    b = Builder()
    b.invoke(C1)
    s = b.snap(FREE, row(C1))
    assert_fires(check(b.history()), ViolationName.FREE_WITH_CONFIRMED, Invariant.SLOT_COHERENCE, s.index)


def test_booked_without_booking() -> None:
    b = Builder()
    b.invoke(C1)
    s = b.snap(BOOKED, row(C1, PENDING))
    assert_fires(check(b.history()), ViolationName.BOOKED_WITHOUT_BOOKING, Invariant.SLOT_COHERENCE, s.index)


# --- invariant 3: booking coherence ------------------------------------------------------------


def test_booking_without_intent_unknown_id() -> None:
    b = state_1(Builder())
    s = b.snap(BOOKED, row(C1), row(C2, REJECTED), row(C2, REJECTED, booking_id=STRANGER, intent_id=STRANGER))
    assert_fires(check(b.history()), ViolationName.BOOKING_WITHOUT_INTENT, Invariant.BOOKING_COHERENCE, s.index)


def test_booking_before_its_intent_was_sent() -> None:
    b = Builder()
    s = b.snap(BOOKED, row(C1))  # nobody sent anything yet
    assert_fires(check(b.history()), ViolationName.BOOKING_WITHOUT_INTENT, Invariant.BOOKING_COHERENCE, s.index)


def test_duplicate_intent() -> None:
    b = state_1(Builder())
    s = b.snap(BOOKED, row(C1), row(C1, REJECTED, booking_id=STRANGER), row(C2, REJECTED))
    assert_fires(check(b.history()), ViolationName.DUPLICATE_INTENT, Invariant.BOOKING_COHERENCE, s.index)


def test_wrong_customer() -> None:
    b = Builder()
    b.book(C1, 201)
    s = b.snap(BOOKED, row(C1, customer_id=CUSTOMER[C2]))
    assert_fires(check(b.history()), ViolationName.WRONG_CUSTOMER, Invariant.BOOKING_COHERENCE, s.index)


def test_wrong_slot_on_a_row_and_on_the_snapshot() -> None:
    b = Builder()
    b.book(C1, 201)
    s = b.snap(BOOKED, row(C1, slot_id=OTHER_SLOT))
    assert_fires(check(b.history()), ViolationName.WRONG_SLOT, Invariant.BOOKING_COHERENCE, s.index)
    b2 = Builder()
    b2.book(C1, 201)
    s2 = b2.snap(BOOKED, row(C1), slot_id=OTHER_SLOT)
    assert_fires(check(b2.history()), ViolationName.WRONG_SLOT, Invariant.BOOKING_COHERENCE, s2.index)


# --- invariant 4: stability --------------------------------------------------------------------


def test_winner_flip_after_retries() -> None:
    b = Builder()
    b.invoke(C1), b.invoke(C2)
    b.snap(BOOKED, row(C1), row(C2, REJECTED))
    b.invoke(C2, retry=True)
    s = b.snap(BOOKED, row(C1, REJECTED), row(C2))
    v = check(b.history())
    assert_fires(v, ViolationName.WINNER_FLIP, Invariant.STABILITY, s.index)
    # The end state alone looks like a legal STATE 2: only the history shows the flip.
    assert v.final_state is TerminalState.STATE_2


def test_booking_lost_after_crash() -> None:
    b = Builder()
    b.book(C1, None)  # unknown answer, so only stability (not agreement) can see the loss
    b.snap(BOOKED, row(C1))
    crash_done = b.crash()
    s = b.snap(FREE)
    v = check(b.history())
    assert_fires(v, ViolationName.BOOKING_LOST_AFTER_CRASH, Invariant.STABILITY, s.index)
    assert f"crash at op {crash_done.invoke_index}" in next(x.message for x in v.violations
                                                  if x.name is ViolationName.BOOKING_LOST_AFTER_CRASH)
    assert ViolationName.BOOKING_LOST not in names(v)


def test_booking_lost_without_crash() -> None:
    b = Builder()
    b.invoke(C1)
    b.snap(BOOKED, row(C1))
    s = b.snap(FREE, row(C1, FAILED))
    v = check(b.history())
    assert_fires(v, ViolationName.BOOKING_LOST, Invariant.STABILITY, s.index)
    assert ViolationName.BOOKING_LOST_AFTER_CRASH not in names(v)


def test_booking_id_changed() -> None:
    b = Builder()
    b.invoke(C1)
    b.snap(BOOKED, row(C1))
    s = b.snap(BOOKED, row(C1, booking_id=STRANGER))
    assert_fires(check(b.history()), ViolationName.BOOKING_ID_CHANGED, Invariant.STABILITY, s.index)


# --- invariant 5: agreement with what clients were told -----------------------------------------


def test_ack_not_honoured_when_confirmed_intent_never_shows() -> None:
    b = Builder()
    b.book(C1, 201)
    s = b.snap(FREE, row(C1, PENDING))
    assert_fires(check(b.history()), ViolationName.ACK_NOT_HONOURED, Invariant.AGREEMENT, s.index)


def test_ack_not_honoured_when_another_won_while_in_flight() -> None:
    b = Builder()
    i1 = b.invoke(C1)
    b.invoke(C2)
    b.snap(BOOKED, row(C2))  # C2 holds the slot while C1's call is still in flight
    a = b.answer(i1, 201)  # ... and C1 is told it won
    v = check(b.history(), terminal=False)
    assert_fires(v, ViolationName.ACK_NOT_HONOURED, Invariant.AGREEMENT, a.index)


def test_ack_not_honoured_when_booking_id_differs() -> None:
    b = Builder()
    b.book(C1, 201, booking_id=STRANGER)
    s = b.snap(BOOKED, row(C1))
    assert_fires(check(b.history()), ViolationName.ACK_NOT_HONOURED, Invariant.AGREEMENT, s.index)


def test_rejected_but_confirmed_later() -> None:
    b = Builder()
    b.book(C2, 409)
    s = b.snap(BOOKED, row(C2))
    assert_fires(check(b.history()), ViolationName.REJECTED_BUT_CONFIRMED, Invariant.AGREEMENT, s.index)


def test_rejected_after_being_seen_confirmed() -> None:
    b = Builder()
    b.invoke(C2)
    b.snap(BOOKED, row(C2))
    a = b.book(C2, 409, retry=True)  # a replay of a winner must answer 200, not 409
    assert_fires(check(b.history(), terminal=False), ViolationName.REJECTED_BUT_CONFIRMED,
                 Invariant.AGREEMENT, a.index)


@pytest.mark.parametrize("second", ["other-confirmed", "same-rejected", "same-new-id"])
def test_conflicting_answers(second: str) -> None:
    b = Builder()
    b.book(C1, 201)
    if second == "other-confirmed":
        a = b.book(C2, 201)
    elif second == "same-rejected":
        a = b.book(C1, 409, retry=True)
    else:
        a = b.book(C1, 200, retry=True, booking_id=STRANGER)
    assert_fires(check(b.history(), terminal=False), ViolationName.CONFLICTING_ANSWERS,
                 Invariant.AGREEMENT, a.index)


# --- terminal state ----------------------------------------------------------------------------


def assert_inconclusive(verdict: Verdict, *words: str) -> None:
    assert verdict.violations == (), [v.message for v in verdict.violations]
    assert verdict.valid is Validity.INCONCLUSIVE and not verdict.passed and not verdict.failed
    assert verdict.final_state is None and verdict.winner is None
    assert verdict.reason and all(w in verdict.reason for w in words), verdict.reason


def test_every_answer_unknown_is_inconclusive_never_fail() -> None:
    # The app was frozen: nothing illegal was seen, and nothing definite either.
    b = Builder()
    b.book(C1, None)
    b.book(C2, None)
    b.snap(FREE)
    b.settle()
    b.book(C1, None, retry=True)
    b.book(C2, 503, retry=True)
    b.snap(FREE)
    assert_inconclusive(check(b.history()), "settle phase", "C1 (1 tries)", "C2 (1 tries)")


def test_no_terminal_state_with_definite_answers_fails() -> None:
    # Both intents were answered slot_taken, yet nobody holds the slot: the app had its chance.
    b = Builder()
    b.settle()
    b.book(C1, 409)
    b.book(C2, 409)
    b.snap(FREE)
    v = check(b.history())
    assert_fires(v, ViolationName.NO_TERMINAL_STATE, Invariant.TERMINAL)
    assert v.final_state is None and v.winner is None


def test_loser_pending_and_unanswered_is_inconclusive() -> None:
    b = Builder()
    b.book(C1, 201)
    b.invoke(C2)
    b.snap(BOOKED, row(C1), row(C2, PENDING))
    assert_inconclusive(check(b.history()), "C2")


def test_loser_pending_after_a_definite_answer_fails() -> None:
    b = Builder()
    b.book(C1, 201)
    b.book(C2, 409)
    b.snap(BOOKED, row(C1), row(C2, PENDING))
    assert_fires(check(b.history()), ViolationName.NO_TERMINAL_STATE, Invariant.TERMINAL)


def test_answers_before_settling_do_not_decide_the_settle_phase() -> None:
    b = Builder()
    b.book(C1, 409)
    b.book(C2, 409)
    b.settle()
    b.book(C1, None, retry=True)
    b.book(C2, None, retry=True)
    b.snap(FREE)
    assert_inconclusive(check(b.history()), "C1", "C2")


def test_an_illegal_final_state_fails_whatever_the_unknowns() -> None:
    b = Builder()
    b.invoke(C1), b.invoke(C2)
    b.settle()
    b.book(C1, None, retry=True)
    b.book(C2, None, retry=True)
    b.snap(BOOKED, row(C1), row(C2))
    assert_fires(check(b.history()), ViolationName.DOUBLE_BOOKING, Invariant.CARDINALITY)


def test_no_snapshot_is_inconclusive() -> None:
    b = Builder()
    b.book(C1, 201)
    assert_inconclusive(check(b.history()), "no snapshot")


# --- real-time order: reads are intervals (CONTRACT.md section 3) -----------------------------


def test_an_ack_that_completed_during_the_read_may_be_missing_from_it() -> None:
    # The read was served before C1's commit; C1's answer arrived while the read was in flight.
    b = Builder()
    i1 = b.invoke(C1)
    read = b.read_invoke()
    b.answer(i1, 201)
    b.read_ok(read, FREE)
    b.snap(BOOKED, row(C1))
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_an_ack_that_completed_before_the_read_was_sent_must_be_in_it() -> None:
    b = Builder()
    i1 = b.invoke(C1)
    b.answer(i1, 201)
    read = b.read_invoke()
    ok = b.read_ok(read, FREE)
    v = check(b.history())
    assert_fires(v, ViolationName.ACK_NOT_HONOURED, Invariant.AGREEMENT, ok.index)
    message = next(x.message for x in v.violations if x.name is ViolationName.ACK_NOT_HONOURED)
    assert f"the read of ops {read.index}-{ok.index}" in message and "absent" in message


def test_a_booking_sent_after_the_read_completed_cannot_be_in_it() -> None:
    b = Builder()
    read = b.read_invoke()
    ok = b.read_ok(read, BOOKED, row(C1))
    b.book(C1, 201)
    assert_fires(check(b.history()), ViolationName.BOOKING_WITHOUT_INTENT, Invariant.BOOKING_COHERENCE, ok.index)


def test_a_booking_sent_while_the_read_was_in_flight_may_be_in_it() -> None:
    b = Builder()
    read = b.read_invoke()
    i1 = b.invoke(C1)
    b.read_ok(read, BOOKED, row(C1))
    b.answer(i1, 201)
    b.book(C2, 409)
    b.snap(BOOKED, row(C1), row(C2, REJECTED))
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_overlapping_reads_are_not_ordered_for_stability() -> None:
    # The second read was sent before the first one answered: it may have been served earlier.
    b = Builder()
    i1 = b.invoke(C1)
    first = b.read_invoke()
    second = b.read_invoke()
    b.read_ok(first, BOOKED, row(C1))
    b.read_ok(second, FREE)
    b.answer(i1, 201)
    b.snap(BOOKED, row(C1))
    assert_passes(check(b.history()), TerminalState.STATE_1, C1)


def test_a_read_sent_after_another_completed_must_keep_what_it_saw() -> None:
    b = Builder()
    b.invoke(C1)
    b.snap(BOOKED, row(C1))
    later = b.snap(FREE)
    assert_fires(check(b.history()), ViolationName.BOOKING_LOST, Invariant.STABILITY, later.index)


def test_a_crash_during_the_second_read_counts_for_a_lost_booking() -> None:
    b = Builder()
    b.invoke(C1)
    b.snap(BOOKED, row(C1))
    read = b.read_invoke()
    b.crash()
    b.read_ok(read, FREE)
    assert_fires(check(b.history()), ViolationName.BOOKING_LOST_AFTER_CRASH, Invariant.STABILITY)


def test_a_read_that_ended_before_the_call_was_sent_is_not_in_its_flight() -> None:
    # C2 was confirmed and then lost before C1 was even sent: that is C2's lost booking, not an
    # ACK_NOT_HONOURED of C1's answer.
    b = Builder()
    b.invoke(C2)
    b.snap(BOOKED, row(C2))
    b.book(C1, 201)
    v = check(b.history())
    assert ViolationName.ACK_NOT_HONOURED not in names(v)


def test_another_winner_seen_during_the_call_contradicts_its_ack() -> None:
    b = Builder()
    b.invoke(C2)
    i1 = b.invoke(C1)
    b.snap(BOOKED, row(C2))
    a = b.answer(i1, 201)
    assert_fires(check(b.history(), terminal=False), ViolationName.ACK_NOT_HONOURED, Invariant.AGREEMENT, a.index)


# --- reporting shape ---------------------------------------------------------------------------


def test_a_persisting_violation_is_reported_once_with_its_first_index() -> None:
    b = Builder()
    b.invoke(C1), b.invoke(C2)
    first = b.snap(BOOKED, row(C1), row(C2))
    b.snap(BOOKED, row(C1), row(C2))
    b.snap(BOOKED, row(C1), row(C2))
    double = [v for v in check(b.history()).violations if v.name is ViolationName.DOUBLE_BOOKING]
    assert len(double) == 1 and double[0].index == first.index and double[0].occurrences == 3


def test_every_violation_name_belongs_to_an_invariant() -> None:
    assert {n.invariant for n in ViolationName} == set(Invariant)


def test_verdict_json_names_everything() -> None:
    b = Builder()
    b.invoke(C1), b.invoke(C2)
    b.snap(BOOKED, row(C1), row(C2))
    data = check(b.history()).to_json()
    assert data["valid"] == "FAIL"
    assert {"invariant": 1, "name": "DOUBLE_BOOKING"}.items() <= data["violations"][0].items()


def test_intent_ids_used_in_messages() -> None:
    b = Builder()
    b.invoke(C1), b.invoke(C2)
    b.snap(BOOKED, row(C1), row(C2))
    message = check(b.history()).violations[0].message
    assert INTENT[C1] in message and BOOKING[C2] in message and "C1" in message
