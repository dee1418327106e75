"""What the `simcity` commands show on a terminal: the console, the progress display (once, for
sc1, replay, shrink and certify), a spinner while a stack starts, and paths as a user reads them.

Text is wrapped to the terminal's width on a terminal and not at all anywhere else: a CI log or a
pipe gets whole lines (rich would otherwise wrap at 80 columns, mid-sentence).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn,
)
from rich.text import Text

from harness.checker import Validity

if TYPE_CHECKING:
    from harness.stacks.base import Stack

VERDICT_STYLE = {Validity.PASS: "bold green", Validity.FAIL: "bold red", Validity.INCONCLUSIVE: "bold yellow"}


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    console = Console(stderr=stderr, quiet=quiet)
    console.soft_wrap = not console.is_terminal
    return console


def display_path(path: Path | str) -> str:
    """`path` relative to the current directory where that is shorter, else absolute."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive (Windows): only the absolute form exists
        return absolute
    return relative if len(relative) < len(absolute) else absolute


def print_verdict(console: Console, text: str, valid: Validity, where: str) -> None:
    """A verdict as `simcity sc1` and `simcity check` print it: the summary or forensic text, then
    the verdict word in colour and where to look (`where` is shown as is, never as markup)."""
    console.print(text, highlight=False, markup=False)
    console.print(Text.assemble((valid.value, VERDICT_STYLE[valid]), f" - {where}"), highlight=False)


class ClockColumn(ProgressColumn):
    """Time since the task started, ticking even after its bar is full: rich's TimeElapsedColumn
    stops at the moment a task first completes, which froze the clock of a certify job (a job's
    task is reused for run after run) and of a run in its settle phase (every step done)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        minutes, seconds = divmod(int(elapsed), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours}:{minutes:02d}:{seconds:02d}", style="progress.elapsed")


def progress_display(label: str | ProgressColumn, *, disable: bool, bar_width: int | None = 40,
                     console: Console | None = None) -> Progress:
    """The one progress display: label, bar, done/total, what is happening now, clock; on stderr
    unless told (stdout carries the verdict, or JSON, only); gone once finished."""
    first = TextColumn(f"[bold blue]{label}") if isinstance(label, str) else label
    return Progress(first, BarColumn(bar_width=bar_width), MofNCompleteColumn(), TextColumn("{task.description}"),
                    ClockColumn(), console=console or make_console(stderr=True), transient=True, disable=disable)


@contextlib.contextmanager
def started(stack: Stack, *, disable: bool) -> Iterator[Stack]:
    """`with stack:`, with a spinner and a clock while it starts (seconds with nothing else to show)."""
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), ClockColumn(),
                        console=make_console(stderr=True), transient=True, disable=disable)
    with contextlib.ExitStack() as running:
        with progress:
            progress.add_task(f"starting the {stack.kind} stack", total=None)
            running.enter_context(stack)
        yield stack
