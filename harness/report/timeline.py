"""The SVG timeline of report.html: what happened when, one picture.

Top to bottom: a lane per hop with its faults; per slot, the slot's state as each read found it
and a row per customer with a box per booking call, from its send to its answer (calls in flight
together are stacked, so bursts stay readable); across everything the settle phase, the app down
after each crash and the break. Every box links to its operation's row of the table below it."""

from __future__ import annotations

import html
import math
from collections.abc import Iterator
from dataclasses import dataclass

from harness.checker import Verdict
from harness.contract import Answer, SlotSnapshot, SlotState, answered_booking_id
from harness.faults import FAULT_ACTIONS, KINDS
from harness.history import Action, Fixture, History, Hop, Op, OpKind, Process
from harness.report.names import Names

WIDTH, LEFT, RIGHT = 1100, 120, 16
_PLOT = WIDTH - LEFT - RIGHT
_TOP = 30  # room for the phase labels above the lanes
_HOP_H, _STATE_H, _BOX_H, _ROW_PAD = 18, 16, 13, 6
_MAX_STACK = 6  # calls in flight at once that get a sub-row each; more share the last one
_CHAR_W = 6.6  # px per character of an 11 px monospace label, to decide whether a label fits

# What an answer means, by colour: a 409 is the app saying "no" correctly, not a failure.
ANSWER_CLASSES = {
    "confirmed": ("#2e9d4c", "confirmed (201, replay 200)"),
    "rejected": ("#4f78b0", "rejected: slot taken (409)"),
    "refused": ("#d9822b", "refused (400, 404, 422)"),
    "unknown": ("#a3a3a3", "unknown outcome (5xx, reset, timeout)"),
}


@dataclass(frozen=True)
class Call:
    """A booking call: its invoke and, when one came, its completion."""

    invoke: Op
    done: Op | None

    @property
    def answer(self) -> Answer | None:
        return self.done.details.answer if self.done else None

    @property
    def css(self) -> str:
        answer = self.answer
        if answer is None or self.done is None or self.done.kind is OpKind.INFO:
            return "unknown"
        if answer.is_confirmed:
            return "confirmed"
        return "rejected" if answer is Answer.SLOT_TAKEN else "refused"


def calls(history: History) -> list[Call]:
    completions = {o.invoke_index: o for o in history.ops if o.invoke_index is not None}
    return [Call(op, completions.get(op.index)) for op in history.ops
            if op.kind is OpKind.INVOKE and op.action.is_booking]


def render_svg(history: History, verdict: Verdict, names: Names, marked: set[int], *,
               window: tuple[float, float] | None = None, svg_id: str = "timeline") -> str:
    """The timeline; `marked` op indexes (what the headline violation names) are outlined. With a
    `window` (seconds from, to) only that stretch of the run, stretched to the full width."""
    return _Timeline(history, verdict, names, marked, window, svg_id).svg()


def run_end(history: History) -> float:
    return max((o.time_s for o in history.ops), default=0.0) or 1.0


