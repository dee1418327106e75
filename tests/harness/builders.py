"""Hand-made histories for the checker tests: a fixture with fixed ids and a small builder."""

from __future__ import annotations

import itertools

from harness import (
    Action, BookingRow, BookingStatus, Details, Fixture, History, Hop, Intent, Op, OpKind, Process,
    Recorder, SlotSnapshot, SlotState,
)
from harness.contract import CRASH_CHECK_PARAM, CrashCheck

VENDOR = "00000000-0000-4000-8000-000000000001"
SLOT = "00000000-0000-4000-8000-000000000002"
OTHER_SLOT = "00000000-0000-4000-8000-000000000003"
CUSTOMER = {Process.C1: "00000000-0000-4000-8000-0000000000c1", Process.C2: "00000000-0000-4000-8000-0000000000c2"}
INTENT = {Process.C1: "00000000-0000-4000-8000-00000000000a", Process.C2: "00000000-0000-4000-8000-00000000000b"}
BOOKING = {Process.C1: "00000000-0000-4000-8000-0000000000b1", Process.C2: "00000000-0000-4000-8000-0000000000b2"}
STRANGER = "00000000-0000-4000-8000-0000000000ff"

FIXTURE = Fixture(
    seed="test", vendor_id=VENDOR, slot_id=SLOT,
    intents=tuple(Intent(p, INTENT[p], SLOT, CUSTOMER[p]) for p in (Process.C1, Process.C2)),
)


def row(process: Process, status: BookingStatus = BookingStatus.CONFIRMED, *, booking_id: str | None = None,
        intent_id: str | None = None, customer_id: str | None = None, slot_id: str = SLOT) -> BookingRow:
    return BookingRow(
        id=booking_id or BOOKING[process], intent_id=intent_id or INTENT[process], slot_id=slot_id,
        customer_id=customer_id or CUSTOMER[process], status=status,
        created_at="2026-11-27T12:00:00+00:00", updated_at="2026-11-27T12:00:01+00:00",
    )


def body(process: Process, status: str = "confirmed", booking_id: str | None = None) -> dict[str, object]:
    booking = {"id": booking_id or BOOKING[process], "intent_id": INTENT[process], "slot_id": SLOT,
               "customer_id": CUSTOMER[process], "status": status}
    return {"booking": booking} if status == "confirmed" else {"error": "slot_taken", "booking": booking}


class Builder:
    """Records ops with a fake clock that advances 0.1 s per op."""

    def __init__(self, fixture: Fixture = FIXTURE) -> None:
        ticks = itertools.count()
        self.rec = Recorder(fixture, clock=lambda: next(ticks) / 10)

    def invoke(self, process: Process, *, retry: bool = False) -> Op:
        action = Action.RETRY_BOOK if retry else Action.SEND_BOOK
        return self.rec.invoke(process, action, Details(intent_id=INTENT[process]))

    def answer(self, invoke: Op, status: int | None, *, booking_id: str | None = None,
               error: str | None = None) -> Op:
        payload = None
        if status in (200, 201):
            payload = body(invoke.process, booking_id=booking_id)
        elif status == 409:
            payload = body(invoke.process, "rejected")
        return self.rec.booking_answer(invoke, status=status, body=payload, latency_ms=12.5, error=error)

    def book(self, process: Process, status: int | None, *, retry: bool = False,
             booking_id: str | None = None) -> Op:
        return self.answer(self.invoke(process, retry=retry), status, booking_id=booking_id)

    def snap(self, state: SlotState, *rows: BookingRow, slot_id: str = SLOT) -> Op:
        return self.rec.snapshot(SlotSnapshot(slot_id, VENDOR, state, tuple(rows)))

    def crash(self, check: CrashCheck | None = None) -> Op:
        """A crash; `check`: what the app's boot id said of it (None: a history from before)."""
        invoke = self.rec.invoke(Process.NEMESIS, Action.RESTART_SIMCITY)
        params = ((CRASH_CHECK_PARAM, check.value),) if check else ()
        return self.rec.complete(invoke, OpKind.OK, Details(latency_ms=830.0, params=params))

    def fault(self, action: Action, hop: Hop, **params: int) -> Op:
        invoke = self.rec.invoke(Process.NEMESIS, action, Details(hop=hop, params=tuple(params.items())))
        return self.rec.complete(invoke, OpKind.OK, invoke.details)

    def heal(self, hop: Hop | None = None) -> Op:
        invoke = self.rec.invoke(Process.NEMESIS, Action.HEAL, Details(hop=hop))
        return self.rec.complete(invoke, OpKind.OK, invoke.details)

    def read_invoke(self) -> Op:
        """The first half of a read whose interval spans the ops recorded until `read_ok`."""
        return self.rec.read_invoke()

    def read_ok(self, invoke: Op, state: SlotState, *rows: BookingRow) -> Op:
        return self.rec.read_ok(invoke, SlotSnapshot(SLOT, VENDOR, state, tuple(rows)))

    def settle(self) -> Op:
        """The start of the settle phase: only answers after it decide an intent."""
        return self.rec.invoke(Process.CHECKER, Action.SETTLE)

    def history(self) -> History:
        return self.rec.history()


