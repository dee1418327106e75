"""`reports/latest` and `reports/index.html`: the way back to every run a checkout has made.

After each `simcity sc1` or `simcity certify` that writes under `reports/`, `latest` names that
run's directory (a symlink, replaced atomically; where symlinks cannot be made, a small file
holding the directory's name) and `index.html` lists every run and certificate found under
`reports/`: verdict, seed, profile, stack, app strategy, time, and a link to its page.
`simcity index [DIR]` rebuilds the page by hand. The page is self-contained and every value on it
is escaped: report dirs hold what apps answered, and file names are anyone's.
"""

from __future__ import annotations

import html
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from harness.certificate import CERT_FILE as CERTIFICATE, HTML_FILE as CERTIFICATE_PAGE
from harness.runinfo import RUN_FILE as RUN_INFO, VERDICT_FILE as RUN_VERDICT

REPORTS_ROOT = Path("reports")
LATEST = "latest"
INDEX = "index.html"
RUN_PAGE = "report.html"


@dataclass(frozen=True)
class IndexRow:
    """One run (an sc1 report dir, one run of a certificate, a replay) or one certificate."""

    path: str  # the directory, relative to the index, with '/' separators
    kind: str  # "run" or "certificate"
    verdict: str
    seed: str
    profile: str
    stack: str
    strategy: str
    written_at: float  # when its verdict was written (epoch seconds)
    page: str  # report.html or certificate.html (may be missing: a run stopped before writing it)


def _load(path: Path) -> dict[str, object]:
    """A JSON object, or {} for a file that is missing or not one: a broken report dir gets a row
    of question marks, never a broken index."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _text(value: object) -> str:
    return "?" if value is None or value == "" else str(value)


def _run_row(directory: Path, relative: str) -> IndexRow:
    verdict = _load(directory / RUN_VERDICT)
    info = _load(directory / RUN_INFO)
    app_env = info.get("app_env")
    strategy = app_env.get("BOOKING_STRATEGY", "atomic") if isinstance(app_env, dict) else None
    return IndexRow(relative, "run", _text(verdict.get("valid")), _text(info.get("seed")),
                    _text(info.get("profile")), _text(info.get("stack_kind")), _text(strategy),
                    _mtime(directory / RUN_VERDICT), RUN_PAGE)


def _certificate_row(directory: Path, relative: str) -> IndexRow:
    cert = _load(directory / CERTIFICATE)
    target = cert.get("target") if isinstance(cert.get("target"), dict) else {}
    matrix = cert.get("matrix") if isinstance(cert.get("matrix"), dict) else {}
    assert isinstance(target, dict) and isinstance(matrix, dict)
    seeds, profiles = matrix.get("seeds"), matrix.get("profiles")
    return IndexRow(relative, "certificate", _text(cert.get("verdict")),
                    f"{len(seeds)} seeds" if isinstance(seeds, list) else "?",
                    ", ".join(map(str, profiles)) if isinstance(profiles, list) else _text(matrix.get("name")),
                    _text(target.get("stack_kind")), _text(target.get("app_strategy")),
                    _mtime(directory / CERTIFICATE), CERTIFICATE_PAGE)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def find_runs(root: Path) -> list[IndexRow]:
    """Every run and certificate under `root`, newest first. Symlinks (`latest`) are not
    followed, so nothing is listed twice."""
    rows = []
    for current, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        directory = Path(current)
        relative = directory.relative_to(root).as_posix()
        if relative == ".":
            continue
        if CERTIFICATE in filenames:
            rows.append(_certificate_row(directory, relative))
        elif RUN_VERDICT in filenames:
            rows.append(_run_row(directory, relative))
    return sorted(rows, key=lambda row: (-row.written_at, row.path))


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #f4f4f4; } td.PASS { color: #1e8449; font-weight: bold; } td.FAIL { color: #c0392b; font-weight: bold; }
td.INCONCLUSIVE, td.ERROR { color: #b9770e; font-weight: bold; } tr.certificate td { background: #f7f9fc; }
"""


def render_index(rows: list[IndexRow], root: Path) -> str:
    esc = html.escape
    body = []
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row.written_at)) if row.written_at else "?"
        link = f'<a href="{esc(quote(row.path + "/" + row.page))}">{esc(row.path)}</a>'
        body.append(f'<tr class="{esc(row.kind)}"><td class="{esc(row.verdict)}">{esc(row.verdict)}</td>'
                    f"<td>{esc(row.kind)}</td><td>{esc(row.seed)}</td><td>{esc(row.profile)}</td>"
                    f"<td>{esc(row.stack)}</td><td>{esc(row.strategy)}</td><td>{esc(when)}</td><td>{link}</td></tr>")
    counts = {v: sum(r.verdict == v for r in rows) for v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none yet"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>SimCity runs in '
            f"{esc(str(root))}</title><style>{_STYLE}</style></head><body>\n"
            f"<h1>SimCity runs in {esc(str(root))}</h1>\n<p>{len(rows)} runs and certificates: {esc(summary)}. "
            f'Newest first; <code>{LATEST}</code> is the last one written.</p>\n'
            "<table><thead><tr><th>verdict</th><th>what</th><th>seed</th><th>profile</th><th>stack</th>"
            "<th>app strategy</th><th>time (UTC)</th><th>report</th></tr></thead><tbody>\n"
            + "\n".join(body) + "\n</tbody></table></body></html>\n")


def write_index(root: Path) -> Path:
    """(Re)write `root/index.html` from what is under `root` now; written whole, then renamed in."""
    path = root / INDEX
    _replace_atomically(path, lambda tmp: tmp.write_text(render_index(find_runs(root), root), encoding="utf-8"))
    return path


def update_latest(root: Path, directory: Path) -> Path:
    """Point `root/latest` at `directory` (inside `root`): a relative symlink, else a file naming it."""
    name = os.path.relpath(directory, root)
    link = root / LATEST

    def make(tmp: Path) -> None:
        try:
            tmp.symlink_to(name, target_is_directory=True)
        except OSError:  # a file system or platform without symlinks
            tmp.write_text(name + "\n", encoding="utf-8")

    _replace_atomically(link, make)
    return link


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def after_run(directory: Path, root: Path = REPORTS_ROOT, *, latest: bool = True) -> Path | None:
    """After a run wrote `directory`: when that is under `root`, point `latest` at it (unless
    told not: a re-check is no run) and rebuild the index; the index's path, or None for a run
    written elsewhere. The run's verdict stands whatever happens here: a failure to write either
    is one line on stderr."""
    try:
        inside = directory.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    if str(inside) == ".":
        return None
    try:
        if latest:
            update_latest(root, root / inside)
        return write_index(root)
    except OSError as exc:  # e.g. a real directory called latest, a read-only reports/
        print(f"simcity: note: {root / LATEST} and {root / INDEX} not updated: {exc}", file=sys.stderr)
        return None
