"""`simcity check REPORT_DIR|history.jsonl`: judge a stored history again with this SimCity's
checker (Jepsen's `analyze`), without a stack: after a checker change, on a history from another
machine, or on one written by hand.

Prints the verdict as `simcity sc1` does and, with --out, writes a fresh report (history.jsonl
in the current format, verdict.json, junit.xml, report.html; run.json copied, so `simcity replay`
works on it). Exit 0 PASS, 1 FAIL, 3 INCONCLUSIVE, 2 unusable input (one line).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from rich.console import Console

from harness.certificate import CERT_FILE, RUNS_DIR
from harness.checker import Validity, Verdict, check
from harness.errors import HistoryFormatError, UsageError
from harness.history import History
from harness.history_io import from_jsonl
from harness.report import ensure_writable, redact, render_text, write_report
from harness.runinfo import RUN_FILE, VERDICT_FILE
from harness.runs_index import after_run
from harness.terminal import display_path, print_verdict

HISTORY_FILE = "history.jsonl"
EXIT_OF = {Validity.PASS: 0, Validity.FAIL: 1, Validity.INCONCLUSIVE: 3}
# A history's error names the bad record, which may be a long line: the error stays readable.
MAX_ERROR_CHARS = 300

CHECK_HELP = """\
Judge a stored history again with this SimCity's checker, without a stack (Jepsen's `analyze`):
PATH is a report dir (its history.jsonl) or a history.jsonl file, of any SimCity that wrote
format version 1 or 2. Prints the verdict as `simcity sc1` does, and the recorded one when it
differs. --out DIR writes a fresh report there (DIR may be the report dir itself).

exit: 0 PASS, 1 FAIL, 3 INCONCLUSIVE, 2 PATH unusable (not there, not a history, corrupt).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("check", help="judge a stored history again with the current checker",
                            description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, metavar="REPORT_DIR|history.jsonl",
                        help="a report dir of sc1, certify, replay or shrink, or a history.jsonl file")
    parser.add_argument("--out", "--report-dir", type=Path, dest="out", metavar="DIR",
                        help="write a fresh report (verdict, JUnit, HTML) for the new verdict into DIR")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON instead of text")


def read_history(path: Path) -> tuple[Path, History]:
    """The history file that `path` names and its history; UsageError (one line) when unusable."""
    file = path / HISTORY_FILE if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not path.is_dir():
            raise UsageError(f"{path}: no such file") from None
        hint = f" (a certificate: each run has one, under {RUNS_DIR}/)" if (path / CERT_FILE).is_file() else ""
        raise UsageError(f"{path}: no {HISTORY_FILE} in it{hint}") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{file}: not a SimCity history (not UTF-8 text)") from None
    try:
        history = from_jsonl(text)
    except HistoryFormatError as exc:
        message = " ".join(str(exc).split())
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS] + "..."
        raise UsageError(f"{file}: {message}") from None
    return file, history


def _recorded(directory: Path) -> dict[str, object]:
    """The verdict.json beside the history, {} without one (a bare history file)."""
    try:
        obj = json.loads((directory / VERDICT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    if args.out is not None:
        ensure_writable(args.out, "--out")
    file, history = read_history(args.path)
    directory = file.parent
    recorded = _recorded(directory)
    replay = recorded.get("replay_command")
    replay_command = replay if isinstance(replay, str) else ""
    verdict = check(history)
    was = recorded.get("valid")
    if args.out is not None:
        write_report(args.out, history, verdict, replay_command=replay_command)
        if (directory / RUN_FILE).is_file() and directory.resolve() != args.out.resolve():
            shutil.copyfile(directory / RUN_FILE, args.out / RUN_FILE)
        after_run(args.out, latest=False)
    if args.json:
        print(redact(json.dumps(_summary(file, history, verdict, was, args.out), indent=2)), flush=True)
    else:
        where = f"report: {display_path(args.out / 'report.html')}" if args.out else f"history: {display_path(file)}"
        print_verdict(console, redact(render_text(history, verdict, replay_command=replay_command)),
                      verdict.valid, where)
        if isinstance(was, str) and was != verdict.valid.value:
            console.print(f"the recorded verdict was {was}; this checker says {verdict.valid.value}",
                          highlight=False, markup=False)
    return EXIT_OF[verdict.valid]


def _summary(file: Path, history: History, verdict: Verdict, was: object, out: Path | None) -> dict[str, object]:
    return {"verdict": verdict.to_json(), "recorded": was if isinstance(was, str) else None,
            "history": str(file), "ops": len(history.ops), "report_dir": str(out) if out else None}
