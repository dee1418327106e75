"""The terminal helpers: a clock that keeps ticking, paths as a user reads them, no wrapping
off a terminal."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.progress import Progress, TimeElapsedColumn

from harness.terminal import ClockColumn, display_path, make_console


def test_clock_ticks_after_the_bar_is_full() -> None:
    now = [0.0]
    progress = Progress(get_time=lambda: now[0], disable=True)
    task_id = progress.add_task("run", total=10)
    now[0] = 5.0
    progress.update(task_id, completed=10)  # the bar fills: rich marks the task finished
    now[0] = 125.0  # e.g. the settle phase, or the next run of a certify job
    task = progress.tasks[0]
    assert str(TimeElapsedColumn().render(task)) == "0:00:05"  # rich's own stops here
    assert str(ClockColumn().render(task)) == "0:02:05"


def test_display_path_is_relative_where_shorter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "reports" / "x" / "report.html") == os.path.join("reports", "x", "report.html")
    assert display_path("/") == "/"
    far = Path("/usr/share")
    assert display_path(far) == str(far)  # ../../usr/share would be longer


def test_off_a_terminal_lines_stay_whole() -> None:
    console = make_console()
    console.file = io.StringIO()  # not a terminal, as in CI or a pipe
    long_line = "replay: simcity sc1 " + "--app-env K=V " * 20
    assert not console.is_terminal and console.soft_wrap
    console.print(long_line, highlight=False, markup=False)
    assert console.file.getvalue() == long_line + "\n"


def test_on_a_terminal_text_wraps_to_its_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich's own switch: this output is a terminal
    monkeypatch.setenv("COLUMNS", "50")
    console = make_console()
    console.file = io.StringIO()
    assert console.is_terminal and not console.soft_wrap
    console.print("word " * 30, highlight=False, markup=False)
    lines = console.file.getvalue().splitlines()
    assert len(lines) > 1 and max(len(line) for line in lines) <= 50
