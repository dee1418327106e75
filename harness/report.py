"""What a run leaves behind: history.jsonl, verdict.json, junit.xml, report.html, and the text the
terminal prints. The only module of the pure core that writes files.

Every byte written goes through `redact`, so a token that slipped into an error message or an app
body never reaches a report directory that may be uploaded as a CI artifact.
"""

from __future__ import annotations

import html
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import coverage
from harness.checker import Invariant, TerminalState, Validity, Verdict
from harness.errors import UsageError
from harness.faults import FAULT_ACTIONS
from harness.history import Action, History, Hop, Op, OpKind, Process, count_actions
from harness.history_io import to_jsonl

REDACTED = "[REDACTED]"
# A JWT (header.payload.signature, base64url) or any base64url run that starts like a JSON header.
_JWT_RE = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without JWT-looking tokens and without any of `secrets` (empty ones are ignored)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _JWT_RE.sub(REDACTED, text)


@dataclass(frozen=True)
class ReportPaths:
    history: Path
    verdict: Path
    junit: Path
    html: Path


def ensure_writable(directory: Path, what: str = "report dir") -> None:
    """Refuse a report dir that cannot be written, before any stack starts, so that a finished
    verdict is never lost at the end. Creates nothing: the nearest existing ancestor must be a
    writable directory."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {directory}: {existing} is not writable")


def write_report(directory: Path, history: History, verdict: Verdict, *, replay_command: str = "",
                 secrets: Sequence[str] = ()) -> ReportPaths:
    """Write the four report files into `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(directory / "history.jsonl", directory / "verdict.json",
                        directory / "junit.xml", directory / "report.html")
    verdict_json = {**verdict.to_json(), "replay_command": replay_command or None}
    contents = {
        paths.history: to_jsonl(history),
        paths.verdict: json.dumps(verdict_json, indent=2) + "\n",
        paths.junit: render_junit(history, verdict),
        paths.html: render_html(history, verdict, replay_command=replay_command),
    }
    for path, text in contents.items():
        path.write_text(redact(text, secrets), encoding="utf-8")
    return paths


# --- JUnit --------------------------------------------------------------------------------------


def render_junit(history: History, verdict: Verdict) -> str:
    """One testsuite `SC-1`, one testcase per invariant; a failure element per violated one. An
    INCONCLUSIVE run is an error of the terminal case: no verdict, so no CI may read it as green."""
    inconclusive = verdict.valid is Validity.INCONCLUSIVE
    suite = ET.Element("testsuite", name="SC-1", tests=str(len(Invariant)),
                       failures=str(len({v.invariant for v in verdict.violations})),
                       errors=str(int(inconclusive)), time=f"{history.duration_s:.3f}")
    for invariant in Invariant:
        case = ET.SubElement(suite, "testcase", classname="SC-1",
                             name=f"{invariant.value}. {invariant.name.lower()}: {invariant.title}")
        broken = [v for v in verdict.violations if v.invariant is invariant]
        if broken:
            failure = ET.SubElement(case, "failure", type=broken[0].name.value,
                                    message=broken[0].message)
            failure.text = "\n".join(f"{v.name.value} at op {v.index}: {v.message}" for v in broken)
        elif inconclusive and invariant is Invariant.TERMINAL:
            ET.SubElement(case, "error", type="INCONCLUSIVE", message=verdict.reason or "no terminal state")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


# --- terminal text ------------------------------------------------------------------------------


def render_text(history: History, verdict: Verdict, *, replay_command: str = "",
                context_ops: int = 5) -> str:
    """The PASS summary, the INCONCLUSIVE reason, or the FAIL forensic snapshot, as plain text."""
    counts = count_actions(history.ops)
    answers = _answer_counts(history)
    cov = coverage.of_history(history)
    figures = (
        f"actions: {sum(n for a, n in counts.items() if a is not Action.SNAPSHOT)} "
        f"({', '.join(f'{a.value} {n}' for a, n in counts.items() if a is not Action.SNAPSHOT)})\n"
        f"faults: {sum(n for a, n in counts.items() if a in FAULT_ACTIONS)}, "
        f"heals: {counts.get(Action.HEAL, 0)}, crashes: {counts.get(Action.RESTART_SIMCITY, 0)}\n"
        f"answers: ok {answers[OpKind.OK]}, fail {answers[OpKind.FAIL]}, unknown {answers[OpKind.INFO]}\n"
        f"snapshots checked: {verdict.snapshots_checked}, duration: {history.duration_s:.2f}s\n"
        f"where crashes landed: {_points(cov['crash_points'])}; faults: {_points(cov['fault_points'])}"
    )
    slots = len(history.fixtures)
    if verdict.passed:
        if slots > 1:
            outcomes = ", ".join(f"slot {n} {_state_text(state)} ({winner.value if winner else '-'})"
                                 for n, (state, winner) in enumerate(verdict.slot_outcomes, 1))
            return f"SC-1 PASS: {slots} slots, each in a terminal state: {outcomes}\n{figures}\n"
        winner = verdict.winner.value if verdict.winner else "none"
        return f"SC-1 PASS: final state {_state_text(verdict.final_state)}, winner {winner}\n{figures}\n"
    last = history.ops[-1].index if history.ops else 0
    if not verdict.failed:
        lines = [f"SC-1 INCONCLUSIVE (no verdict on the app): {verdict.reason}", ""]
        for k in range(slots):
            lines += [*_forensic_snapshot(_slot(history, k), last), ""]
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
    lines += ["", *_forensic_snapshot(_slot(history, first.slot - 1), first.index), "",
              "last actions before the break:"]
    lines += [f"  {_op_line(op)}" for op in _ops_before(history, first.index, context_ops)]
    lines += ["", figures]
    if replay_command:
        lines += ["", f"replay: {replay_command}"]
    return "\n".join(lines) + "\n"


def _points(points: dict[str, int]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in points.items() if n) or "none"


def _state_text(state: TerminalState | None) -> str:
    return state.value.replace("_", " ") if state else "not checked"


def _slot(history: History, k: int) -> History:
    """Slot k (0-based) as a one-slot history; a one-slot history is its own."""
    return history if len(history.fixtures) == 1 else history.slot_view(k)


def _answer_counts(history: History) -> dict[OpKind, int]:
    counts = {OpKind.OK: 0, OpKind.FAIL: 0, OpKind.INFO: 0}
    for op in history.ops:
        if op.action.is_booking and op.kind is not OpKind.INVOKE:
            counts[op.kind] += 1
    return counts


def _forensic_snapshot(history: History, index: int) -> list[str]:
    """The first snapshot at or after `index` (where the damage shows; the break itself may be an
    answer), else the last one; each booking's references resolved."""
    snaps = history.snapshots
    if not snaps:
        return ["no snapshot was recorded"]
    op = next((o for o in snaps if o.index >= index), snaps[-1])
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


def _ops_before(history: History, index: int, count: int) -> list[Op]:
    """The last `count` non-snapshot ops at or before `index` (snapshots would crowd them out)."""
    ops = [o for o in history.ops if o.index <= index and o.action is not Action.SNAPSHOT]
    return ops[-count:]


def _op_line(op: Op) -> str:
    d = op.details
    parts = [f"#{op.index}", f"{op.time_s:7.3f}s", op.process.value, op.kind.value, op.action.value]
    parts += [str(x) for x in (d.hop.value if d.hop else None, d.status,
                               d.answer.value if d.answer else None, d.error) if x is not None]
    parts += [f"{k}={v}" for k, v in d.params]
    return " ".join(parts)


# --- HTML timeline ------------------------------------------------------------------------------

_ROWS = (Process.C1, Process.C2, Process.NEMESIS)
_WIDTH, _LEFT, _ROW_H, _TOP = 1000, 80, 46, 24
_COLOURS = {OpKind.OK: "#2e9d4c", OpKind.FAIL: "#d9822b", OpKind.INFO: "#8a8a8a"}

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1.pass{color:#2e9d4c} h1.fail{color:#c0392b} h1.inconclusive{color:#b7950b}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}
.legend span{display:inline-block;margin-right:1em} .sw{width:12px;height:12px;display:inline-block;vertical-align:middle}
svg text{font-size:11px;font-family:monospace}
pre{background:#f6f6f6;padding:1em;overflow:auto}
"""


def render_html(history: History, verdict: Verdict, *, replay_command: str = "") -> str:
    """A self-contained page: verdict, SVG timeline (a row per process), violations, ops."""
    status = verdict.valid.value
    title = f"SC-1 {status}"
    if verdict.passed and len(history.fixtures) > 1:
        title += f": {len(history.fixtures)} slots, each in a terminal state"
    elif verdict.passed and verdict.final_state:
        title += f": {_state_text(verdict.final_state)}, winner {verdict.winner.value if verdict.winner else '-'}"
    elif verdict.primary:
        title += f": {verdict.primary.name.value}"
    elif verdict.reason:
        title += " (no verdict on the app)"
    esc = html.escape
    legend = "".join(f'<span><i class="sw" style="background:{c}"></i> {k.value}</span>'
                     for k, c in _COLOURS.items())
    violations = "".join(
        f"<tr><td>{v.invariant.value}</td><td>{esc(v.name.value)}</td><td>{v.index}</td>"
        f"<td>{esc(v.message)}</td></tr>" for v in verdict.violations)
    ops = "".join(f"<tr><td>{esc(_op_line(op))}</td></tr>" for op in history.ops
                  if op.action is not Action.SNAPSHOT)
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1 class="{status.lower()}">{esc(title)}</h1>',
        f"<p>seed <code>{esc(history.fixtures[0].seed)}</code>, "
        + ", ".join(f"slot {n} <code>{esc(f.slot_id)}</code>" for n, f in enumerate(history.fixtures, 1)) + "</p>",
        f'<div class="legend">{legend}<span><i class="sw" style="background:#c0392b"></i> crash / break</span>'
        '<span><i class="sw" style="background:#5b8def;opacity:.35"></i> fault active</span></div>',
        _timeline_svg(history, verdict),
    ]
    if verdict.violations:
        parts.append("<h2>Violations</h2><table><tr><th>inv.</th><th>name</th><th>op</th>"
                     f"<th>what</th></tr>{violations}</table>")
    parts.append(f"<h2>Text report</h2><pre>{esc(render_text(history, verdict, replay_command=replay_command))}</pre>")
    parts.append(f"<h2>Operations</h2><table>{ops}</table></body></html>\n")
    return "\n".join(parts)


_CHAR_W = 7.0  # px per character of the timeline's labels, roughly


def _timeline_svg(history: History, verdict: Verdict) -> str:
    end = max((o.time_s for o in history.ops), default=0.0) or 1.0
    height = _TOP + _ROW_H * len(_ROWS) + 20

    def x(t: float) -> float:
        return round(_LEFT + (_WIDTH - _LEFT - 10) * t / end, 1)

    def y(process: Process) -> int:
        return _TOP + _ROW_H * _ROWS.index(process)

    esc = html.escape
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
           f'viewBox="0 0 {_WIDTH} {height}">']
    for p in _ROWS:
        out.append(f'<text x="4" y="{y(p) + _ROW_H // 2 + 4}">{p.value}</text>'
                   f'<line x1="{_LEFT}" x2="{_WIDTH}" y1="{y(p) + _ROW_H}" y2="{y(p) + _ROW_H}" stroke="#eee"/>')
    # Fault spans: from the fault's invoke until the next heal of its hop (or the end of the run).
    # One lane per hop, so faults on both hops at once stay readable.
    lane_h = (_ROW_H - 6) // len(Hop)
    label_end = {hop: 0.0 for hop in Hop}  # where each lane's last label ends, so none overlap
    for start, stop, op in _fault_spans(history, end):
        hop = op.details.hop
        top = y(Process.NEMESIS) + 3 + lane_h * (list(Hop).index(hop) if hop else 0)
        label = f"{op.action.value} {hop.value if hop else ''}"
        out.append(f'<rect class="fault" x="{x(start)}" y="{top}" width="{max(x(stop) - x(start), 2)}" '
                   f'height="{lane_h - 2}" fill="#5b8def" opacity=".35"><title>{esc(label)}</title></rect>')
        lane = hop or Hop.CLIENT_APP
        if x(start) + 2 >= label_end[lane]:  # a crowded label stays in the span's tooltip only
            out.append(f'<text x="{x(start) + 2}" y="{top + lane_h - 6}">{esc(label)}</text>')
            label_end[lane] = x(start) + 2 + _CHAR_W * len(label)
    completions = {o.invoke_index: o for o in history.ops if o.invoke_index is not None}
    for op in history.ops:
        if op.kind is not OpKind.INVOKE:
            continue
        if op.action is Action.RESTART_SIMCITY:
            out.append(f'<line class="crash" x1="{x(op.time_s)}" x2="{x(op.time_s)}" y1="{_TOP}" '
                       f'y2="{height - 20}" stroke="#c0392b" stroke-dasharray="4 3">'
                       f'<title>crash (op {op.index})</title></line>'
                       f'<text x="{x(op.time_s) + 2}" y="{_TOP - 6}" fill="#c0392b">crash</text>')
        elif op.action.is_booking and op.process in _ROWS:
            done = completions.get(op.index)
            kind = done.kind if done else OpKind.INFO
            stop = done.time_s if done else end
            d = done.details if done else op.details
            tip = f"op {op.index} {op.action.value}: {kind.value} {d.status or ''} {d.answer.value if d.answer else 'no answer'}"
            out.append(f'<rect class="op {kind.value}" x="{x(op.time_s)}" y="{y(op.process) + 8}" '
                       f'width="{max(x(stop) - x(op.time_s), 3)}" height="{_ROW_H - 16}" '
                       f'fill="{_COLOURS[kind]}"><title>{esc(tip)}</title></rect>'
                       f'<text x="{x(op.time_s) + 2}" y="{y(op.process) + 6}">{d.status or "?"}</text>')
    first = verdict.first_violation
    if first is not None:
        at = next((o.time_s for o in history.ops if o.index == first.index), end)
        out.append(f'<g id="break-marker"><line x1="{x(at)}" x2="{x(at)}" y1="{_TOP - 14}" '
                   f'y2="{height - 20}" stroke="#c0392b" stroke-width="3"/>'
                   f'<text x="{x(at) + 4 if at < end / 2 else x(at) - 4}" y="{height - 6}" '
                   f'text-anchor="{"start" if at < end / 2 else "end"}" fill="#c0392b">broke: '
                   f'{esc(first.name.value)} (op {first.index})</text>'
                   f'<title>{esc(first.message)}</title></g>')
    out.append(f'<text x="{_LEFT}" y="{height - 6}">0s</text>'
               f'<text x="{_WIDTH - 60}" y="{height - 6}">{end:.2f}s</text></svg>')
    return "\n".join(out)


def _fault_spans(history: History, end: float) -> list[tuple[float, float, Op]]:
    spans: list[tuple[float, float, Op]] = []
    open_faults: list[Op] = []
    for op in history.ops:
        if op.kind is not OpKind.INVOKE:
            continue
        if op.action in FAULT_ACTIONS:
            open_faults.append(op)
        elif op.action is Action.HEAL:
            # A heal without a hop (the settle phase) heals every hop.
            healed = [f for f in open_faults if op.details.hop in (None, f.details.hop)]
            spans += [(f.time_s, op.time_s, f) for f in healed]
            open_faults = [f for f in open_faults if f not in healed]
    return spans + [(f.time_s, end, f) for f in open_faults]
