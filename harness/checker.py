"""SC-1's oracle: a pure function from a recorded history to a Verdict.

After every snapshot read the five invariants of CONTRACT.md section 3 are checked against the
read and everything recorded before it; after the last read, the terminal state (STATE 1 or 2).

Order is real time, as in Jepsen and Knossos: a read is an interval, from its invoke (recorded
before the request was sent) to its ok (recorded when the answer arrived), and history order is
real-time order. A read must reflect every answer that completed BEFORE it was invoked; an answer
that completed while it was in flight may or may not be in it; a booking invoked after it
completed cannot be in it; of two reads, only one invoked after the other completed must see at
least what the first saw. Booking calls that never completed, or completed `info`, are unknown:
they neither prove nor excuse anything (Jepsen's crash = unknown).

Three verdicts: PASS, FAIL (an invariant broken: a finding about the app) and INCONCLUSIVE
(nothing illegal seen, but no terminal state because answers stayed unknown): never FAIL on
unknowns alone, never PASS either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import NamedTuple

from harness.contract import (
    Answer, BookingRow, BookingStatus, CrashCheck, SlotSnapshot, SlotState, answered_booking_id, crash_check_of,
)
from harness.history import Action, Fixture, History, Intent, Op, OpKind, Process


class Invariant(IntEnum):
    CARDINALITY = 1
    SLOT_COHERENCE = 2
    BOOKING_COHERENCE = 3
    STABILITY = 4
    AGREEMENT = 5
    TERMINAL = 6  # not a numbered invariant of the contract: the check after the settle phase

    @property
    def title(self) -> str:
        return _TITLES[self]


_TITLES = {
    Invariant.CARDINALITY: "at most one confirmed booking on the slot",
    Invariant.SLOT_COHERENCE: "slot booked exactly when one booking is confirmed",
    Invariant.BOOKING_COHERENCE: "every booking is an issued intent, on this slot, for its customer, once",
    Invariant.STABILITY: "a confirmed intent stays confirmed with the same booking id",
    Invariant.AGREEMENT: "the database agrees with what clients were told",
    Invariant.TERMINAL: "after settling: STATE 1 or STATE 2",
}


class ViolationName(str, Enum):
    DOUBLE_BOOKING = "DOUBLE_BOOKING"
    FREE_WITH_CONFIRMED = "FREE_WITH_CONFIRMED"
    BOOKED_WITHOUT_BOOKING = "BOOKED_WITHOUT_BOOKING"
    BOOKING_WITHOUT_INTENT = "BOOKING_WITHOUT_INTENT"
    DUPLICATE_INTENT = "DUPLICATE_INTENT"
    WRONG_SLOT = "WRONG_SLOT"
    WRONG_CUSTOMER = "WRONG_CUSTOMER"
    WINNER_FLIP = "WINNER_FLIP"
    BOOKING_ID_CHANGED = "BOOKING_ID_CHANGED"
    BOOKING_LOST = "BOOKING_LOST"
    BOOKING_LOST_AFTER_CRASH = "BOOKING_LOST_AFTER_CRASH"
    ACK_NOT_HONOURED = "ACK_NOT_HONOURED"
    REJECTED_BUT_CONFIRMED = "REJECTED_BUT_CONFIRMED"
    CONFLICTING_ANSWERS = "CONFLICTING_ANSWERS"
    NO_TERMINAL_STATE = "NO_TERMINAL_STATE"

    @property
    def invariant(self) -> Invariant:
        return _INVARIANT_OF[self]


_INVARIANT_OF = {
    ViolationName.DOUBLE_BOOKING: Invariant.CARDINALITY,
    ViolationName.FREE_WITH_CONFIRMED: Invariant.SLOT_COHERENCE,
    ViolationName.BOOKED_WITHOUT_BOOKING: Invariant.SLOT_COHERENCE,
    ViolationName.BOOKING_WITHOUT_INTENT: Invariant.BOOKING_COHERENCE,
    ViolationName.DUPLICATE_INTENT: Invariant.BOOKING_COHERENCE,
    ViolationName.WRONG_SLOT: Invariant.BOOKING_COHERENCE,
    ViolationName.WRONG_CUSTOMER: Invariant.BOOKING_COHERENCE,
    ViolationName.WINNER_FLIP: Invariant.STABILITY,
    ViolationName.BOOKING_ID_CHANGED: Invariant.STABILITY,
    ViolationName.BOOKING_LOST: Invariant.STABILITY,
    ViolationName.BOOKING_LOST_AFTER_CRASH: Invariant.STABILITY,
    ViolationName.ACK_NOT_HONOURED: Invariant.AGREEMENT,
    ViolationName.REJECTED_BUT_CONFIRMED: Invariant.AGREEMENT,
    ViolationName.CONFLICTING_ANSWERS: Invariant.AGREEMENT,
    ViolationName.NO_TERMINAL_STATE: Invariant.TERMINAL,
}


class Validity(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"  # nothing illegal seen, no terminal state reached: no verdict


class TerminalState(str, Enum):
    STATE_1 = "STATE_1"  # C1 confirmed, C2 rejected/failed/absent, slot booked
    STATE_2 = "STATE_2"  # the mirror


@dataclass(frozen=True)
class Violation:
    name: ViolationName
    message: str
    index: int  # the op where it was first seen
    occurrences: int = 1  # how many later ops showed the same thing again
    slot: int = 1  # which independent slot of the run (1 = the seed's only slot)

    @property
    def invariant(self) -> Invariant:
        return self.name.invariant


@dataclass(frozen=True)
class Verdict:
    valid: Validity
    violations: tuple[Violation, ...] = ()
    final_state: TerminalState | None = None
    winner: Process | None = None
    snapshots_checked: int = 0
    reason: str | None = None  # why an INCONCLUSIVE verdict could not be PASS, or why a run stopped
    # With several slots: each slot's final state and winner, slot 1 first (the fields above are
    # slot 1's).
    slot_outcomes: tuple[tuple[TerminalState | None, Process | None], ...] = ()

    @property
    def passed(self) -> bool:
        return self.valid is Validity.PASS

    @property
    def failed(self) -> bool:
        return self.valid is Validity.FAIL

    @property
    def outcomes(self) -> tuple[tuple[TerminalState | None, Process | None], ...]:
        """Each slot's final state and winner, slot 1 first (a one-slot verdict: its own)."""
        return self.slot_outcomes or ((self.final_state, self.winner),)

    @property
    def first_violation(self) -> Violation | None:
        """The violation seen first: where the run broke."""
        return min(self.violations, key=lambda v: v.index, default=None)

    @property
    def primary(self) -> Violation | None:
        """The violation to headline: the most basic invariant broken (cardinality first), since
        e.g. two clients told "confirmed" is the symptom and two confirmed rows the damage."""
        return min(self.violations, key=lambda v: (v.invariant.value, v.index), default=None)

    def to_json(self) -> dict[str, object]:
        return {
            "valid": self.valid.value,
            "final_state": self.final_state.value if self.final_state else None,
            "winner": self.winner.value if self.winner else None,
            "snapshots_checked": self.snapshots_checked,
            "reason": self.reason,
            "slots": [{"slot": n, "final_state": state.value if state else None,
                       "winner": winner.value if winner else None}
                      for n, (state, winner) in enumerate(self.slot_outcomes, 1)],
            "violations": [
                {"invariant": v.invariant.value, "invariant_title": v.invariant.title,
                 "name": v.name.value, "message": v.message, "index": v.index,
                 "occurrences": v.occurrences, "slot": v.slot}
                for v in self.violations
            ],
        }