class _Timeline:
    def __init__(self, history: History, verdict: Verdict, names: Names, marked: set[int],
                 window: tuple[float, float] | None, svg_id: str) -> None:
        self.history, self.verdict, self.names, self.marked = history, verdict, names, marked
        self.start, self.end = window or (0.0, run_end(history))
        self.svg_id = svg_id

    def x(self, t: float) -> float:
        t = min(max(t, self.start), self.end)
        return round(LEFT + _PLOT * (t - self.start) / ((self.end - self.start) or 1.0), 1)

    def visible(self, start: float, stop: float) -> bool:
        return stop >= self.start and start <= self.end

    def svg(self) -> str:
        body: list[str] = []
        y = _TOP
        hop_top = {}
        for hop in Hop:
            hop_top[hop] = y
            body.append(_label(y + _HOP_H - 5, f"fault {hop.value}"))
            y += _HOP_H
        body += self._faults(hop_top)
        y += 4
        several = len(self.history.fixtures) > 1
        by_intent = _calls_by_intent(self.history)
        for k, fixture in enumerate(self.history.fixtures):
            view = self.history if not several else self.history.slot_view(k)
            body.append(f'<line x1="0" x2="{WIDTH}" y1="{y}" y2="{y}" stroke="#bbb"/>')
            y += 3
            body += self._states(view, fixture, k + 1, y, f"slot {k + 1}" if several else "slot state")
            y += _STATE_H + 2
            for intent in fixture.intents:
                rows = _stack([c for c in by_intent.get(intent.intent_id, [])
                               if self.visible(c.invoke.time_s, c.done.time_s if c.done else self.end)], self)
                height = max(len(rows), 1) * _BOX_H + _ROW_PAD
                body.append(_label(y + min(height, _BOX_H + _ROW_PAD) // 2 + 4,
                                   self.names.name(intent.intent_id)))
                for lane, row in enumerate(rows):
                    body += [self._box(c, y + 3 + lane * _BOX_H) for c in row]
                y += height
                body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="#eee"/>')
        bottom = y
        height = bottom + 44
        back = self._bands(bottom) + self._ticks(bottom)
        front = self._crashes(bottom) + self._break(bottom)
        return "\n".join([f'<svg id="{self.svg_id}" class="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
                          f'height="{height}" viewBox="0 0 {WIDTH} {height}">', *back, *body, *front, "</svg>"])

    # --- backgrounds: the phases -------------------------------------------------------------

    def _bands(self, bottom: int) -> list[str]:
        out = []
        for start, stop, op in _spans(self.history, Action.SETTLE, self.end):
            if not self.visible(start, stop):
                continue
            near_right = self.x(start) + _CHAR_W * 7 > WIDTH - RIGHT  # the label goes left of the band
            label_x, anchor = (self.x(start) - 3, "end") if near_right else (self.x(start) + 3, "start")
            out.append(f'<a href="#op-{op.index}"><rect class="settle" data-op="{op.index}" x="{self.x(start)}" '
                       f'y="{_TOP - 14}" width="{max(self.x(stop) - self.x(start), 2)}" height="{bottom - _TOP + 14}" '
                       'fill="#fff1b8"><title>settle phase: every fault healed, the app healthy, both '
                       'intents resent until each has a definite answer, then the final read</title></rect>'
                       f'<text x="{label_x}" y="{_TOP - 4}" text-anchor="{anchor}" fill="#8a6d00">settle</text></a>')
        for start, stop, op in _spans(self.history, Action.RESTART_SIMCITY, self.end):
            if not self.visible(start, stop):
                continue
            out.append(f'<rect class="app-down" data-op="{op.index}" x="{self.x(start)}" y="{_TOP}" '
                       f'width="{max(self.x(stop) - self.x(start), 2)}" height="{bottom - _TOP}" fill="#f6d3cf" '
                       f'opacity=".7"><title>app down: killed at op {op.index} ({start:.3f} s), healthy '
                       f'again at {stop:.3f} s</title></rect>')
        return out

    def _ticks(self, bottom: int) -> list[str]:
        out = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#888"/>']
        for t, text in ticks(self.start, self.end):
            x = self.x(t)
            out.append(f'<line class="tick" x1="{x}" x2="{x}" y1="{_TOP}" y2="{bottom + 4}" stroke="#e6e6e6"/>'
                       f'<text x="{x}" y="{bottom + 15}" text-anchor="middle">{text}</text>')
        return out

    # --- lanes ---------------------------------------------------------------------------------

    def _faults(self, hop_top: dict[Hop, int]) -> list[str]:
        out, labels = [], []  # labels last, so no later fault's box covers one
        label_end = {hop: 0.0 for hop in Hop}  # where each lane's last label ends, so none overlap
        for start, stop, op in _fault_spans(self.history, self.end):
            if not self.visible(start, stop):
                continue
            hop = op.details.hop or Hop.CLIENT_APP
            top, x0, x1 = hop_top[hop] + 2, self.x(start), max(self.x(stop), self.x(start) + 2)
            params = ", ".join(f"{k}={v}" for k, v in op.details.params if k not in ("step",))
            tip = f"op {op.index}: {op.action.value} on {hop.value} from {start:.3f} s to {stop:.3f} s" + (
                f" ({params})" if params else "")
            if x0 >= label_end[hop] and x1 - x0 >= _CHAR_W * len(op.action.value) + 4:
                labels.append(f'<a href="#op-{op.index}"><text x="{x0 + 2}" y="{top + _HOP_H - 7}">'
                              f'{op.action.value}</text></a>')
                label_end[hop] = x1
            out.append(f'<a href="#op-{op.index}"><rect class="fault" data-op="{op.index}" x="{x0}" y="{top}" '
                       f'width="{x1 - x0}" height="{_HOP_H - 4}" fill="#8fb0f0" opacity=".6">'
                       f'<title>{html.escape(tip)}</title></rect></a>')
        return out + labels

    def _states(self, view: History, fixture: Fixture, slot: int, y: int, label: str) -> list[str]:
        out = [_label(y + _STATE_H - 4, label)]
        # A read shows the slot at some moment between its send and its answer: each segment runs
        # from one read's send to the next one's, so the last read of a run is seen too.
        sent_at = {o.index: o.time_s for o in view.ops}
        reads = [o for o in view.ops if o.snapshots]
        sent = [sent_at.get(r.invoke_index, r.time_s) for r in reads]  # type: ignore[arg-type]
        for read, start, stop in zip(reads, sent, [*sent[1:], self.end]):
            if not self.visible(start, stop):
                continue
            snap = read.snapshots[0]
            text, css = state_of(snap, fixture, self.names)
            if any(v.slot == slot and v.index == read.index for v in self.verdict.violations):
                css = "broken"  # a legal-looking state that breaks an invariant here (a flip, a lost booking)
            x0, x1 = self.x(start), self.x(stop)
            shown = f'<text x="{x0 + 2}" y="{y + _STATE_H - 4}">{html.escape(text)}</text>' if (
                x1 - x0 >= _CHAR_W * len(text) + 4) else ""
            out.append(f'<a href="#op-{read.index}"><rect class="state {css}" data-op="{read.index}" x="{x0}" '
                       f'y="{y}" width="{max(x1 - x0, 1)}" height="{_STATE_H}" fill="{_STATE_FILL[css]}">'
                       f'<title>{html.escape(f"read of ops {read.invoke_index}-{read.index} ({start:.3f} s to {read.time_s:.3f} s): {text}")}</title>'
                       f'</rect>{shown}</a>')
        return out

    def _box(self, call: Call, top: int) -> str:
        op, done = call.invoke, call.done
        stop = done.time_s if done else self.end
        x0 = self.x(op.time_s)
        width = max(self.x(stop) - x0, 3)
        css = call.css
        status = done.details.status if done else None
        label = str(status) if status is not None else "?"
        booking = answered_booking_id(done.details.body) if done else None
        answer = call.answer.value if call.answer else "no answer"
        tip = (f"op {op.index}{f' -> {done.index}' if done else ''}: {self.names.name(op.details.intent_id or '')} "
               f"{op.action.value}, {status if status is not None else 'no status'} {answer}"
               + (f", booking {self.names.name(booking)}" if booking else "")
               + (f" ({done.details.error})" if done and done.details.error else "")
               + (f", {done.details.latency_ms:.1f} ms" if done and done.details.latency_ms is not None else ""))
        marked = " marked" if {op.index, done.index if done else -1} & self.marked else ""
        text = (f'<text x="{x0 + 2}" y="{top + _BOX_H - 3}" fill="#fff">{label}</text>'
                if width >= _CHAR_W * len(label) + 3 else "")
        dashed = ' stroke-dasharray="3 2" stroke="#555"' if done is None else ""
        return (f'<a href="#op-{op.index}"><rect class="op {css}{marked}" data-op="{op.index}" x="{x0}" y="{top}" '
                f'width="{width}" height="{_BOX_H - 2}" rx="2" fill="{ANSWER_CLASSES[css][0]}"{dashed}>'
                f'<title>{html.escape(tip)}</title></rect>{text}</a>')

    # --- foreground: crashes and the break ------------------------------------------------------

    def _crashes(self, bottom: int) -> list[str]:
        out = []
        label_end = 0.0  # crashes close together share one label
        for op in self.history.ops:
            if op.kind is OpKind.INVOKE and op.action is Action.RESTART_SIMCITY and self.visible(op.time_s, op.time_s):
                x = self.x(op.time_s)
                text = ""
                if x + 2 >= label_end:
                    text = f'<text x="{x + 2}" y="{_TOP - 16}" fill="#c0392b">crash</text>'
                    label_end = x + 2 + _CHAR_W * len("crash ")
                out.append(f'<a href="#op-{op.index}"><line class="crash" data-op="{op.index}" x1="{x}" x2="{x}" '
                           f'y1="{_TOP - 2}" y2="{bottom}" stroke="#c0392b" stroke-width="2" stroke-dasharray="4 3">'
                           f'<title>crash: the app killed (op {op.index})</title></line>{text}</a>')
        return out

    def _break(self, bottom: int) -> list[str]:
        primary = self.verdict.primary
        if primary is None:
            return []
        at = next((o.time_s for o in self.history.ops if o.index == primary.index), self.end)
        if not self.visible(at, at):
            return []
        x = self.x(at)
        left = at < (self.start + self.end) / 2
        marker = 'id="break-marker"' if self.svg_id == "timeline" else 'class="break-marker"'
        return [f'<a href="#op-{primary.index}"><g {marker}><line x1="{x}" x2="{x}" y1="{_TOP - 14}" '
                f'y2="{bottom + 20}" stroke="#c0392b" stroke-width="3"/>'
                f'<text x="{x + 4 if left else x - 4}" y="{bottom + 34}" text-anchor="{"start" if left else "end"}" '
                f'fill="#c0392b" font-weight="bold">broke: {html.escape(primary.name.value)} (op {primary.index})</text>'
                f'<title>{html.escape(self.names.plain(primary.message))}</title></g></a>']


