"""The pages SimCity writes, in a real browser: Debian's Chromium, headless, driven by Playwright.

A PASS and a FAIL report.html and a certificate.html are rendered from the histories the report
tests build, loaded from file:// and checked in the DOM as a person would use them: the headline,
an element for every operation, every in-page link landing on an element, no two timeline labels
on top of each other, nothing fetched from anywhere, and not one console error or page error.

Skipped, saying why, when Chromium or Playwright is missing; with SIMCITY_REQUIRE_BROWSER=1 (set
by .ci/run once Chromium is installed) that is a failure instead. One browser for the module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.certificate import Certificate, RunRecord, Status, write_certificate
from harness.checker import check
from harness.history import History, OpKind, Process
from harness.matrix import Matrix
from harness.report import write_report
from harness.report.page import headline
from tests.harness.builders import BOOKING_2, failing_history, passing_history, two_slot_history

CHROMIUM = os.environ.get("SIMCITY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Headless as root, with nothing that phones home (the machines have no network to reach).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
    MISSING = None if Path(CHROMIUM).is_file() else f"no Chromium at {CHROMIUM} (apt-get install chromium)"
except ImportError:
    MISSING = "playwright is not installed (pip install -e '.[test]')"

if MISSING and os.environ.get("SIMCITY_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"SIMCITY_REQUIRE_BROWSER=1 but {MISSING}")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"{MISSING}: the browser tests need both")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Loaded:
    page: Page
    problems: list[str] = field(default_factory=list)  # console errors, page errors, requests out


def load(browser: Browser, path: Path) -> Loaded:
    page = browser.new_page(viewport={"width": 1250, "height": 900})
    loaded = Loaded(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            loaded.problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: loaded.problems.append(f"page error: {error}"))
    page.on("request", lambda request: None if request.url.startswith("file://") else
            loaded.problems.append(f"request out: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return loaded


_DANGLING_LINKS = """() => Array.from(document.querySelectorAll('a[href^="#"]'))
    .map(a => a.getAttribute('href').slice(1)).filter(id => !document.getElementById(id))"""
_LINK_COUNT = "() => document.querySelectorAll('a[href^=\"#\"]').length"
# Pairs of timeline labels whose boxes overlap: the "200200200" of labels drawn over each other.
_OVERLAPPING_LABELS = """() => {
    const hits = [];
    for (const svg of document.querySelectorAll('svg.timeline')) {
        const boxes = Array.from(svg.querySelectorAll('text')).map(t => [t.textContent, t.getBBox()]);
        for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
            const [ta, a] = boxes[i], [tb, b] = boxes[j];
            if (a.x < b.x + b.width - 0.5 && b.x < a.x + a.width - 0.5 && a.y < b.y + b.height - 0.5 && b.y < a.y + a.height - 0.5)
                hits.push(svg.id + ': ' + ta + ' / ' + tb);
        }
    }
    return hits;
}"""


def report(tmp_path: Path, name: str, history: History) -> Path:
    return write_report(tmp_path / name, history, check(history),
                        replay_command=f"simcity sc1 --seed {name}").html


def assert_a_report_a_person_can_use(browser: Browser, path: Path, history: History) -> Loaded:
    loaded = load(browser, path)
    page = loaded.page
    assert page.locator("h1").inner_text() == headline(history, check(history))
    for op in history.ops:  # every operation has its row; every booking call its box
        assert page.locator(f"#op-{op.index}").count() == 1, op.index
        if op.kind is OpKind.INVOKE and op.action.is_booking:
            assert page.locator(f'#timeline rect.op[data-op="{op.index}"]').count() == 1, op.index
    assert page.evaluate(_LINK_COUNT) > len(history.ops)
    assert page.evaluate(_DANGLING_LINKS) == []
    assert page.evaluate(_OVERLAPPING_LABELS) == []
    return loaded


def test_a_failing_report_reads_and_links_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    history = failing_history()
    loaded = assert_a_report_a_person_can_use(browser, report(tmp_path, "fail", history), history)
    page = loaded.page
    primary = check(history).primary
    assert primary is not None
    assert page.locator("h1").inner_text() == f"SC-1 FAIL: {primary.name.value}"
    # The break marker names the headline's violation, and a click on it lands on its operation.
    marker = page.locator("#break-marker")
    assert f"broke: {primary.name.value} (op {primary.index})" in marker.text_content()
    marker.locator("text").click()
    assert page.evaluate("() => location.hash") == f"#op-{primary.index}"
    assert page.evaluate("() => document.querySelector(':target').id") == f"op-{primary.index}"
    # A short id shows its full UUID on hover.
    assert page.locator("abbr.id", has_text="b2").first.get_attribute("title").count("-") == 4
    assert loaded.problems == []


def test_a_passing_report_reads_and_links_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    history = passing_history()
    loaded = assert_a_report_a_person_can_use(browser, report(tmp_path, "pass", history), history)
    page = loaded.page
    assert page.locator("#break-marker").count() == 0
    assert page.locator("td.held").count() == 6  # every invariant, the terminal state included
    assert page.locator("#timeline rect.op.rejected").count() == 1  # C2's 409, in its own colour
    assert page.locator("#timeline line.tick").count() >= 5
    assert loaded.problems == []


def test_a_report_of_several_slots_shows_each_slot(browser: Browser, tmp_path: Path) -> None:
    history = two_slot_history()
    loaded = assert_a_report_a_person_can_use(browser, report(tmp_path, "slots", history), history)
    page = loaded.page
    assert page.locator("h1").inner_text() == "SC-1 FAIL: DOUBLE_BOOKING on slot 2"
    lanes = page.locator("#timeline text").all_text_contents()
    assert {"slot 1", "slot 2", "C1@2", "C2@2"} <= set(lanes)
    assert page.locator("#timeline rect.state.broken").count() == 1  # slot 2 only
    # Which two replies confirmed: both outlined on the timeline and named per slot.
    assert page.locator("#timeline rect.op.confirmed.marked").count() == 2
    slot_2 = page.locator("h2:text('Slots') + table tr").nth(2).inner_text()
    assert "C1@2 at op" in slot_2 and "C2@2 at op" in slot_2 and "DOUBLE_BOOKING" in slot_2
    assert page.locator(f'abbr[title="{BOOKING_2[Process.C2]}"]').count() >= 1
    assert loaded.problems == []


def test_a_certificate_reads_and_links_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "cert"
    matrix = Matrix("tiny", ("s1",), ("calm", "storm"), 6, "two runs")
    for name, history in (("s1__calm", passing_history()), ("s1__storm", failing_history())):
        write_report(out / "runs" / name, history, check(history))
    runs = (RunRecord("s1", "calm", 6, Status.PASS, "0123456789ab", winner="C1", report="runs/s1__calm", wall_s=1.2),
            RunRecord("s1", "storm", 6, Status.FAIL, "ba9876543210", primary="WINNER_FLIP",
                      first_violation="CONFLICTING_ANSWERS at op 9", report="runs/s1__storm", wall_s=2.5))
    target = {"app_strategy": "atomic", "app_env": {}, "stack_kind": "local", "git_sha": "abc",
              "simcity_version": "0.1.0", "image_digest": None, "image_digests": {}}
    paths = write_certificate(out, Certificate(target, matrix, runs, created_at="now", wall_s=3.7))
    loaded = load(browser, paths.html)
    page = loaded.page
    assert page.locator("h1").inner_text() == "SimCity certificate: FAIL"
    assert page.evaluate(_DANGLING_LINKS) == []
    assert "C1 won" in page.locator("td.cell.PASS").inner_text()
    assert "simcity shrink runs/s1__storm" in page.locator(".failure").inner_text()
    # Each cell's link opens its run's timeline, which loads cleanly too.
    page.locator("td.cell.FAIL a", has_text="FAIL").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("runs/s1__storm/report.html")
    assert page.locator("h1").inner_text().startswith("SC-1 FAIL")
    assert loaded.problems == []


def test_the_index_of_runs_lists_each_run_and_its_links_open_them(browser: Browser, tmp_path: Path) -> None:
    from harness.runs_index import write_index  # noqa: PLC0415

    root = tmp_path / "reports"
    for name, history in (("sc1-1-pass", passing_history()), ("sc1-2-fail", failing_history())):
        write_report(root / name, history, check(history))
    loaded = load(browser, write_index(root))
    page = loaded.page
    assert page.locator("h1").inner_text().startswith("SimCity runs in")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    assert sorted(page.locator("tbody td.PASS, tbody td.FAIL").all_inner_texts()) == ["FAIL", "PASS"]
    page.locator("a", has_text="sc1-2-fail").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("sc1-2-fail/report.html")
    assert page.locator("h1").inner_text().startswith("SC-1 FAIL")
    assert loaded.problems == []
