"""report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) that a
person reads top to bottom: the verdict and the run it is about, the invariants checked, the
timeline, what broke and the slot at the break, and every operation, each `op N` a link to its row.
Everything shown is escaped; ids are shortened (full on hover) by `names`."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from harness.checker import Invariant, Validity, Verdict, Violation
from harness.contract import answered_booking_id
from harness.history import Action, History, Op, OpKind
from harness.report.names import Names, ids_named, ops_named
from harness.report.text import render_text, slot_history, snapshot_at, state_text
from harness.report.timeline import ANSWER_CLASSES, calls, render_svg, run_end, state_of

if TYPE_CHECKING:
    from harness.runinfo import RunInfo

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1180px}
h1{margin:.2em 0} h1.pass{color:#2e9d4c} h1.fail{color:#c0392b} h1.inconclusive{color:#9a7d0a}
h2{margin-top:1.4em;border-bottom:1px solid #ddd}
.lead{font-size:15px;margin:.3em 0 1em}
dl.run{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px;margin:0}
dl.run dt{color:#666} dl.run dd{margin:0}
code,pre{font-family:ui-monospace,monospace;font-size:12px}
pre{background:#f6f6f6;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
td.held{color:#2e9d4c;font-weight:bold} td.broken{color:#c0392b;font-weight:bold} td.open{color:#9a7d0a;font-weight:bold}
tr.broke td{background:#fbe3e0} tr:target td{background:#ffe680}
abbr.id{text-decoration:underline dotted;cursor:help}
.legend{font-size:12px;margin:.4em 0} .legend span{display:inline-block;margin-right:1.2em}
.sw{width:12px;height:12px;display:inline-block;vertical-align:middle;margin-right:3px;border-radius:2px}
svg text{font-size:11px;font-family:ui-monospace,monospace}
svg rect.marked{stroke:#c0392b;stroke-width:2.5}
.scroll{overflow-x:auto}
"""


def render_html(history: History, verdict: Verdict, *, replay_command: str = "",
                run: RunInfo | None = None) -> str:
    """The whole page; `run` (what was run where) fills the header when known."""
    names = Names(history)
    title = headline(history, verdict)
    status = verdict.valid.value
    primary = verdict.primary
    marked = _named_by(history, primary) if primary else set()
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1 class="{status.lower()}">{html.escape(title)}</h1>',
        _lead(verdict, names),
        _header(history, verdict, replay_command, run, names),
        _invariants(verdict),
        "<h2>Timeline</h2>",
        _legend(),
        f'<div class="scroll">{render_svg(history, verdict, names, marked)}</div>',
        _settle_zoom(history, verdict, names, marked),
        _slots(history, verdict, names),
    ]
    if verdict.violations:
        parts.append(_violations(verdict, names))
    if primary is not None:
        parts.append(_slot_at_break(history, primary, names))
    parts.append(_operations(history, verdict, names))
    parts.append('<h2>Text report</h2><details><summary>as the terminal printed it</summary>'
                 f"<pre>{html.escape(render_text(history, verdict, replay_command=replay_command))}</pre></details>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _named_by(history: History, violation: Violation) -> set[int]:
    """The ops a violation is about: those its message names, and the first reply that confirmed
    each booking it names (for a double booking: the two replies that both said "confirmed")."""
    ids = ids_named(violation.message)
    first_confirmation = {}
    for call in calls(history):
        booking = answered_booking_id(call.done.details.body) if call.done and call.css == "confirmed" else None
        if booking in ids and call.done is not None:
            first_confirmation.setdefault(booking, call.done.index)
    return ops_named(violation.message) | {violation.index} | set(first_confirmation.values())


def headline(history: History, verdict: Verdict) -> str:
    """The page's title: the verdict and, for a FAIL, the one violation it is about (the same one
    the timeline's break marker shows)."""
    title = f"SC-1 {verdict.valid.value}"
    slots = len(history.fixtures)
    if verdict.passed and slots > 1:
        return f"{title}: {slots} slots, each in a terminal state"
    if verdict.passed and verdict.final_state:
        return f"{title}: {state_text(verdict.final_state)}, winner {verdict.winner.value if verdict.winner else '-'}"
    if verdict.primary:
        where = f" on slot {verdict.primary.slot}" if slots > 1 else ""
        return f"{title}: {verdict.primary.name.value}{where}"
    if verdict.reason:
        return f"{title} (no verdict on the app)"
    return title


def _lead(verdict: Verdict, names: Names) -> str:
    primary = verdict.primary
    if primary is not None:
        return (f'<p class="lead">Invariant {primary.invariant.value} ({html.escape(primary.invariant.title)}) '
                f'broke at <a href="#op-{primary.index}">op {primary.index}</a>: {names.markup(primary.message)}</p>')
    if verdict.reason:
        return f'<p class="lead">{names.markup(verdict.reason)}</p>'
    return '<p class="lead">Every read satisfied the five invariants and the run ended in a legal state.</p>'


def _header(history: History, verdict: Verdict, replay_command: str, run: RunInfo | None, names: Names) -> str:
    rows: list[tuple[str, str]] = [("seed", f"<code>{html.escape(history.fixtures[0].seed)}</code>")]
    if run is not None:
        env = ", ".join(f"{k}={v}" for k, v in sorted(run.app_env.items()) if k != "BOOKING_STRATEGY")
        rows += [("app strategy", f"<code>{html.escape(run.strategy)}</code>"
                  + (f" (app env {html.escape(env)})" if env else "")),
                 ("stack", html.escape(run.stack_kind)),
                 ("profile", html.escape(run.profile)),
                 ("schedule", f"{len(run.schedule)} steps, hash <code>{html.escape(run.schedule.hash)}</code>"),
                 ("git SHA", f"<code>{html.escape(run.git_sha or _git_sha() or 'unknown')}</code>")]
    rows += [("slots", ", ".join(f"{names.abbr(f.slot_id)}" for f in history.fixtures)),
             ("duration", f"{history.duration_s:.2f} s, {verdict.snapshots_checked} reads checked"),
             ("written", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))]
    if replay_command:
        rows.append(("replay", f"<code>{html.escape(replay_command)}</code>"))
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="run">{items}</dl>'


