"""What a run (or a whole certificate) actually exercised, read from the recorded history.

Counts crashes, faults of each kind and hop, retries and answers, and WHERE in a booking each crash
and fault landed:

- `before_first_booking`: no booking request had been sent yet;
- `booking_in_flight`: a booking request was between its invoke and its answer (the dangerous
  window: the app may have acted without the client hearing of it);
- `between_bookings`: requests had been sent and every one had its answer (or was given up on).

A certificate whose crashes never landed in flight has not tested crash recovery of a booking.
Pure: nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.faults import FAULT_ACTIONS
from harness.history import Action, History, Hop, OpKind

POINTS = ("before_first_booking", "booking_in_flight", "between_bookings")

Coverage = dict[str, Any]


def empty() -> Coverage:
    return {
        "runs": 0,
        "actions": 0,
        "crashes": 0,
        "crash_points": dict.fromkeys(POINTS, 0),
        "crashes_after_confirmation": 0,
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
    completed_at = {op.invoke_index: op.index for op in history.ops if op.invoke_index is not None}
    answers = {op.invoke_index: op.kind for op in history.ops if op.invoke_index is not None}
    sent: list[int] = []  # invoke indexes of booking requests so far
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
            sent.append(op.index)
            cov["actions"] += 1
            cov["bookings_sent" if op.action is Action.SEND_BOOK else "retries"] += 1
            continue
        if settling or op.action is Action.SNAPSHOT:
            continue
        cov["actions"] += 1
        point = _point(op.index, sent, completed_at)
        if op.action is Action.RESTART_SIMCITY:
            cov["crashes"] += 1
            cov["crash_points"][point] += 1
            cov["crashes_after_confirmation"] += confirmed_seen
        elif op.action in FAULT_ACTIONS:
            cov["faults"][op.action.value] += 1
            if op.details.hop is not None:
                cov["fault_hops"][op.details.hop.value] += 1
            cov["fault_points"][point] += 1
        elif op.action is Action.HEAL:
            cov["heals"] += 1
    return cov


def _answer(kind: OpKind | None) -> str:
    if kind is OpKind.OK:
        return "ok"
    if kind is OpKind.FAIL:
        return "fail"
    return "unknown"  # an `info` answer, or none at all


def _point(index: int, sent: list[int], completed_at: Mapping[int | None, int]) -> str:
    if not sent:
        return POINTS[0]
    if any(completed_at.get(i, index + 1) > index for i in sent):
        return POINTS[1]
    return POINTS[2]


def add(total: Coverage, part: Mapping[str, Any]) -> Coverage:
    """`total` + `part`, key by key (nested counts too); keys missing from `total` are taken over."""
    out = dict(total)
    for key, value in part.items():
        if isinstance(value, Mapping):
            out[key] = add(dict(out.get(key) or {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value
    return out