def check(history: History, *, terminal: bool = True) -> Verdict:
    """Check every snapshot read of `history`, then (with `terminal=True`) its final state.

    `terminal=False` checks a run still in progress, e.g. to stop at the first violation. A run
    of several independent slots is judged slot by slot (Jepsen's independent keys): it FAILs if
    any slot does, is INCONCLUSIVE if none fails and one is, and PASSes when every slot does.
    One pass of the `Checker` a run feeds as it goes: replaying a history gives the same verdict.
    """
    checker = Checker(history.fixtures)
    for op in history.ops:
        checker.observe(op)
    return checker.verdict(terminal=terminal)


class Checker:
    """The oracle fed op by op, as a run records them. `observe(op)` hands the op to its slot(s)
    at once and updates their state in time bounded by the op's snapshot and the slot's intents,
    not by the history so far (amortised: an intent's first confirmation looks back over the
    reads once). `verdict()` is the verdict of the ops observed so far, exactly what `check()`
    gives of that prefix, and can be asked after every step: it changes nothing."""

    def __init__(self, fixtures: Fixture | tuple[Fixture, ...]) -> None:
        self.fixtures = fixtures if isinstance(fixtures, tuple) else (fixtures,)
        # One clock for every slot: each op's time is written once, not once per slot it reaches.
        self._times: dict[int, float] = {}
        self._runs = tuple(_Run(f, times=self._times) for f in self.fixtures)
        # The slots an intent's ops go to, as `History.slot_view` routes them: a booking of an
        # intent no fixture issued belongs to none (with one slot, every op is the slot's).
        self._slots_of: dict[str, list[int]] = {}
        for k, fixture in enumerate(self.fixtures):
            for intent in fixture.intents:
                self._slots_of.setdefault(intent.intent_id, []).append(k)

    def observe(self, op: Op) -> None:
        """Take the next op of the history (ops come in index order, as recorded)."""
        self._times[op.index] = op.time_s
        if len(self._runs) == 1:
            self._runs[0].step(op, op.snapshot)
            return
        intent_id = op.details.intent_id
        slots = range(len(self._runs)) if intent_id is None else self._slots_of.get(intent_id, ())
        several = len(op.snapshots) > 1
        for k in slots:
            snapshot = op.snapshots[k] if several else (op.snapshots[0] if op.snapshots else None)
            self._runs[k].step(op, snapshot)

    def violated(self) -> bool:
        """Whether an invariant fired on the ops observed so far: what `verdict(terminal=False)`
        says (not `passed`) without building it, for a runner that asks after every step (with
        8 slots, building the verdict was a quarter of the checker's time)."""
        return any(run.violations for run in self._runs)

    def verdict(self, *, terminal: bool = True) -> Verdict:
        """The verdict on the ops observed so far; `terminal=True` also judges the final state."""
        if len(self._runs) == 1:
            return self._runs[0].verdict(terminal)
        verdicts = [run.verdict(terminal) for run in self._runs]
        violations = tuple(replace(v, slot=n, message=f"slot {n}: {v.message}")
                           for n, verdict in enumerate(verdicts, 1) for v in verdict.violations)
        reasons = [f"slot {n}: {v.reason}" for n, v in enumerate(verdicts, 1) if v.reason]
        if violations:
            valid = Validity.FAIL
        elif reasons:
            valid = Validity.INCONCLUSIVE
        else:
            valid = Validity.PASS
        return Verdict(valid=valid, violations=violations, final_state=verdicts[0].final_state,
                       winner=verdicts[0].winner, snapshots_checked=verdicts[0].snapshots_checked,
                       reason="; ".join(reasons) if valid is Validity.INCONCLUSIVE else None,
                       slot_outcomes=tuple((v.final_state, v.winner) for v in verdicts))