_STATE_FILL = {"free": "#eeeeee", "held": "#cfe9d6", "broken": "#f0a39a"}


def state_of(snap: SlotSnapshot, fixture: Fixture, names: Names) -> tuple[str, str]:
    """A read's slot as a short text and its class: free, held (by whom), or broken."""
    confirmed = snap.confirmed
    if len(confirmed) > 1:
        return f"{len(confirmed)} confirmed: " + " ".join(_owner(b.intent_id, fixture, names) for b in confirmed), "broken"
    if snap.state is SlotState.BOOKED and not confirmed:
        return "booked, none confirmed", "broken"
    if snap.state is SlotState.FREE and confirmed:
        return f"free, {names.name(confirmed[0].id)} confirmed", "broken"
    if confirmed:
        return f"{_owner(confirmed[0].intent_id, fixture, names)} holds it", "held"
    return "free", "free"


def _owner(intent_id: str, fixture: Fixture, names: Names) -> str:
    return names.name(intent_id) if fixture.by_intent_id(intent_id) else "stranger"


def _label(y: int, text: str) -> str:
    return f'<text x="4" y="{y}" fill="#444">{html.escape(text)}</text>'


def _calls_by_intent(history: History) -> dict[str, list[Call]]:
    out: dict[str, list[Call]] = {}
    for call in calls(history):
        if call.invoke.process in (Process.C1, Process.C2) and call.invoke.details.intent_id:
            out.setdefault(call.invoke.details.intent_id, []).append(call)
    return out


