"""Report files, terminal text, and redaction of secrets."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import (
    BookingStatus, History, OpKind, Process, Schedule, SlotState, Step, check, from_jsonl, redact,
    render_html, render_text, write_report,
)
from harness.report.timeline import ticks
from harness.runinfo import RunInfo
from tests.harness.builders import BOOKING, INTENT, Builder, failing_history, passing_history, row

C1, C2 = Process.C1, Process.C2
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0."
       "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU")
REPLAY = "simcity run --seed sc1-1 --iterations 50 --profile default"


def test_pass_summary() -> None:
    history = passing_history()
    text = render_text(history, check(history))
    assert text.startswith("SC-1 PASS: final state STATE 1, winner C1")
    assert "crashes: 1" in text and "faults: 1" in text and "heals: 1" in text
    assert "answers: ok 1, fail 1, unknown 0" in text and "duration:" in text


def test_fail_forensic_snapshot() -> None:
    history = failing_history()
    verdict = check(history)
    text = render_text(history, verdict, replay_command=REPLAY)
    # The headline is the most basic invariant broken (4 here), not the first symptom seen (5).
    assert text.startswith("SC-1 FAIL: WINNER_FLIP (invariant 4")
    assert "CONFLICTING_ANSWERS" in text and "ACK_NOT_HONOURED" in text
    assert f"{BOOKING[C2]} confirmed" in text and f"{BOOKING[C1]} failed" in text  # all bookings
    assert f"C1's intent {INTENT[C1]}, its customer, this slot" in text  # derived references
    assert "last actions before the break:" in text and "restart_simcity" in text
    assert text.rstrip().endswith(f"replay: {REPLAY}")


def test_write_report_files(tmp_path: Path) -> None:
    history = failing_history()
    verdict = check(history)
    paths = write_report(tmp_path / "run", history, verdict, replay_command=REPLAY)
    assert from_jsonl(paths.history.read_text()) == history
    data = json.loads(paths.verdict.read_text())
    assert data["valid"] == "FAIL" and data["replay_command"] == REPLAY
    suite = ET.parse(paths.junit).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "SC-1"
    cases = suite.findall("testcase")
    assert len(cases) == 6
    failures = {c.get("name").split(".")[0]: c.find("failure") for c in cases}
    assert failures["4"] is not None and "WINNER_FLIP" in failures["4"].text
    assert failures["1"] is None and suite.get("failures") == "2"


def test_html_timeline_has_rows_faults_crashes_answers_and_break_marker(tmp_path: Path) -> None:
    history = failing_history()
    page = write_report(tmp_path, history, check(history)).html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    # The headline and the break marker name the same violation: the primary one.
    assert "<h1 class=\"fail\">SC-1 FAIL: WINNER_FLIP</h1>" in page
    assert 'id="timeline"' in page and 'id="break-marker"' in page and "broke: WINNER_FLIP (op 11)" in page
    for label in ("C1", "C2", "fault client-app", "fault app-db", "slot state"):
        assert f">{label}</text>" in page
    assert 'class="fault"' in page and ">partition</text>" in page
    assert 'class="crash"' in page and 'class="op confirmed' in page and 'class="app-down"' in page
    # The read where the winner flipped: a legal-looking state, drawn as broken.
    assert '<rect class="state held" data-op="5"' in page and '<rect class="state broken" data-op="11"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no external assets


def test_html_links_every_op_to_its_row_and_shortens_ids(tmp_path: Path) -> None:
    history = failing_history()
    page = write_report(tmp_path, history, check(history)).html.read_text()
    rows = set(re.findall(r'<tr id="(op-\d+)"', page))
    assert rows == {f"op-{op.index}" for op in history.ops}  # snapshots too
    links = set(re.findall(r'href="#([^"]+)"', page))
    assert links and links <= rows
    boxes = {int(n) for n in re.findall(r'<rect class="op [^"]*" data-op="(\d+)"', page)}
    assert boxes == {op.index for op in history.ops if op.kind is OpKind.INVOKE and op.action.is_booking}
    # Short names with the full id on hover; no bare UUID outside a title or the text report.
    assert f'<abbr class="id" title="{BOOKING[C2]}">b2</abbr>' in page
    shown = re.sub(r'title="[^"]*"', "", page[:page.index("<h2>Text report")])
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", shown)


def test_html_header_invariants_and_phases(tmp_path: Path) -> None:
    b = Builder()
    b.book(C1, 201)
    b.snap(SlotState.BOOKED, row(C1))
    b.crash()
    b.settle()
    b.book(C1, 200, retry=True)
    b.book(C2, 409, retry=True)
    b.snap(SlotState.BOOKED, row(C1), row(C2, BookingStatus.REJECTED))
    history = b.history()
    schedule = Schedule((Step.parse("send_book(A)"), Step.parse("restart_simcity()")), "test", "standard")
    run = RunInfo("test", 2, "storm", "local", schedule, {"BOOKING_STRATEGY": "atomic"}, git_sha="abc123")
    page = render_html(history, check(history), replay_command="simcity sc1 --seed test", run=run)
    for field in ("<dt>app strategy</dt><dd><code>atomic</code>", "<dt>stack</dt><dd>local",
                  "<dt>profile</dt><dd>storm", "<dt>git SHA</dt><dd><code>abc123</code>",
                  "<dt>replay</dt><dd><code>simcity sc1 --seed test</code>", "<dt>written</dt>"):
        assert field in page
    assert page.count('<td class="held">') == 6 and "STATE 1 (C1 won)" in page
    assert 'class="settle"' in page and 'class="app-down"' in page
    assert 'class="op rejected"' in page  # a correct 409 is not drawn as a failure
    assert len(re.findall(r'<line class="tick"', page)) >= 5


def test_ticks_are_round_and_cover_the_run() -> None:
    marks = list(ticks(0.0, 0.38))
    assert [t for t, _ in marks][:3] == [0.0, 0.05, 0.1] and marks[-1][0] <= 0.38 < marks[-1][0] + 0.05
    assert marks[1][1] == "0.05 s" and list(ticks(0.0, 12.0))[1][1] == "2 s"
    assert [text for _, text in ticks(3.02, 3.5)][:2] == ["3.05 s", "3.10 s"]  # a zoomed stretch: its own marks


def test_html_escapes_what_it_shows() -> None:
    b = Builder()
    invoke = b.invoke(C1)
    b.rec.booking_answer(invoke, status=None, error="<script>alert(1)</script>")
    b.snap(SlotState.FREE)
    history = b.history()
    page = render_html(history, check(history))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_redact() -> None:
    text = f"Authorization: Bearer {JWT} apikey=s3cr3t-key and eyJtruncated"
    out = redact(text, ["s3cr3t-key", ""])
    assert "eyJ" not in out and "s3cr3t-key" not in out
    assert out.count("[REDACTED]") == 3 and out.startswith("Authorization: Bearer [REDACTED]")
    assert redact("nothing secret here") == "nothing secret here"


def test_secrets_never_reach_the_report_dir(tmp_path: Path) -> None:
    b = Builder()
    invoke = b.invoke(C1)
    b.rec.booking_answer(invoke, status=None, error=f"ConnectError with key {JWT} / s3cr3t-key")
    b.snap(SlotState.FREE)
    history = b.history()
    write_report(tmp_path, history, check(history), replay_command="simcity run", secrets=["s3cr3t-key"])
    for path in tmp_path.iterdir():
        content = path.read_text()
        assert "eyJ" not in content and "s3cr3t-key" not in content, path.name


def test_redaction_keeps_ordinary_words() -> None:
    assert redact("heyJude and keyJam") == "heyJude and keyJam"


def test_html_svg_is_well_formed(tmp_path: Path) -> None:
    history = failing_history()
    page = write_report(tmp_path, history, check(history)).html.read_text()
    svg = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    ET.fromstring(svg)  # raises if an attribute or a label is not escaped


def inconclusive_history() -> History:
    b = Builder()
    b.book(C1, None)
    b.settle()
    b.book(C1, None, retry=True)
    b.book(C2, None, retry=True)
    b.snap(SlotState.FREE)
    return b.history()


def test_inconclusive_text_says_why_and_shows_the_last_read() -> None:
    history = inconclusive_history()
    verdict = check(history)
    text = render_text(history, verdict, replay_command=REPLAY)
    assert text.startswith("SC-1 INCONCLUSIVE (no verdict on the app): after settling the slot is free")
    assert "no definite answer came in the settle phase for C1 (1 tries), C2 (1 tries)" in text
    last = history.ops[-1]
    assert f"in the read of ops {last.invoke_index}-{last.index}" in text
    assert text.rstrip().endswith(f"replay: {REPLAY}")


def test_inconclusive_is_an_error_in_junit_and_says_so_in_every_file(tmp_path: Path) -> None:
    history = inconclusive_history()
    paths = write_report(tmp_path, history, check(history))
    suite = ET.fromstring(paths.junit.read_text())
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    [error] = suite.iter("error")
    assert error.get("type") == "INCONCLUSIVE" and "settle phase" in (error.get("message") or "")
    assert json.loads(paths.verdict.read_text())["valid"] == "INCONCLUSIVE"
    page = paths.html.read_text()
    assert '<h1 class="inconclusive">SC-1 INCONCLUSIVE (no verdict on the app)</h1>' in page


def test_a_short_settle_phase_gets_its_own_zoomed_timeline() -> None:
    b = Builder()
    for _ in range(20):  # a long chaos phase of reads
        b.snap(SlotState.FREE)
    b.settle()
    b.book(C1, 201, retry=True)
    b.book(C2, 409, retry=True)
    b.snap(SlotState.BOOKED, row(C1), row(C2, BookingStatus.REJECTED))
    history = b.history()
    page = render_html(history, check(history))
    assert '<svg id="timeline-settle"' in page and "The settle phase, zoomed" in page
    zoom = page[page.index('<svg id="timeline-settle"'):]
    zoom = zoom[:zoom.index("</svg>")]
    assert zoom.count('<rect class="op') == 2 and zoom.count('class="state') == 2  # the settle phase only
    ET.fromstring(zoom + "</svg>")
    assert "timeline-settle" not in render_html(failing_history(), check(failing_history()))  # no settle phase
