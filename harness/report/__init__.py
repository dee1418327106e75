"""What a run leaves behind: history.jsonl, verdict.json, junit.xml, report.html, and the text the
terminal prints. The only package of the pure core that writes files; one module per format
(`text`, `junit`, `page` with its `timeline`), `names` for the short names the page gives ids.

Every byte written goes through `redact`, so a token that slipped into an error message or an app
body never reaches a report directory that may be uploaded as a CI artifact.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.checker import Verdict
from harness.errors import UsageError
from harness.history import History
from harness.history_io import to_jsonl
from harness.report.junit import render_junit
from harness.report.page import render_html
from harness.report.text import render_text

if TYPE_CHECKING:  # runinfo imports `redact` from here: only the type is needed
    from harness.runinfo import RunInfo

__all__ = ["REDACTED", "ReportPaths", "ensure_writable", "redact", "render_html", "render_junit",
           "render_text", "write_report"]

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
                 secrets: Sequence[str] = (), run: RunInfo | None = None) -> ReportPaths:
    """Write the four report files into `directory` (created if missing). `run` (what was run
    where: profile, stack, app environment, git SHA) fills the page's header."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(directory / "history.jsonl", directory / "verdict.json",
                        directory / "junit.xml", directory / "report.html")
    verdict_json = {**verdict.to_json(), "replay_command": replay_command or None}
    contents = {
        paths.history: to_jsonl(history),
        paths.verdict: json.dumps(verdict_json, indent=2) + "\n",
        paths.junit: render_junit(history, verdict),
        paths.html: render_html(history, verdict, replay_command=replay_command, run=run),
    }
    for path, text in contents.items():
        path.write_text(redact(text, secrets), encoding="utf-8")
    return paths