def _git_sha() -> str | None:
    from harness.runinfo import git_sha  # runinfo imports this package: look it up late

    return git_sha()


def _invariants(verdict: Verdict) -> str:
    rows = []
    for invariant in Invariant:
        broken = [v for v in verdict.violations if v.invariant is invariant]
        if broken:
            result = "broken: " + ", ".join(
                f'{v.name.value}{f" (slot {v.slot})" if len(verdict.slot_outcomes) > 1 else ""} at '
                f'<a href="#op-{v.index}">op {v.index}</a>' for v in broken)
            css = "broken"
        elif invariant is Invariant.TERMINAL:
            css, result = _terminal_result(verdict)
        elif verdict.snapshots_checked:
            css, result = "held", f"held in every read ({verdict.snapshots_checked})"
        else:
            css, result = "open", "not checked: no read completed"
        rows.append(f"<tr><td>{invariant.value}</td><td>{html.escape(invariant.title)}</td>"
                    f'<td class="{css}">{result}</td></tr>')
    return ("<h2>Invariants checked</h2><table><tr><th>#</th><th>invariant</th><th>result</th></tr>"
            f"{''.join(rows)}</table>")


def _terminal_result(verdict: Verdict) -> tuple[str, str]:
    if verdict.valid is Validity.INCONCLUSIVE:
        return "open", "no verdict: no definite final state (see above)"
    outcomes = verdict.outcomes
    if all(state is not None for state, _ in outcomes):
        return "held", ", ".join(f"{state_text(s)} ({w.value if w else '-'} won)" for s, w in outcomes)
    return "open", "not reached: the run stopped at the break"