def _stack(row: list[Call], timeline: _Timeline) -> list[list[Call]]:
    """Calls in flight together go to sub-rows (first fit), so no box hides another."""
    lanes: list[list[Call]] = []
    ends: list[float] = []
    for call in sorted(row, key=lambda c: c.invoke.time_s):
        x0 = timeline.x(call.invoke.time_s)
        x1 = max(timeline.x(call.done.time_s if call.done else timeline.end), x0 + 3)
        lane = next((n for n, end in enumerate(ends) if end + 1 <= x0), None)
        if lane is None:
            if len(lanes) < _MAX_STACK:
                lanes.append([])
                ends.append(0.0)
            lane = len(lanes) - 1
        lanes[lane].append(call)
        ends[lane] = max(ends[lane], x1)
    return lanes


def ticks(start: float, end: float, target: int = 10) -> Iterator[tuple[float, str]]:
    """Round time marks from `start` to `end` (1, 2 or 5 times a power of ten apart)."""
    raw = (end - start) / target or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    n = math.ceil(start / step - 1e-9)
    while n * step <= end + 1e-9:
        yield n * step, f"{n * step:.{decimals}f} s"
        n += 1


def _spans(history: History, action: Action, end: float) -> list[tuple[float, float, Op]]:
    """From each invoke of `action` to its completion (the end of the run if none came)."""
    done = {o.invoke_index: o for o in history.ops if o.invoke_index is not None}
    return [(op.time_s, done[op.index].time_s if op.index in done else end, op) for op in history.ops
            if op.kind is OpKind.INVOKE and op.action is action]


def _fault_spans(history: History, end: float) -> list[tuple[float, float, Op]]:
    """From a fault's invoke until the next heal of its hop (or the end of the run)."""
    spans: list[tuple[float, float, Op]] = []
    open_faults: list[Op] = []
    for op in history.ops:
        if op.kind is not OpKind.INVOKE:
            continue
        if op.action in FAULT_ACTIONS:
            lasts = KINDS[op.action].lasts_s
            if lasts is not None:  # a fault that ends by itself (stall)
                spans.append((op.time_s, min(op.time_s + lasts, end), op))
            else:
                open_faults.append(op)
        elif op.action in (Action.HEAL, Action.SETTLE):
            # A heal without a hop, and the settle phase, heal every hop.
            healed = [f for f in open_faults if op.details.hop in (None, f.details.hop)]
            spans += [(f.time_s, op.time_s, f) for f in healed]
            open_faults = [f for f in open_faults if f not in healed]
    return spans + [(f.time_s, end, f) for f in open_faults]
