"""What a run (or a whole certificate) actually exercised, read from the recorded history.

Counts crashes, faults of each kind and hop, retries and answers, and WHERE in a booking each crash
and fault landed, judged from outside as a client can (the app's own steps are invisible; the
database truth read after the strike tells whether a request in flight had committed):

- `before_first_booking`: no booking request had been sent yet;
- `before_commit`: a request deciding its intent was in flight, and the first read sent after the
  strike shows that intent undecided (absent or pending): the app had not committed it;
- `after_commit_before_answer`: such a request was in flight and that read shows the intent decided:
  the app had committed, the client had not heard (the most dangerous window);
- `during_replay`: only replays were in flight (requests of intents already decided when sent);
- `between_bookings`: requests had been sent and every one had its answer (or was given up on).

A certificate whose crashes never landed between a commit and its answer has not tested crash
recovery of a booking. Pure: nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.faults import FAULT_ACTIONS
from harness.contract import BookingStatus, CrashCheck, crash_check_of
from harness.history import Action, History, Hop, Op, OpKind

POINTS = ("before_first_booking", "before_commit", "after_commit_before_answer", "during_replay",
          "between_bookings")

Coverage = dict[str, Any]


def empty() -> Coverage:
    return {
        "runs": 0,
        "actions": 0,
        "crashes": 0,
        "crash_points": dict.fromkeys(POINTS, 0),
        "crashes_after_confirmation": 0,
        # By the app's boot id (CONTRACT.md section 4): restarts that left it running (not counted
        # as crashes), and crashes it gave no id to prove; crashes the stack saw happen itself.
        "crashes_not_restarted": 0,
        "crashes_unverified": 0,
        "crashes_watched": 0,
        "faults": {a.value: 0 for a in sorted(FAULT_ACTIONS, key=lambda a: a.value)},
        "fault_hops": {h.value: 0 for h in Hop},
        "fault_points": dict.fromkeys(POINTS, 0),
        "heals": 0,
        "bookings_sent": 0,
        "retries": 0,
        "settle_retries": 0,
        "answers": {"ok": 0, "fail": 0, "unknown": 0},
    }


def of_history(history: History) -> Coverage:
    cov = empty()
    cov["runs"] = 1
    answers = {op.invoke_index: op.kind for op in history.ops if op.invoke_index is not None}
    crash_checks = {op.invoke_index: crash_check_of(op.details.params) for op in history.ops
                    if op.action is Action.RESTART_SIMCITY and op.invoke_index is not None}
    landing = _Landing(history)
    confirmed_seen = False
    settling = False
    for op in history.ops:
        if op.kind is not OpKind.INVOKE:
            if op.action.is_booking and op.kind is OpKind.OK:
                confirmed_seen = True
            continue
        if op.action is Action.SETTLE:
            settling = True
            continue
        if op.action.is_booking:
            cov["answers"][_answer(answers.get(op.index))] += 1
            if settling:
                cov["settle_retries"] += 1
                continue
            cov["actions"] += 1
            cov["bookings_sent" if op.action is Action.SEND_BOOK else "retries"] += 1
            continue
        if settling or op.action is Action.SNAPSHOT:
            continue
        cov["actions"] += 1
        if op.action is Action.RESTART_SIMCITY:
            check = crash_checks.get(op.index)
            if check is CrashCheck.NOT_RESTARTED:
                cov["crashes_not_restarted"] += 1
                continue
            cov["crashes_unverified"] += check is CrashCheck.UNVERIFIED
            cov["crashes_watched"] += check is CrashCheck.WATCHED
            cov["crashes"] += 1
            cov["crash_points"][landing.at(op.index)] += 1
            cov["crashes_after_confirmation"] += confirmed_seen
        elif op.action in FAULT_ACTIONS:
            cov["faults"][op.action.value] += 1
            if op.details.hop is not None:
                cov["fault_hops"][op.details.hop.value] += 1
            cov["fault_points"][landing.at(op.index)] += 1
        elif op.action is Action.HEAL:
            cov["heals"] += 1
    return cov


def _answer(kind: OpKind | None) -> str:
    if kind is OpKind.OK:
        return "ok"
    if kind is OpKind.FAIL:
        return "fail"
    return "unknown"  # an `info` answer, or none at all


_DECIDED = (BookingStatus.CONFIRMED, BookingStatus.REJECTED)


class _Landing:
    """Where a strike at op `index` landed against the booking requests in flight then."""

    def __init__(self, history: History) -> None:
        self.completed_at = {op.invoke_index: op.index for op in history.ops if op.invoke_index is not None}
        self.slot_of = {i.intent_id: k for k, f in enumerate(history.fixtures) for i in f.intents}
        self.bookings = [op for op in history.ops if op.kind is OpKind.INVOKE and op.action.is_booking]
        self.reads = [op for op in history.ops if op.snapshots]  # completions, in order
        # The op at which each intent was first decided: a definite answer, or a read showing it.
        self.decided_at: dict[str, int] = {}
        for op in history.ops:
            if op.details.intent_id is not None and op.kind in (OpKind.OK, OpKind.FAIL):
                self.decided_at.setdefault(op.details.intent_id, op.index)
            elif op.snapshots:
                for intent_id in self.slot_of:
                    if intent_id not in self.decided_at and self.decided_in(op, intent_id):
                        self.decided_at[intent_id] = op.index

    def decided_in(self, read: Op, intent_id: str) -> bool:
        slot = self.slot_of.get(intent_id)
        if slot is None or slot >= len(read.snapshots):
            return False
        return any(r.status in _DECIDED for r in read.snapshots[slot].rows_for(intent_id))

    def decided_before(self, intent_id: str, index: int) -> bool:
        """A definite answer, or a read showing it decided, completed before op `index`."""
        return self.decided_at.get(intent_id, index) < index

    def at(self, index: int) -> str:
        sent = [b for b in self.bookings if b.index < index]
        if not sent:
            return "before_first_booking"
        in_flight = [b for b in sent if self.completed_at.get(b.index, index + 1) > index]
        if not in_flight:
            return "between_bookings"
        deciding = [b for b in in_flight if b.details.intent_id and not self.decided_before(b.details.intent_id, b.index)]
        if not deciding:
            return "during_replay"
        after = next((r for r in self.reads if (r.invoke_index if r.invoke_index is not None else r.index) > index),
                     None)
        if after is not None and any(self.decided_in(after, b.details.intent_id or "") for b in deciding):
            return "after_commit_before_answer"
        return "before_commit"


def add(total: Coverage, part: Mapping[str, Any]) -> Coverage:
    """`total` + `part`, key by key (nested counts too); keys missing from `total` are taken over."""
    out = dict(total)
    for key, value in part.items():
        if isinstance(value, Mapping):
            out[key] = add(dict(out.get(key) or {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value
    return out
