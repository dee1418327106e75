"""CONTRACT.md section 4: the app's optional boot id decides whether a crash happened. A new id
proves it; the same id proves the restart left the app running (no crash to count or to blame); no
id leaves the crash unverified, and the summary says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import Invariant, Process, SlotState, ViolationName, check
from harness.contract import CrashCheck, crash_check, crash_check_of
from harness.coverage import of_history
from harness.nemesis import Nemesis
from harness.report import render_text
from harness.stacks.external import ExternalStack
from tests.harness.builders import Builder, row
from tests.loopback import QuietHandler, http_server, url_of
from tests.harness.test_checker import assert_fires, names

C1 = Process.C1
BOOKED, FREE = SlotState.BOOKED, SlotState.FREE


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("a1", "b2", CrashCheck.RESTARTED), ("a1", "a1", CrashCheck.NOT_RESTARTED),
    (None, "b2", CrashCheck.UNVERIFIED), ("a1", None, CrashCheck.UNVERIFIED), (None, None, CrashCheck.UNVERIFIED),
])
def test_the_boot_id_before_and_after_decides(before: str | None, after: str | None, expected: CrashCheck) -> None:
    assert crash_check(before, after) is expected


def test_a_recorded_check_is_read_back_and_an_unknown_one_is_none() -> None:
    assert crash_check_of((("restart_ms", 80), ("boot_id", "changed"))) is CrashCheck.RESTARTED
    assert crash_check_of((("boot_id", "garbage"),)) is None and crash_check_of(()) is None


def lost_booking(check_of_crash: CrashCheck | None) -> Builder:
    b = Builder()
    b.book(C1, None)
    b.snap(BOOKED, row(C1))
    b.crash(check_of_crash)
    b.snap(FREE)
    return b


@pytest.mark.parametrize("check_of_crash", [CrashCheck.RESTARTED, CrashCheck.UNVERIFIED, None])
def test_a_loss_after_a_crash_that_may_have_happened_is_named_after_it(check_of_crash: CrashCheck | None) -> None:
    verdict = check(lost_booking(check_of_crash).history())
    assert ViolationName.BOOKING_LOST_AFTER_CRASH in names(verdict)


def test_a_loss_after_a_restart_that_left_the_app_running_is_no_crash_loss() -> None:
    b = lost_booking(CrashCheck.NOT_RESTARTED)
    verdict = check(b.history())
    assert_fires(verdict, ViolationName.BOOKING_LOST, Invariant.STABILITY, b.history().ops[-1].index)
    assert ViolationName.BOOKING_LOST_AFTER_CRASH not in names(verdict)


def test_coverage_and_the_summary_count_only_crashes_that_may_have_happened() -> None:
    b = Builder()
    b.crash(CrashCheck.RESTARTED), b.crash(CrashCheck.NOT_RESTARTED), b.crash(CrashCheck.UNVERIFIED)
    b.snap(FREE)
    cov = of_history(b.history())
    assert (cov["crashes"], cov["crashes_not_restarted"], cov["crashes_unverified"]) == (2, 1, 1)
    text = render_text(b.history(), check(b.history(), terminal=False))
    assert ("crashes: 2 (1 more restart(s) left the app running: its boot_id did not change, so they are not "
            "counted; 1 unverified: no boot_id)") in text


@pytest.mark.parametrize(("checks", "note"), [
    ([CrashCheck.RESTARTED, CrashCheck.RESTARTED], "crashes: 2 (each verified by a new boot_id)"),
    ([CrashCheck.UNVERIFIED], "crashes: 1 (unverified: the app's /health gives no boot_id)"),
    ([CrashCheck.RESTARTED, CrashCheck.WATCHED, CrashCheck.WATCHED],
     "crashes: 3 (1 verified by a new boot_id, 2 watched by SimCity itself: every process of the app gone, "
     "a new one listening)"),
    ([CrashCheck.WATCHED], "crashes: 1 (1 watched by SimCity itself: every process of the app gone, a new one "
                           "listening)"),
])
def test_the_summary_says_how_the_crashes_were_verified(checks: list[CrashCheck], note: str) -> None:
    b = Builder()
    for each in checks:
        b.crash(each)
    b.snap(FREE)
    assert note in render_text(b.history(), check(b.history(), terminal=False))


def test_a_crash_takes_the_new_boot_id_from_the_answer_that_ended_its_wait(tmp_path: Path) -> None:
    """Asking /health once more after the wait would cost another database ping through whatever
    app-db fault is on (0.5 s per crash under 150 ms of latency): the answer that said "ready"
    already names the new start. A real HTTP app of the test's own, restarted by a real command."""
    boot = tmp_path / "boot_id"
    boot.write_text("a1")
    hits: list[str] = []

    class Health(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            hits.append(self.path)
            body = json.dumps({"status": "ok", "boot_id": boot.read_text().strip()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    restart = f"sh -c 'echo b2 > {boot}'"
    with http_server(Health) as server:
        with ExternalStack(url_of(server), "http://127.0.0.1:9", "service-key", restart_cmd=restart) as stack:
            nemesis = Nemesis(stack, {})
            nemesis.note_boot_id()
            before = len(hits)
            _, check = nemesis.crash()
    assert check is CrashCheck.RESTARTED
    assert len(hits) - before == 1, hits