@dataclass
class _Told:
    """The definite answers one intent received so far."""

    confirmed_at: int | None = None  # op index of the first confirmed answer
    booking_id: str | None = None
    slot_taken_at: int | None = None


# What the per-op path compares with: an enum member read through its class costs about 0.1 us on
# CPython 3.11, and the path would read several per op and slot.
_INVOKE, _INFO = OpKind.INVOKE, OpKind.INFO
_CRASH, _SETTLE = Action.RESTART_SIMCITY, Action.SETTLE
_BOOKING_ACTIONS = tuple(a for a in Action if a.is_booking)
_FREE, _BOOKED = SlotState.FREE, SlotState.BOOKED


class _Read(NamedTuple):
    """A snapshot read's interval: the op indexes of its invoke and of its answer."""

    invoked: int
    completed: int


@dataclass
class _Run:
    fixture: Fixture
    violations: dict[tuple[ViolationName, str], Violation] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)  # intent ids sent at least once so far
    told: dict[str, _Told] = field(default_factory=dict)
    seen_confirmed: dict[str, tuple[str, _Read]] = field(default_factory=dict)  # intent -> (booking, read)
    crashes: list[int] = field(default_factory=list)  # invoke indexes of the crashes
    confirmed_reads: list[tuple[_Read, str]] = field(default_factory=list)  # (read, confirmed intent)
    times: dict[int, float] = field(default_factory=dict)  # op index -> seconds, for the messages (the Checker's)
    settle_at: int | None = None  # the settle phase's invoke
    settle_error: str | None = None  # why the settle phase could not make the app healthy
    settle_tries: dict[str, int] = field(default_factory=dict)  # intent -> bookings sent while settling
    decided: set[str] = field(default_factory=set)  # intents with a definite answer (while settling, if any)
    last_snapshot: SlotSnapshot | None = None
    snapshots: int = 0
    last_index: int = 0  # the last op observed: where a NO_TERMINAL_STATE is found
    intents: dict[str, Intent] = field(init=False)  # the fixture's intents by id, the first of a repeated id

    def __post_init__(self) -> None:
        self.intents = {}
        for intent in self.fixture.intents:
            self.intents.setdefault(intent.intent_id, intent)

    # --- bookkeeping ---

    def flag(self, name: ViolationName, subject: str, message: str, index: int) -> None:
        key = (name, subject)
        if key in self.violations:
            earlier = self.violations[key]
            self.violations[key] = Violation(name, earlier.message, earlier.index, earlier.occurrences + 1)
        else:
            self.violations[key] = Violation(name, message, index)

    def who(self, intent_id: str) -> str:
        intent = self.intents.get(intent_id)
        return f"{intent.process.value}'s intent {intent_id}" if intent else f"intent {intent_id}"

    def the_read(self, read: _Read) -> str:
        """How a message names a read: its interval, in ops and in seconds."""
        sent, answered = self.times.get(read.invoked, 0.0), self.times.get(read.completed, 0.0)
        return f"the read of ops {read.invoked}-{read.completed} (sent {sent:.3f} s, answered {answered:.3f} s)"

    def step(self, op: Op, snapshot: SlotSnapshot | None) -> None:
        """The next op of this slot, and its snapshot of the slot if it is a read's answer."""
        self.last_index = op.index
        action = op.action
        if op.kind is _INVOKE:
            if action is _CRASH:
                # The kill happens after the invoke; anything in flight from now on is unknown.
                self.crashes.append(op.index)
            elif action is _SETTLE:
                self.settle_at = op.index
                self.decided.clear()  # from now on only the settle phase's answers decide
            elif action in _BOOKING_ACTIONS and op.details.intent_id:
                self.issued.add(op.details.intent_id)
                if self.settle_at is not None:
                    self.settle_tries[op.details.intent_id] = self.settle_tries.get(op.details.intent_id, 0) + 1
            return
        if action is _SETTLE and op.details.error:
            self.settle_error = op.details.error
        if (action is _CRASH and op.invoke_index in self.crashes
                and crash_check_of(op.details.params) is CrashCheck.NOT_RESTARTED):
            # The app's boot id says it never went down (CONTRACT.md section 4): nothing to blame on it.
            self.crashes.remove(op.invoke_index)
        if action in _BOOKING_ACTIONS:
            self.answer(op)
        if snapshot is not None:
            invoked = op.invoke_index if op.invoke_index is not None else op.index
            self.snapshot(_Read(invoked, op.index), snapshot)

    def verdict(self, terminal: bool) -> Verdict:
        """The slot's verdict so far; the terminal check is judged apart, so it can be asked at
        every step and again at the end."""
        violations = tuple(self.violations.values())
        final_state = winner = reason = None
        if terminal:
            final_state, winner, reason, no_terminal = self.terminal()
            if no_terminal is not None:
                violations += (no_terminal,)
        if violations:
            valid, reason = Validity.FAIL, None
        else:
            valid = Validity.INCONCLUSIVE if reason else Validity.PASS
        return Verdict(valid=valid, violations=violations, final_state=final_state, winner=winner,
                       snapshots_checked=self.snapshots, reason=reason)

    # --- invariant 5, at the answer ---

    def answer(self, op: Op) -> None:
        answer = op.details.answer
        intent_id = op.details.intent_id
        if op.kind is _INFO or answer is None or intent_id is None:
            return
        if answer.is_definite:
            self.decided.add(intent_id)
        told = self.told.setdefault(intent_id, _Told())
        if answer.is_confirmed:
            booking_id = answered_booking_id(op.details.body)
            if told.slot_taken_at is not None:
                self.flag(ViolationName.CONFLICTING_ANSWERS, intent_id,
                          f"{self.who(intent_id)} was told slot_taken (op {told.slot_taken_at}) and "
                          f"later confirmed (op {op.index})", op.index)
            if told.booking_id and booking_id and booking_id != told.booking_id:
                self.flag(ViolationName.CONFLICTING_ANSWERS, intent_id,
                          f"{self.who(intent_id)} was told booking {told.booking_id}, then booking "
                          f"{booking_id} (op {op.index})", op.index)
            for other, other_told in self.told.items():
                if other != intent_id and other_told.confirmed_at is not None:
                    self.flag(ViolationName.CONFLICTING_ANSWERS, "two-winners",
                              f"both {self.who(other)} (op {other_told.confirmed_at}) and "
                              f"{self.who(intent_id)} (op {op.index}) were told confirmed", op.index)
            if told.confirmed_at is None:
                told.confirmed_at, told.booking_id = op.index, booking_id
                # This intent became confirmed somewhere inside its call. A read that ended after
                # the call was sent and showed another winner contradicts it: one of the two
                # confirmations was not exclusive, or not stable. (Once per intent: the one look
                # back over the run's reads.)
                since = op.invoke_index if op.invoke_index is not None else op.index
                for read, winner in self.confirmed_reads:
                    if read.completed > since and winner != intent_id:
                        self.flag(ViolationName.ACK_NOT_HONOURED, intent_id,
                                  f"{self.who(intent_id)} was told confirmed (op {op.index}, sent at "
                                  f"op {since}) but {self.who(winner)} was the confirmed booking in "
                                  f"{self.the_read(read)}", op.index)
        elif answer is Answer.SLOT_TAKEN:
            if told.confirmed_at is not None:
                self.flag(ViolationName.CONFLICTING_ANSWERS, intent_id,
                          f"{self.who(intent_id)} was told confirmed (op {told.confirmed_at}) and "
                          f"later slot_taken (op {op.index})", op.index)
            if told.slot_taken_at is None:
                told.slot_taken_at = op.index
            if intent_id in self.seen_confirmed:
                # A 409 promises "never confirmed": no order of events excuses a read that saw it.
                _, read = self.seen_confirmed[intent_id]
                self.flag(ViolationName.REJECTED_BUT_CONFIRMED, intent_id,
                          f"{self.who(intent_id)} was told slot_taken (op {op.index}) although "
                          f"{self.the_read(read)} showed it confirmed", op.index)

    # --- invariants 1-5, at a snapshot read ---

    def snapshot(self, read: _Read, snap: SlotSnapshot) -> None:
        self.snapshots += 1
        self.last_snapshot = snap
        confirmed = snap.confirmed
        i = read.completed
        if len(confirmed) > 1:
            self.flag(ViolationName.DOUBLE_BOOKING, "slot",
                      f"{len(confirmed)} confirmed bookings on slot {snap.slot_id} in {self.the_read(read)}: "
                      + ", ".join(f"{b.id} ({self.who(b.intent_id)})" for b in confirmed), i)
        if snap.state is _FREE and confirmed:
            self.flag(ViolationName.FREE_WITH_CONFIRMED, "slot",
                      f"slot {snap.slot_id} is free but booking {confirmed[0].id} is confirmed, in "
                      f"{self.the_read(read)}", i)
        if snap.state is _BOOKED and not confirmed:
            self.flag(ViolationName.BOOKED_WITHOUT_BOOKING, "slot",
                      f"slot {snap.slot_id} is booked but no booking on it is confirmed, in "
                      f"{self.the_read(read)}", i)
        # Each confirmed booking by intent (the last row of an intent confirmed twice).
        confirmed_now = {b.intent_id: b for b in confirmed}
        self.coherence(snap, read)
        self.stability(snap, read, confirmed, confirmed_now)
        self.agreement(snap, read, confirmed, confirmed_now)
        for row in confirmed:
            self.confirmed_reads.append((read, row.intent_id))
            self.seen_confirmed.setdefault(row.intent_id, (row.id, read))

    def coherence(self, snap: SlotSnapshot, read: _Read) -> None:
        i = read.completed
        if snap.slot_id != self.fixture.slot_id:
            self.flag(ViolationName.WRONG_SLOT, "snapshot",
                      f"the snapshot is of slot {snap.slot_id}, not the fixture's {self.fixture.slot_id}", i)
        seen: set[str] = set()
        for row in snap.bookings:
            if row.intent_id in seen:
                self.flag(ViolationName.DUPLICATE_INTENT, row.intent_id,
                          f"{self.who(row.intent_id)} appears in more than one booking on the slot, in "
                          f"{self.the_read(read)}", i)
            seen.add(row.intent_id)
            intent = self.intents.get(row.intent_id)
            # `issued` holds every booking invoked before this read completed: one sent later
            # cannot be in it.
            if intent is None or row.intent_id not in self.issued:
                why = "that the harness never issued" if intent is None else "before the harness sent it"
                self.flag(ViolationName.BOOKING_WITHOUT_INTENT, row.intent_id,
                          f"booking {row.id} ({row.status.value}) carries intent {row.intent_id} {why}: "
                          f"{self.the_read(read)} shows it", i)
                continue
            if row.slot_id != intent.slot_id:
                self.flag(ViolationName.WRONG_SLOT, row.intent_id,
                          f"booking {row.id} of {self.who(row.intent_id)} names slot {row.slot_id}, "
                          f"the intent was for {intent.slot_id}", i)
            if row.customer_id != intent.customer_id:
                self.flag(ViolationName.WRONG_CUSTOMER, row.intent_id,
                          f"booking {row.id} of {self.who(row.intent_id)} names customer "
                          f"{row.customer_id}, the intent was for {intent.customer_id}", i)

    def stability(self, snap: SlotSnapshot, read: _Read, confirmed: tuple[BookingRow, ...],
                  confirmed_now: dict[str, BookingRow]) -> None:
        i = read.completed
        for intent_id, (booking_id, seen) in self.seen_confirmed.items():
            if seen.completed >= read.invoked:
                continue  # the two reads overlap: this one may have been served before that one
            row = confirmed_now.get(intent_id)
            if row is not None:
                if row.id != booking_id:
                    self.flag(ViolationName.BOOKING_ID_CHANGED, intent_id,
                              f"{self.who(intent_id)} was confirmed as booking {booking_id} in "
                              f"{self.the_read(seen)}, now as booking {row.id} in {self.the_read(read)}", i)
                continue
            now = ", ".join(r.status.value for r in snap.rows_for(intent_id)) or "absent"
            others = [b for b in confirmed if b.intent_id != intent_id]
            if others:
                self.flag(ViolationName.WINNER_FLIP, intent_id,
                          f"{self.who(intent_id)} was confirmed in {self.the_read(seen)}; in "
                          f"{self.the_read(read)} it is {now} and {self.who(others[0].intent_id)} is "
                          "confirmed", i)
                continue
            # A crash that may have struck after the first read saw the booking and before this one.
            crashes = [c for c in self.crashes if seen.invoked < c < read.completed]
            if crashes:
                self.flag(ViolationName.BOOKING_LOST_AFTER_CRASH, intent_id,
                          f"booking {booking_id} of {self.who(intent_id)} was confirmed in "
                          f"{self.the_read(seen)}; after the crash at op {crashes[0]} it is {now} in "
                          f"{self.the_read(read)}", i)
            else:
                self.flag(ViolationName.BOOKING_LOST, intent_id,
                          f"booking {booking_id} of {self.who(intent_id)} was confirmed in "
                          f"{self.the_read(seen)}; in {self.the_read(read)} it is {now}, with no crash "
                          "in between", i)

    def agreement(self, snap: SlotSnapshot, read: _Read, confirmed: tuple[BookingRow, ...],
                  confirmed_now: dict[str, BookingRow]) -> None:
        i = read.completed
        for intent_id, told in self.told.items():
            if intent_id in confirmed_now and told.slot_taken_at is not None:
                self.flag(ViolationName.REJECTED_BUT_CONFIRMED, intent_id,
                          f"{self.who(intent_id)} was told slot_taken (op {told.slot_taken_at}) but "
                          f"is confirmed in {self.the_read(read)}", i)
            # Only an answer that completed before the read was sent must be in it; one that
            # arrived while the read was in flight may have been committed after the read's view.
            if told.confirmed_at is None or told.confirmed_at >= read.invoked:
                continue
            row = confirmed_now.get(intent_id)
            others = [b for b in confirmed if b.intent_id != intent_id]
            if others:
                self.flag(ViolationName.ACK_NOT_HONOURED, intent_id,
                          f"{self.who(intent_id)} was told confirmed (op {told.confirmed_at}) before "
                          f"{self.the_read(read)}, which shows {self.who(others[0].intent_id)} confirmed", i)
            elif row is None:
                now = ", ".join(r.status.value for r in snap.rows_for(intent_id)) or "absent"
                self.flag(ViolationName.ACK_NOT_HONOURED, intent_id,
                          f"{self.who(intent_id)} was told confirmed (op {told.confirmed_at}) before "
                          f"{self.the_read(read)}, which shows it {now}", i)
            elif told.booking_id and row.id != told.booking_id:
                self.flag(ViolationName.ACK_NOT_HONOURED, intent_id,
                          f"{self.who(intent_id)} was told booking {told.booking_id} (op "
                          f"{told.confirmed_at}) before {self.the_read(read)}, which confirms booking {row.id}", i)

    # --- after settling ---

    def terminal(self) -> tuple[TerminalState | None, Process | None, str | None, Violation | None]:
        """The final state and winner, or why there is none: a reason (INCONCLUSIVE) when answers
        stayed unknown, a NO_TERMINAL_STATE violation when every intent had a definite answer."""
        snap = self.last_snapshot
        if snap is None:
            return None, None, "no snapshot read completed, so no final state could be checked", None
        for state, winner, loser in ((TerminalState.STATE_1, Process.C1, Process.C2),
                                     (TerminalState.STATE_2, Process.C2, Process.C1)):
            won = snap.rows_for(self.fixture.intent_of(winner).intent_id)
            lost = snap.rows_for(self.fixture.intent_of(loser).intent_id)
            if (snap.state is SlotState.BOOKED and len(snap.confirmed) == 1
                    and len(won) == 1 and won[0].status is BookingStatus.CONFIRMED
                    and all(r.status in (BookingStatus.REJECTED, BookingStatus.FAILED) for r in lost)):
                return state, winner, None, None
        rows = "; ".join(f"{self.who(b.intent_id)}: {b.status.value}" for b in snap.bookings) or "no bookings"
        found = f"after settling the slot is {snap.state.value} with {rows}"
        undecided = [i for i in self.fixture.intents if i.intent_id not in self.decided]
        if undecided:
            if self.settle_at is not None:
                phase = "in the settle phase"
                unknown = ", ".join(f"{i.process.value} ({self.settle_tries.get(i.intent_id, 0)} tries)"
                                    for i in undecided)
            else:
                phase, unknown = "at all", ", ".join(i.process.value for i in undecided)
            why = f"; {self.settle_error}" if self.settle_error else ""
            return None, None, (f"{found}, and no definite answer came {phase} for {unknown}: every "
                                f"answer stayed unknown{why}"), None
        return None, None, None, Violation(
            ViolationName.NO_TERMINAL_STATE,
            f"{found}: neither STATE 1 (C1 confirmed, C2 rejected/failed/absent) nor STATE 2 "
            "(the mirror), although both intents had a definite answer", self.last_index)