def _legend() -> str:
    answers = "".join(f'<span><i class="sw" style="background:{colour}"></i>{html.escape(text)}</span>'
                      for colour, text in ANSWER_CLASSES.values())
    return (f'<div class="legend">{answers}'
            '<span><i class="sw" style="background:#8fb0f0"></i>fault active</span>'
            '<span><i class="sw" style="background:#f6d3cf"></i>app down (crash to healthy)</span>'
            '<span><i class="sw" style="background:#fff1b8"></i>settle phase</span>'
            '<span><i class="sw" style="border:2.5px solid #c0392b"></i>named by the violation</span></div>'
            '<div class="legend">A box is one booking call, from its send to its answer (the label is the HTTP '
            'status); calls in flight together are stacked. The "slot" lane is the slot as each read found it. '
            'Click anything to go to its operation.</div>')


SETTLE_ZOOM_BELOW = 0.3  # a settle phase shorter than this share of the run gets a timeline of its own


def _settle_zoom(history: History, verdict: Verdict, names: Names, marked: set[int]) -> str:
    """The settle phase stretched to the full width when it is a sliver of the run: it is where
    both intents are sent at once, and where many double bookings happen."""
    settle = next((o for o in history.ops if o.action is Action.SETTLE and o.kind is OpKind.INVOKE), None)
    end = run_end(history)
    if settle is None or end - settle.time_s >= SETTLE_ZOOM_BELOW * end:
        return ""
    start = max(settle.time_s - 0.05 * (end - settle.time_s), 0.0)
    svg = render_svg(history, verdict, names, marked, window=(start, end), svg_id="timeline-settle")
    return (f"<h3>The settle phase, zoomed ({start:.3f} s to {end:.3f} s)</h3>"
            f'<div class="scroll">{svg}</div>')


def _slots(history: History, verdict: Verdict, names: Names) -> str:
    """Per slot: its final state, and the replies that told a customer "confirmed"."""
    rows = []
    outcomes = verdict.outcomes
    for k, fixture in enumerate(history.fixtures):
        view = slot_history(history, k)
        state, winner = outcomes[k] if k < len(outcomes) else (None, None)
        told = sorted((c.done for c in calls(view) if c.css == "confirmed" and c.done), key=lambda o: o.index)
        first = {o.details.intent_id: o for o in reversed(told)}  # each intent's first "confirmed", in order
        confirmed = ", ".join(_confirmation(o, names) for o in sorted(first.values(), key=lambda o: o.index))
        if len(told) > len(first):
            confirmed += f"; and {len(told) - len(first)} more confirmed replies"
        broke = [v for v in verdict.violations if v.slot == k + 1]
        last = view.snapshots[-1].snapshots[0] if view.snapshots else None
        rows.append(f"<tr><td>{names.abbr(fixture.slot_id)}</td>"
                    f"<td>{html.escape(state_of(last, fixture, names)[0]) if last else 'never read'}</td>"
                    f"<td>{state_text(state)}{f', {winner.value} won' if winner else ''}</td>"
                    f"<td>{confirmed or 'nobody'}</td><td>{', '.join(sorted({v.name.value for v in broke})) or '-'}</td></tr>")
    return ("<h2>Slots</h2><table><tr><th>slot</th><th>last read</th><th>final state</th>"
            f"<th>told confirmed</th><th>violations</th></tr>{''.join(rows)}</table>")


def _confirmation(answer: Op, names: Names) -> str:
    booking = answered_booking_id(answer.details.body)
    return (f'{html.escape(names.name(answer.details.intent_id or ""))} at <a href="#op-{answer.index}">op '
            f'{answer.index}</a> ({answer.details.status}{f", {names.abbr(booking)}" if booking else ""})')


def _violations(verdict: Verdict, names: Names) -> str:
    rows = "".join(
        f"<tr><td>{v.name.value}</td><td>{v.invariant.value}</td><td>{v.slot}</td>"
        f'<td><a href="#op-{v.index}">op {v.index}</a></td><td>{v.occurrences}</td><td>{names.markup(v.message)}</td></tr>'
        for v in sorted(verdict.violations, key=lambda v: (v.invariant.value, v.index)))
    return ("<h2>Violations</h2><table><tr><th>name</th><th>inv.</th><th>slot</th><th>first seen</th>"
            f"<th>seen</th><th>what</th></tr>{rows}</table>")


