"""The recorded history of one SC-1 run: every client call, fault, crash and snapshot, in order.

Jepsen-style: an operation is an `invoke` followed (maybe) by its completion, `ok` (it happened),
`fail` (it definitely did not) or `info` (unknown: it may or may not have happened). The generator,
client, nemesis and checker meet only here, so a history written to `history.jsonl` can be
re-checked and rendered without the stack that produced it. Nothing here does I/O.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from harness.errors import HistoryFormatError, MalformedSnapshotError

FORMAT_VERSION = 1

JSON = Any  # a decoded JSON value; kept opaque because app bodies are whatever the app sent


class OpKind(str, Enum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"  # outcome unknown: never counted as a success nor as a failure


class Process(str, Enum):
    C1 = "C1"
    C2 = "C2"
    NEMESIS = "nemesis"
    CHECKER = "checker"


class Action(str, Enum):
    SEND_BOOK = "send_book"
    RETRY_BOOK = "retry_book"
    RESTART_SIMCITY = "restart_simcity"
    NO_OP = "no_op"
    LATENCY = "latency"
    JITTER = "jitter"
    DROPS = "drops"
    TIMEOUTS = "timeouts"
    PARTITION = "partition"
    HEAL = "heal"
    SNAPSHOT = "snapshot"
    # Marks the end of the chaos phase and the end of settling, so reports can show the phases.
    SETTLE = "settle"

    @property
    def is_booking(self) -> bool:
        return self in (Action.SEND_BOOK, Action.RETRY_BOOK)

    @property
    def is_fault(self) -> bool:
        return self in FAULT_ACTIONS


FAULT_ACTIONS = frozenset(
    {Action.LATENCY, Action.JITTER, Action.DROPS, Action.TIMEOUTS, Action.PARTITION}
)


class Hop(str, Enum):
    CLIENT_APP = "client-app"
    APP_DB = "app-db"


class SlotState(str, Enum):
    FREE = "free"
    BOOKED = "booked"


class BookingStatus(str, Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FAILED = "failed"


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
    def kind(self) -> OpKind:
        if self in (Answer.CONFIRMED, Answer.REPLAYED):
            return OpKind.OK
        if self is Answer.UNKNOWN:
            return OpKind.INFO
        return OpKind.FAIL

    @property
    def is_confirmed(self) -> bool:
        return self.kind is OpKind.OK


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
        return tuple(b for b in self.bookings if b.status is BookingStatus.CONFIRMED)

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


# --- fixture and operations --------------------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    """One booking intent the harness issues: its id is reused by every retry."""

    process: Process
    intent_id: str
    slot_id: str
    customer_id: str


@dataclass(frozen=True)
class Fixture:
    """What `POST /e2e/fixtures` created, and the two intents built on it."""

    seed: str
    vendor_id: str
    slot_id: str
    intents: tuple[Intent, ...]

    def intent_of(self, process: Process) -> Intent:
        for intent in self.intents:
            if intent.process is process:
                return intent
        raise KeyError(process)

    def by_intent_id(self, intent_id: str) -> Intent | None:
        return next((i for i in self.intents if i.intent_id == intent_id), None)


@dataclass(frozen=True)
class Details:
    """What an operation carried and got back. Request headers are deliberately not a field:
    they hold the service key, and a history is written to disk."""

    intent_id: str | None = None
    hop: Hop | None = None
    params: tuple[tuple[str, int], ...] = ()
    status: int | None = None
    body: JSON = None
    answer: Answer | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Op:
    """One entry of the history. A completion names its invoke by `invoke_index`, because
    fire-and-forget lets one process have several calls in flight."""

    index: int
    kind: OpKind
    process: Process
    action: Action
    time_s: float  # monotonic seconds since the start of the run
    details: Details = field(default_factory=Details)
    invoke_index: int | None = None
    snapshot: SlotSnapshot | None = None

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "index": self.index, "kind": self.kind.value, "process": self.process.value,
            "action": self.action.value, "time_s": self.time_s,
        }
        if self.invoke_index is not None:
            out["invoke_index"] = self.invoke_index
        details = _details_to_json(self.details)
        if details:
            out["details"] = details
        if self.snapshot is not None:
            out["snapshot"] = self.snapshot.to_json()
        return out

    @classmethod
    def from_json(cls, obj: JSON) -> "Op":
        data = _record(obj, "op")
        try:
            return cls(
                index=_int(data["index"], "index"),
                kind=OpKind(data["kind"]),
                process=Process(data["process"]),
                action=Action(data["action"]),
                time_s=float(data["time_s"]),
                details=_details_from_json(data.get("details", {})),
                invoke_index=_int(data["invoke_index"], "invoke_index") if "invoke_index" in data else None,
                snapshot=parse_snapshot(data["snapshot"]) if "snapshot" in data else None,
            )
        except (KeyError, ValueError, TypeError, MalformedSnapshotError) as exc:
            raise HistoryFormatError(f"bad op {obj!r}: {exc}") from None


def _details_to_json(d: Details) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    if d.intent_id is not None:
        out["intent_id"] = d.intent_id
    if d.hop is not None:
        out["hop"] = d.hop.value
    if d.params:
        out["params"] = dict(d.params)
    for key in ("status", "body", "latency_ms", "error"):
        if getattr(d, key) is not None:
            out[key] = getattr(d, key)
    if d.answer is not None:
        out["answer"] = d.answer.value
    return out


def _details_from_json(obj: JSON) -> Details:
    data = _record(obj, "details")
    return Details(
        intent_id=data.get("intent_id"),
        hop=Hop(data["hop"]) if "hop" in data else None,
        params=tuple((str(k), _int(v, k)) for k, v in _record(data.get("params", {}), "params").items()),
        status=_int(data["status"], "status") if "status" in data else None,
        body=data.get("body"),
        answer=Answer(data["answer"]) if "answer" in data else None,
        latency_ms=data.get("latency_ms"),
        error=data.get("error"),
    )


def _record(obj: JSON, what: str) -> dict[str, JSON]:
    if not isinstance(obj, dict):
        raise HistoryFormatError(f"{what}: expected an object, got {obj!r}")
    return obj


def _int(value: JSON, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HistoryFormatError(f"{what}: expected an integer, got {value!r}")
    return value


# --- the history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    fixture: Fixture
    ops: tuple[Op, ...] = ()

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def completion_of(self, invoke: Op) -> Op | None:
        return next((o for o in self.ops if o.invoke_index == invoke.index), None)

    @property
    def snapshots(self) -> tuple[Op, ...]:
        return tuple(o for o in self.ops if o.snapshot is not None)

    @property
    def duration_s(self) -> float:
        return self.ops[-1].time_s - self.ops[0].time_s if self.ops else 0.0

    def to_jsonl(self) -> str:
        """A header line (format version, fixture), then one line per op."""
        f = self.fixture
        header = {
            "type": "header", "version": FORMAT_VERSION, "seed": f.seed,
            "vendor_id": f.vendor_id, "slot_id": f.slot_id,
            "intents": [
                {"process": i.process.value, "intent_id": i.intent_id, "slot_id": i.slot_id,
                 "customer_id": i.customer_id}
                for i in f.intents
            ],
        }
        lines = [header] + [{"type": "op", **op.to_json()} for op in self.ops]
        return "".join(json.dumps(line, sort_keys=True, allow_nan=False) + "\n" for line in lines)

    @classmethod
    def from_jsonl(cls, text: str) -> "History":
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise HistoryFormatError(f"history line {number}: not JSON: {exc}") from None
        if not records or _record(records[0], "header").get("type") != "header":
            raise HistoryFormatError("history: the first line must be the header")
        header = records[0]
        if header.get("version") != FORMAT_VERSION:
            raise HistoryFormatError(f"history: unsupported version {header.get('version')!r}")
        try:
            fixture = Fixture(
                seed=str(header["seed"]), vendor_id=str(header["vendor_id"]),
                slot_id=str(header["slot_id"]),
                intents=tuple(
                    Intent(Process(i["process"]), str(i["intent_id"]), str(i["slot_id"]),
                           str(i["customer_id"]))
                    for i in header["intents"]
                ),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise HistoryFormatError(f"history header: {exc!r}") from None
        ops = []
        for record in records[1:]:
            if _record(record, "op").get("type") != "op":
                raise HistoryFormatError(f"history: unexpected record {record!r}")
            ops.append(Op.from_json({k: v for k, v in record.items() if k != "type"}))
        return cls(fixture, tuple(ops))


class Recorder:
    """Appends ops with increasing indexes and monotonic time offsets; the runner's only way to
    write the history. Single-threaded use (one asyncio loop) is assumed."""

    def __init__(self, fixture: Fixture, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.fixture = fixture
        self._clock = clock
        self._start = clock()
        self._ops: list[Op] = []

    def _append(self, **fields: Any) -> Op:
        elapsed = self._clock() - self._start
        if not math.isfinite(elapsed):
            raise ValueError("clock returned a non-finite time")
        op = Op(index=len(self._ops), time_s=elapsed, **fields)
        self._ops.append(op)
        return op

    def invoke(self, process: Process, action: Action, details: Details = Details()) -> Op:
        if action.is_booking and details.intent_id is None:
            # Without it the checker would take the booking this call creates for an unknown one.
            raise ValueError(f"a {action.value} invoke must carry its intent_id")
        return self._append(kind=OpKind.INVOKE, process=process, action=action, details=details)

    def complete(self, invoke: Op, kind: OpKind, details: Details = Details(),
                 snapshot: SlotSnapshot | None = None) -> Op:
        if invoke.kind is not OpKind.INVOKE:
            raise ValueError(f"op {invoke.index} is not an invoke")
        return self._append(kind=kind, process=invoke.process, action=invoke.action,
                            details=details, invoke_index=invoke.index, snapshot=snapshot)

    def booking_answer(self, invoke: Op, *, status: int | None, body: JSON = None,
                       latency_ms: float | None = None, error: str | None = None) -> Op:
        """Record the answer to a booking invoke, classified per the contract."""
        answer = classify_booking_answer(status, body)
        details = replace(invoke.details, status=status, body=body, answer=answer,
                          latency_ms=latency_ms, error=error)
        return self.complete(invoke, answer.kind, details)

    def snapshot(self, snapshot: SlotSnapshot) -> Op:
        """A snapshot read: recorded as one invoke/ok pair by the checker process."""
        invoke = self.invoke(Process.CHECKER, Action.SNAPSHOT)
        return self.complete(invoke, OpKind.OK, snapshot=snapshot)

    def history(self) -> History:
        return History(self.fixture, tuple(self._ops))


def count_actions(ops: Iterable[Op]) -> Mapping[Action, int]:
    """How many times each action was invoked."""
    counts: dict[Action, int] = {}
    for op in ops:
        if op.kind is OpKind.INVOKE:
            counts[op.action] = counts.get(op.action, 0) + 1
    return counts
