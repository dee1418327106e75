"""The terminal text of one SC-1 run: the PASS summary, the INCONCLUSIVE reason, or the FAIL
forensic snapshot. The HTML page embeds it too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness import coverage
from harness.checker import TerminalState, Verdict
from harness.faults import FAULT_ACTIONS
from harness.history import Action, History, Op, OpKind, count_actions


def crash_note(cov: Mapping[str, Any]) -> str:
    """What the app's boot id (CONTRACT.md section 4) says of the crashes counted."""
    notes = []
    if cov.get("crashes_not_restarted"):
        notes.append(f"{cov['crashes_not_restarted']} more restart(s) left the app running: its boot_id did not "
                     "change, so they are not counted")
    unverified = cov.get("crashes_unverified", 0)
    if cov["crashes"] and unverified == cov["crashes"]:
        notes.append("unverified: the app's /health gives no boot_id")
    elif unverified:
        notes.append(f"{unverified} unverified: no boot_id")
    elif cov["crashes"]:
        watched = cov.get("crashes_watched", 0)
        if not watched:
            notes.append("each verified by a new boot_id")
        else:
            by_id = cov["crashes"] - watched
            notes.append((f"{by_id} verified by a new boot_id, " if by_id else "") +
                         f"{watched} watched by SimCity itself: every process of the app gone, a new one listening")
    return f" ({'; '.join(notes)})" if notes else ""


def render_text(history: History, verdict: Verdict, *, replay_command: str = "",
                context_ops: int = 5) -> str:
    """The PASS summary, the INCONCLUSIVE reason, or the FAIL forensic snapshot, as plain text."""
    counts = count_actions(history.ops)
    answers = answer_counts(history)
    cov = coverage.of_history(history)
    figures = (
        f"actions: {sum(n for a, n in counts.items() if a is not Action.SNAPSHOT)} "
        f"({', '.join(f'{a.value} {n}' for a, n in counts.items() if a is not Action.SNAPSHOT)})\n"
        f"faults: {sum(n for a, n in counts.items() if a in FAULT_ACTIONS)}, "
        f"heals: {counts.get(Action.HEAL, 0)}, crashes: {cov['crashes']}{crash_note(cov)}\n"
        f"answers: ok {answers[OpKind.OK]}, fail {answers[OpKind.FAIL]}, unknown {answers[OpKind.INFO]}\n"
        f"snapshots checked: {verdict.snapshots_checked}, duration: {history.duration_s:.2f}s\n"
        f"where crashes landed: {_points(cov['crash_points'])}; faults: {_points(cov['fault_points'])}"
    )
    slots = len(history.fixtures)
    if verdict.passed:
        if slots > 1:
            outcomes = ", ".join(f"slot {n} {state_text(state)} ({winner.value if winner else '-'})"
                                 for n, (state, winner) in enumerate(verdict.slot_outcomes, 1))
            return f"SC-1 PASS: {slots} slots, each in a terminal state: {outcomes}\n{figures}\n"
        winner = verdict.winner.value if verdict.winner else "none"
        return f"SC-1 PASS: final state {state_text(verdict.final_state)}, winner {winner}\n{figures}\n"
    last = history.ops[-1].index if history.ops else 0
    if not verdict.failed:
        lines = [f"SC-1 INCONCLUSIVE (no verdict on the app): {verdict.reason}", ""]
        for k in range(slots):
            lines += [*_forensic_snapshot(slot_history(history, k), last), ""]
        lines.append(figures)
        if replay_command:
            lines += ["", f"replay: {replay_command}"]
        return "\n".join(lines) + "\n"
    first = verdict.primary
    assert first is not None  # a FAIL verdict always names what failed
    where = f" on slot {first.slot} of {slots}" if slots > 1 else ""
    lines = [f"SC-1 FAIL{where}: {first.name.value} (invariant {first.invariant.value}: {first.invariant.title})",
             f"  {first.message}", ""]
    if verdict.reason:
        lines += [f"note: {verdict.reason}", ""]
    lines.append("all violations:")
    lines += [f"  - {v.name.value} at op {v.index} (seen {v.occurrences}x): {v.message}"
              for v in verdict.violations]
    lines += ["", *_forensic_snapshot(slot_history(history, first.slot - 1), first.index), "",
              "last actions before the break:"]
    lines += [f"  {op_line(op)}" for op in _ops_before(history, first.index, context_ops)]
    lines += ["", figures]
    if replay_command:
        lines += ["", f"replay: {replay_command}"]
    return "\n".join(lines) + "\n"


def _points(points: dict[str, int]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in points.items() if n) or "none"


def state_text(state: TerminalState | None) -> str:
    return state.value.replace("_", " ") if state else "not checked"


def slot_history(history: History, k: int) -> History:
    """Slot k (0-based) as a one-slot history; a one-slot history is its own."""
    return history if len(history.fixtures) == 1 else history.slot_view(k)


def answer_counts(history: History) -> dict[OpKind, int]:
    counts = {OpKind.OK: 0, OpKind.FAIL: 0, OpKind.INFO: 0}
    for op in history.ops:
        if op.action.is_booking and op.kind is not OpKind.INVOKE:
            counts[op.kind] += 1
    return counts


def _forensic_snapshot(history: History, index: int) -> list[str]:
    """The first snapshot at or after `index` (where the damage shows; the break itself may be an
    answer), else the last one; each booking's references resolved."""
    op = snapshot_at(history, index)
    if op is None:
        return ["no snapshot was recorded"]
    snap = op.snapshot
    assert snap is not None
    f = history.fixture
    sent = next((o for o in history.ops if o.index == op.invoke_index), op)
    lines = [f"slot {snap.slot_id} (vendor {snap.vendor_id}): {snap.state.value}, in the read of ops "
             f"{sent.index}-{op.index} (sent {sent.time_s:.3f} s, answered {op.time_s:.3f} s)",
             f"bookings ({len(snap.bookings)}):"]
    for b in snap.bookings:
        intent = f.by_intent_id(b.intent_id)
        owner = f"{intent.process.value}'s intent" if intent else "UNKNOWN intent"
        customer = ("its customer" if intent and intent.customer_id == b.customer_id
                    else f"customer {b.customer_id} (not the intent's)")
        slot = "this slot" if b.slot_id == f.slot_id else f"OTHER slot {b.slot_id}"
        lines.append(f"  {b.id} {b.status.value:<9} {owner} {b.intent_id}, {customer}, {slot}")
    lines.append("intents issued: " + ", ".join(
        f"{i.process.value}={i.intent_id} (customer {i.customer_id})" for i in f.intents))
    return lines


def snapshot_at(history: History, index: int) -> Op | None:
    """The read to show for a break at op `index`: the first snapshot at or after it (where the
    damage shows; the break itself may be an answer), else the last one; None without reads."""
    snaps = history.snapshots
    return next((o for o in snaps if o.index >= index), snaps[-1]) if snaps else None


def _ops_before(history: History, index: int, count: int) -> list[Op]:
    """The last `count` non-snapshot ops at or before `index` (snapshots would crowd them out)."""
    ops = [o for o in history.ops if o.index <= index and o.action is not Action.SNAPSHOT]
    return ops[-count:]


def op_line(op: Op) -> str:
    d = op.details
    parts = [f"#{op.index}", f"{op.time_s:7.3f}s", op.process.value, op.kind.value, op.action.value]
    parts += [str(x) for x in (d.hop.value if d.hop else None, d.status,
                               d.answer.value if d.answer else None, d.error) if x is not None]
    parts += [f"{k}={v}" for k, v in d.params]
    return " ".join(parts)