def _slot_at_break(history: History, primary: Violation, names: Names) -> str:
    view = slot_history(history, primary.slot - 1)
    read = snapshot_at(view, primary.index)
    if read is None:
        return ""
    snap = read.snapshots[0]
    fixture = view.fixture
    rows = []
    for b in snap.bookings:
        intent = fixture.by_intent_id(b.intent_id)
        rows.append(f"<tr><td>{names.abbr(b.id)}</td><td>{b.status.value}</td>"
                    f"<td>{names.abbr(b.intent_id)}{'' if intent else ' (never issued)'}</td>"
                    f"<td>{'its own' if intent and intent.customer_id == b.customer_id else names.abbr(b.customer_id)}</td>"
                    f"<td>{'this slot' if b.slot_id == fixture.slot_id else names.abbr(b.slot_id)}</td></tr>")
    return (f'<h2>The slot at the break</h2><p>{names.abbr(snap.slot_id)} is <b>{snap.state.value}</b> in the read '
            f'of <a href="#op-{read.invoke_index if read.invoke_index is not None else read.index}">op '
            f'{read.invoke_index if read.invoke_index is not None else read.index}</a>-<a href="#op-{read.index}">'
            f'{read.index}</a> ({read.time_s:.3f} s).</p><table><tr><th>booking</th><th>status</th><th>intent</th>'
            f"<th>customer</th><th>slot</th></tr>{''.join(rows)}</table>")


def _operations(history: History, verdict: Verdict, names: Names) -> str:
    completion = {o.invoke_index: o.index for o in history.ops if o.invoke_index is not None}
    broke_at: dict[int, list[str]] = {}
    for v in verdict.violations:
        broke_at.setdefault(v.index, []).append(v.name.value)
    rows = []
    for op in history.ops:
        css = ' class="broke"' if op.index in broke_at else ""
        note = f" <b>broke: {', '.join(broke_at[op.index])}</b>" if op.index in broke_at else ""
        rows.append(f'<tr id="op-{op.index}"{css}><td>{op.index}</td><td>{op.time_s:.3f}</td>'
                    f"<td>{op.process.value}</td><td>{op.kind.value}</td><td>{op.action.value}</td>"
                    f"<td>{_what(op, completion, names)}{note}</td></tr>")
    return ("<h2>Operations</h2><p>Every operation of the history: an invoke, then its completion "
            "(ok, fail, or info = outcome unknown).</p><table><tr><th>op</th><th>t (s)</th><th>who</th>"
            f"<th>kind</th><th>action</th><th>what</th></tr>{''.join(rows)}</table>")


def _what(op: Op, completion: dict[int | None, int], names: Names) -> str:
    d = op.details
    parts: list[str] = []
    if d.intent_id:
        parts.append(f"intent {names.abbr(d.intent_id)}")
    if d.hop:
        parts.append(d.hop.value)
    if op.invoke_index is not None:
        parts.append(f'answers <a href="#op-{op.invoke_index}">op {op.invoke_index}</a>')
    elif op.kind is OpKind.INVOKE and op.index in completion:
        parts.append(f'answered at <a href="#op-{completion[op.index]}">op {completion[op.index]}</a>')
    if d.status is not None or d.answer is not None:
        parts.append(" ".join(str(x) for x in (d.status, d.answer.value if d.answer else None) if x is not None))
    booking = answered_booking_id(d.body)
    if booking:
        parts.append(f"booking {names.abbr(booking)}")
    if d.latency_ms is not None and op.kind is not OpKind.INVOKE:
        parts.append(f"{d.latency_ms:.1f} ms")
    params = [f"{k}={v}" for k, v in d.params]
    if params:
        parts.append(html.escape(" ".join(params)))
    if d.error:
        parts.append(names.markup(d.error))
    for n, snap in enumerate(op.snapshots, 1):
        rows = ", ".join(f"{names.abbr(b.id)} {b.status.value} ({names.abbr(b.intent_id)})" for b in snap.bookings)
        where = f"slot {n}: " if len(op.snapshots) > 1 else ""
        parts.append(f"{where}{snap.state.value}{': ' + rows if rows else ''}")
    if op.action is Action.SETTLE and op.kind is OpKind.INVOKE:
        parts.append("faults healed, both intents resent until each has a definite answer")
    return "; ".join(parts)