def state_1(b: Builder) -> Builder:
    """The plain legal run: C1 wins, C2 is rejected."""
    b.book(Process.C1, 201)
    b.snap(SlotState.BOOKED, row(Process.C1))
    b.book(Process.C2, 409)
    b.snap(SlotState.BOOKED, row(Process.C1), row(Process.C2, BookingStatus.REJECTED))
    return b


def passing_history() -> History:
    """A legal run with a fault, a crash and a heal: STATE 1."""
    b = Builder()
    b.fault(Action.LATENCY, Hop.APP_DB, latency_ms=800)
    state_1(b)
    b.crash()
    b.heal(Hop.APP_DB)
    b.snap(SlotState.BOOKED, row(Process.C1), row(Process.C2, BookingStatus.REJECTED))
    return b.history()


def failing_history() -> History:
    """A crash that loses C1's confirmed booking and gives the slot to C2 (WINNER_FLIP)."""
    b = Builder()
    b.fault(Action.PARTITION, Hop.CLIENT_APP)
    b.book(Process.C1, 201)
    b.snap(SlotState.BOOKED, row(Process.C1))
    b.crash()
    b.book(Process.C2, 201)  # the app lost C1's booking in the crash and gave the slot away
    b.snap(SlotState.BOOKED, row(Process.C1, BookingStatus.FAILED), row(Process.C2))
    return b.history()


SLOT_2 = "00000000-0000-4000-8000-000000000022"
INTENT_2 = {Process.C1: "00000000-0000-4000-8000-00000000021a", Process.C2: "00000000-0000-4000-8000-00000000022a"}
BOOKING_2 = {Process.C1: "00000000-0000-4000-8000-0000000002b1", Process.C2: "00000000-0000-4000-8000-0000000002b2"}
FIXTURE_2 = Fixture(seed="test", vendor_id=VENDOR, slot_id=SLOT_2,
                    intents=tuple(Intent(p, INTENT_2[p], SLOT_2, CUSTOMER[p]) for p in (Process.C1, Process.C2)))


def two_slot_history() -> History:
    """Two independent slots in one run (`--slots 2`): slot 1 legal (C1 wins), slot 2 raced into a
    double booking, both replies "confirmed"."""
    ticks = itertools.count()
    rec = Recorder((FIXTURE, FIXTURE_2), clock=lambda: next(ticks) / 20)
    sends = [rec.invoke(i.process, Action.SEND_BOOK, Details(intent_id=i.intent_id))
             for f in (FIXTURE, FIXTURE_2) for i in f.intents]
    for send in sends:
        on_2 = send.details.intent_id in INTENT_2.values()
        if not on_2 and send.process is Process.C2:
            rec.booking_answer(send, status=409, body=body(Process.C2, "rejected"))
            continue
        booking = {"id": (BOOKING_2 if on_2 else BOOKING)[send.process], "intent_id": send.details.intent_id,
                   "slot_id": SLOT_2 if on_2 else SLOT, "customer_id": CUSTOMER[send.process], "status": "confirmed"}
        rec.booking_answer(send, status=201, body={"booking": booking})
    read = rec.read_invoke()
    rows_2 = tuple(row(p, booking_id=BOOKING_2[p], intent_id=INTENT_2[p], slot_id=SLOT_2)
                   for p in (Process.C1, Process.C2))
    rec.read_ok(read, SlotSnapshot(SLOT, VENDOR, SlotState.BOOKED, (row(Process.C1), row(Process.C2, BookingStatus.REJECTED))),
                SlotSnapshot(SLOT_2, VENDOR, SlotState.BOOKED, rows_2))
    return rec.history()


def slot_fixture(n: int) -> Fixture:
    """Slot n's fixture in a run of several: its own vendor, slot, customers and intents (ids
    differ per slot)."""
    def uid(kind: int, p: int = 0) -> str:
        return f"00000000-0000-4000-{8000 + n:04x}-{kind:06x}{p:06x}"

    slot = uid(2)
    return Fixture(seed="test", vendor_id=uid(1), slot_id=slot,
                   intents=tuple(Intent(proc, uid(0xA, k), slot, uid(0xC, k))
                                 for k, proc in ((1, Process.C1), (2, Process.C2))))


def slot_booking_id(f: Fixture, p: Process) -> str:
    """The id of p's booking on a `slot_fixture`."""
    return f.intent_of(p).intent_id[:-6] + "b0000" + ("1" if p is Process.C1 else "2")
