"""The op model of an SC-1 run: every client call, fault, crash and snapshot read, as intervals.

Jepsen-style: an operation is an `invoke` followed (maybe) by its completion, `ok` (it happened),
`fail` (it definitely did not) or `info` (unknown: it may or may not have happened). A snapshot
read is an interval too: its invoke is recorded before the request is sent, its `ok` when the
answer arrives, so the checker can order reads and answers in real time (CONTRACT.md section 3).
The generator, client, nemesis and checker meet only here; `recorder.py` builds a history during
a run, `history_io.py` writes and reads it as JSONL. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from harness.contract import JSON, Answer, SlotSnapshot

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
    # Concurrent demand, as schedule steps; in the history each request is a send or a retry.
    RACE = "race"  # both customers' intents released at the same instant, on separate connections
    DUPLICATE = "duplicate"  # one intent delivered three times at once
    REORDER = "reorder"  # a retry overtakes its intent's earlier send, still held on the wire
    RESTART_SIMCITY = "restart_simcity"
    NO_OP = "no_op"
    LATENCY = "latency"
    JITTER = "jitter"
    DROPS = "drops"
    TIMEOUTS = "timeouts"
    PARTITION = "partition"
    CUT = "cut"
    STALL = "stall"
    HEAL = "heal"
    SNAPSHOT = "snapshot"
    # Marks the end of the chaos phase and the end of settling, so reports can show the phases.
    SETTLE = "settle"

    @property
    def is_booking(self) -> bool:
        """A booking request in the history (bursts are recorded request by request)."""
        return self in (Action.SEND_BOOK, Action.RETRY_BOOK)

    @property
    def is_demand(self) -> bool:
        """A schedule step that sends booking requests."""
        return self.is_booking or self in (Action.RACE, Action.DUPLICATE, Action.REORDER)

    @property
    def takes_intent(self) -> bool:
        """A schedule step that names one intent: all demand but the race of both."""
        return self.is_demand and self is not Action.RACE


class Hop(str, Enum):
    CLIENT_APP = "client-app"
    APP_DB = "app-db"



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
    # A read's answer: one snapshot per slot of the run, in the fixtures' order (one request).
    snapshots: tuple[SlotSnapshot, ...] = ()

    @property
    def snapshot(self) -> SlotSnapshot | None:
        """The snapshot of a one-slot read (take `History.slot_view` of a run with several)."""
        if len(self.snapshots) > 1:
            raise ValueError(f"op {self.index} read {len(self.snapshots)} slots: take History.slot_view(k)")
        return self.snapshots[0] if self.snapshots else None


@dataclass(frozen=True)
class History:
    """The ops of one run, against one fixture per independent slot (CONTRACT.md section 3)."""

    fixtures: tuple[Fixture, ...]
    ops: tuple[Op, ...] = ()

    @property
    def fixture(self) -> Fixture:
        """The fixture of a one-slot history (`slot_view(k)` gives one of a run with several)."""
        if len(self.fixtures) != 1:
            raise ValueError(f"this history attacks {len(self.fixtures)} slots: take slot_view(k)")
        return self.fixtures[0]

    def slot_view(self, k: int) -> "History":
        """Slot k (0-based) as a one-slot history: its bookings and its snapshot of every read,
        with every op that belongs to no slot (crashes, faults, the settle phase). Op indexes are
        kept, so a violation found in the view names the op of the whole history."""
        fixture = self.fixtures[k]
        mine = {i.intent_id for i in fixture.intents}
        ops = []
        for op in self.ops:
            if op.details.intent_id is not None and op.details.intent_id not in mine:
                continue
            if len(op.snapshots) > 1:
                op = replace(op, snapshots=(op.snapshots[k],))
            ops.append(op)
        return History((fixture,), tuple(ops))

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def completion_of(self, invoke: Op) -> Op | None:
        return next((o for o in self.ops if o.invoke_index == invoke.index), None)

    @property
    def snapshots(self) -> tuple[Op, ...]:
        return tuple(o for o in self.ops if o.snapshots)

    @property
    def duration_s(self) -> float:
        return self.ops[-1].time_s - self.ops[0].time_s if self.ops else 0.0


def step_of(op: Op) -> int | None:
    """The schedule step (1-based) whose invoke this is: the runner puts it in the params."""
    return dict(op.details.params).get("step") or None


def outcome_of(answer: Answer) -> OpKind:
    """The op kind an answer completes its call with: ok confirmed, info unknown, fail otherwise."""
    if answer.is_confirmed:
        return OpKind.OK
    return OpKind.FAIL if answer.is_definite else OpKind.INFO


def count_actions(ops: Iterable[Op]) -> Mapping[Action, int]:
    """How many times each action was invoked."""
    counts: dict[Action, int] = {}
    for op in ops:
        if op.kind is OpKind.INVOKE:
            counts[op.action] = counts.get(op.action, 0) + 1
    return counts
