"""CONTRACT.md in code: what SimCity may assume about any target app and its database.

The reading of a `POST /bookings` answer (section 1), the one snapshot request and the parsing of
its answer (section 2). The client, the recorder, the checker and the REST stand-in's tests all
take the contract from here, so it is written down once. Nothing here does I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.errors import MalformedSnapshotError

JSON = Any  # a decoded JSON value; kept opaque because app bodies are whatever the app sent

# The one snapshot (section 2): the slot and every booking on it, in ONE request, so ONE statement
# in one transaction: it can never be torn between a booking row and the slot's state.
SNAPSHOT_SELECT = "id,vendor_id,state,bookings(id,intent_id,slot_id,customer_id,status,created_at,updated_at)"


def snapshot_params(slot_ids: Sequence[str]) -> dict[str, str]:
    """The query string of the snapshot of these slots: `GET /slots?<these>`. One slot is read
    exactly as section 2 writes it (`id=eq.`); several in the same one request (`id=in.(...)`)."""
    ids = f"eq.{slot_ids[0]}" if len(slot_ids) == 1 else f"in.({','.join(slot_ids)})"
    return {"id": ids, "select": SNAPSHOT_SELECT}


def parse_snapshots(payload: JSON, slot_ids: Sequence[str]) -> tuple[SlotSnapshot, ...]:
    """The answer to `snapshot_params(slot_ids)`: one snapshot per slot, in `slot_ids` order.
    A slot missing from the answer, or one answered twice, is a MalformedSnapshotError."""
    if not isinstance(payload, list):
        raise MalformedSnapshotError(f"snapshot: expected an array, got {payload!r}")
    by_id: dict[str, SlotSnapshot] = {}
    for n, element in enumerate(payload):
        snapshot = parse_snapshot([element])
        if snapshot.slot_id in by_id:
            raise MalformedSnapshotError(f"snapshot[{n}]: slot {snapshot.slot_id} answered twice")
        by_id[snapshot.slot_id] = snapshot
    missing = [s for s in slot_ids if s not in by_id]
    if missing:
        raise MalformedSnapshotError(f"snapshot: slot(s) {', '.join(missing)} missing from the answer")
    return tuple(by_id[s] for s in slot_ids)


class SlotState(str, Enum):
    FREE = "free"
    BOOKED = "booked"


class BookingStatus(str, Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FAILED = "failed"


# Read on every snapshot's rows; a member read through its class costs a lookup each time.
_CONFIRMED = BookingStatus.CONFIRMED

class Answer(str, Enum):
    """What `POST /bookings` told a client, per CONTRACT.md section 1."""

    CONFIRMED = "confirmed"  # 201
    REPLAYED = "replayed"  # 200: replay of a decided intent, confirmed
    SLOT_TAKEN = "slot_taken"  # 409
    INTENT_MISMATCH = "intent_mismatch"  # 422
    BAD_REQUEST = "bad_request"  # 400
    NOT_FOUND = "not_found"  # 404
    UNKNOWN = "unknown"  # 5xx, reset, timeout, or anything the contract does not define

    @property
    def is_confirmed(self) -> bool:
        return self in (Answer.CONFIRMED, Answer.REPLAYED)

    @property
    def is_definite(self) -> bool:
        """It says what happened (confirmed, or definitely not): everything but UNKNOWN."""
        return self is not Answer.UNKNOWN


_DEFINITE_FAILURES = {
    409: Answer.SLOT_TAKEN,
    422: Answer.INTENT_MISMATCH,
    400: Answer.BAD_REQUEST,
    404: Answer.NOT_FOUND,
}


def classify_booking_answer(status: int | None, body: JSON = None) -> Answer:
    """The contract's reading of an HTTP answer; `status=None` means no answer (reset, timeout).

    A 200/201 counts as confirmed only if its body says so: a success code with a body the contract
    does not define proves nothing about the database, so it stays unknown.
    """
    if status in (200, 201):
        booking = body.get("booking") if isinstance(body, dict) else None
        if isinstance(booking, dict) and booking.get("status") == BookingStatus.CONFIRMED.value:
            return Answer.CONFIRMED if status == 201 else Answer.REPLAYED
        return Answer.UNKNOWN
    if status is not None and status in _DEFINITE_FAILURES:
        return _DEFINITE_FAILURES[status]
    return Answer.UNKNOWN


def answered_booking_id(body: JSON) -> str | None:
    """The booking id an answer body names, if any."""
    booking = body.get("booking") if isinstance(body, dict) else None
    booking_id = booking.get("id") if isinstance(booking, dict) else None
    return booking_id if isinstance(booking_id, str) else None



# --- snapshots -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingRow:
    id: str
    intent_id: str
    slot_id: str
    customer_id: str
    status: BookingStatus
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class SlotSnapshot:
    """The database truth about the slot, read in one REST request (one transaction)."""

    slot_id: str
    vendor_id: str
    state: SlotState
    bookings: tuple[BookingRow, ...] = ()

    @property
    def confirmed(self) -> tuple[BookingRow, ...]:
        return tuple([b for b in self.bookings if b.status is _CONFIRMED])

    def rows_for(self, intent_id: str) -> tuple[BookingRow, ...]:
        return tuple(b for b in self.bookings if b.intent_id == intent_id)

    def to_json(self) -> dict[str, JSON]:
        """The REST shape of CONTRACT.md section 2 (one element of the array PostgREST returns)."""
        return {
            "id": self.slot_id,
            "vendor_id": self.vendor_id,
            "state": self.state.value,
            "bookings": [
                {
                    "id": b.id, "intent_id": b.intent_id, "slot_id": b.slot_id,
                    "customer_id": b.customer_id, "status": b.status.value,
                    "created_at": b.created_at, "updated_at": b.updated_at,
                }
                for b in self.bookings
            ],
        }


def parse_snapshot(payload: JSON) -> SlotSnapshot:
    """Parse the JSON of `GET /slots?id=eq.<slot>&select=...,bookings(...)`.

    Accepts the array PostgREST returns (exactly one slot) or the bare object. Anything else raises
    MalformedSnapshotError naming the exact field, because a checker fed a half-parsed snapshot
    could pass a broken app.
    """
    if isinstance(payload, list):
        if len(payload) != 1:
            raise MalformedSnapshotError(f"snapshot: expected exactly one slot, got {len(payload)}")
        payload, where = payload[0], "snapshot[0]"
    else:
        where = "snapshot"
    slot = _object(payload, where)
    bookings = slot.get("bookings")
    if not isinstance(bookings, list):
        raise MalformedSnapshotError(f"{where}.bookings: expected an array, got {bookings!r}")
    return SlotSnapshot(
        slot_id=_uuid(slot, "id", where),
        vendor_id=_uuid(slot, "vendor_id", where),
        state=_enum(SlotState, slot, "state", where),
        bookings=tuple(_parse_row(row, f"{where}.bookings[{i}]") for i, row in enumerate(bookings)),
    )


def _parse_row(row: JSON, where: str) -> BookingRow:
    obj = _object(row, where)
    return BookingRow(
        id=_uuid(obj, "id", where),
        intent_id=_uuid(obj, "intent_id", where),
        slot_id=_uuid(obj, "slot_id", where),
        customer_id=_uuid(obj, "customer_id", where),
        status=_enum(BookingStatus, obj, "status", where),
        created_at=_optional_str(obj, "created_at", where),
        updated_at=_optional_str(obj, "updated_at", where),
    )


def _object(value: JSON, where: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise MalformedSnapshotError(f"{where}: expected an object, got {value!r}")
    return value


def _uuid(obj: dict[str, JSON], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedSnapshotError(f"{where}.{key}: expected a UUID string, got {value!r}")
    try:
        uuid.UUID(value)
    except ValueError:
        raise MalformedSnapshotError(f"{where}.{key}: not a UUID: {value!r}") from None
    return value


def _enum(kind: type[Enum], obj: dict[str, JSON], key: str, where: str) -> Any:
    value = obj.get(key)
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise MalformedSnapshotError(f"{where}.{key}: expected one of {allowed}, got {value!r}") from None


def _optional_str(obj: dict[str, JSON], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedSnapshotError(f"{where}.{key}: expected a timestamp string, got {value!r}")
    return value


# --- section 4: a crash, verified by the app's boot id -----------------------------------------

# The crash op's param that says what the boot id showed.
CRASH_CHECK_PARAM = "boot_id"


class CrashCheck(str, Enum):
    """What the app's optional /health `boot_id` says of a crash: a new id proves the app started
    again; the same id proves it did not (the crash does not count); no id leaves it unverified,
    unless the stack watched the crash itself (`Stack.watches_crashes`: the old processes gone, a
    new one started), which proves it without the id."""

    RESTARTED = "changed"
    NOT_RESTARTED = "unchanged"
    UNVERIFIED = "not given"
    WATCHED = "watched"


def crash_check(before: str | None, after: str | None) -> CrashCheck:
    """The boot id before the kill and once the app answers again."""
    if before is None or after is None:
        return CrashCheck.UNVERIFIED
    return CrashCheck.RESTARTED if before != after else CrashCheck.NOT_RESTARTED


def crash_check_of(params: Sequence[tuple[str, Any]]) -> CrashCheck | None:
    """The check a completed crash op recorded (None: recorded before SimCity checked)."""
    value = dict(params).get(CRASH_CHECK_PARAM)
    try:
        return CrashCheck(value) if value is not None else None
    except ValueError:
        return None
