"""The certificate of `simcity certify`: one verdict for a release candidate over a whole matrix.

`certificate.json` (target identity, matrix, shard, per-run verdicts, coverage), `junit.xml` (a test
case per run) and `certificate.html` (the seed x profile grid, each failing cell linking to its run's
timeline). Shards' certificates merge into one (`merge`), refusing different targets or matrices and
duplicate runs, and marking runs no shard carried out as ERROR.

Verdict and exit code: FAIL (1) if any run FAILED, since a broken invariant is a finding whatever
else happened; else ERROR (3) if any run could not be carried out; else PASS (0) (also for a shard
that holds no run: more shards than runs; the merge still sees every run of the matrix).
"""

from __future__ import annotations

import html
import json
import os
import shlex
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from harness import coverage
from harness.errors import UsageError
from harness.matrix import Matrix, MatrixError, RunSpec
from harness.report import redact
from harness.runinfo import sc1_command

FORMAT = "simcity-certificate/1"
CERT_FILE, JUNIT_FILE, HTML_FILE = "certificate.json", "junit.xml", "certificate.html"
SUMMARY_FILE = "summary.md"  # for a CI step summary (GitHub Actions: $GITHUB_STEP_SUMMARY)
RUNS_DIR = "runs"


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # the run could not be carried out: no verdict on the product


EXIT_CODES = {Status.PASS: 0, Status.FAIL: 1, Status.ERROR: 3}


@dataclass(frozen=True)
class RunRecord:
    seed: str
    profile: str
    iterations: int
    status: Status
    schedule_hash: str | None = None
    primary: str | None = None  # headline violation of a FAIL
    first_violation: str | None = None  # where it broke: "NAME at op N"
    winner: str | None = None  # who won each slot of a PASS, slot 1 first: "C1", "C1 C2 C2 C1"
    report: str | None = None  # report dir, relative to the certificate's directory
    wall_s: float = 0.0
    error: str | None = None  # why an ERROR could not be carried out
    worker: int | None = None
    coverage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return RunSpec(self.seed, self.profile, self.iterations).id

    @property
    def spec(self) -> RunSpec:
        return RunSpec(self.seed, self.profile, self.iterations)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "seed": self.seed, "profile": self.profile, "iterations": self.iterations,
                "status": self.status.value, "schedule_hash": self.schedule_hash, "primary": self.primary,
                "first_violation": self.first_violation, "winner": self.winner, "report": self.report,
                "wall_s": round(self.wall_s, 3), "error": self.error, "worker": self.worker,
                "coverage": dict(self.coverage)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "RunRecord":
        return cls(seed=str(obj["seed"]), profile=str(obj["profile"]), iterations=int(obj["iterations"]),
                   status=Status(obj["status"]), schedule_hash=obj.get("schedule_hash"),
                   primary=obj.get("primary"), first_violation=obj.get("first_violation"),
                   winner=obj.get("winner"),
                   report=obj.get("report"), wall_s=float(obj.get("wall_s") or 0.0), error=obj.get("error"),
                   worker=obj.get("worker"), coverage=obj.get("coverage") or {})


@dataclass(frozen=True)
class Certificate:
    target: Mapping[str, Any]  # what was certified: must match for shards to merge
    matrix: Matrix
    runs: tuple[RunRecord, ...]
    shard: str = "1/1"  # "i/n", or "merged"
    created_at: str = ""
    wall_s: float = 0.0
    jobs: int = 1
    merged_from: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        statuses = {r.status for r in self.runs}
        if Status.FAIL in statuses:
            return Status.FAIL
        if Status.ERROR in statuses:
            return Status.ERROR
        return Status.PASS  # every run passed; a shard with no run at all (n > matrix) has nothing to fail

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def counts(self) -> dict[str, int]:
        return {s.value.lower(): sum(r.status is s for r in self.runs) for s in Status}

    def coverage(self) -> dict[str, Any]:
        total = coverage.empty()
        for run in self.runs:
            total = coverage.add(total, run.coverage)
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "verdict": self.status.value,
            "created_at": self.created_at,
            "target": dict(self.target),
            "matrix": self.matrix.to_json(),
            "shard": self.shard,
            "merged_from": list(self.merged_from),
            "jobs": self.jobs,
            "wall_s": round(self.wall_s, 3),
            "summary": {"runs": len(self.runs), **self.counts()},
            "errors": [{"id": r.id, "error": r.error} for r in self.runs if r.status is Status.ERROR],
            "coverage": self.coverage(),
            "runs": [r.to_json() for r in self.runs],
        }

    @classmethod
    def from_json(cls, obj: object, where: str = "certificate") -> "Certificate":
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise UsageError(f"{where}: not a SimCity certificate (format {FORMAT!r} expected)")
        try:
            return cls(target=dict(obj["target"]), matrix=Matrix.from_json(obj["matrix"]),
                       runs=tuple(RunRecord.from_json(r) for r in obj["runs"]), shard=str(obj.get("shard", "")),
                       created_at=str(obj.get("created_at", "")), wall_s=float(obj.get("wall_s") or 0.0),
                       jobs=int(obj.get("jobs") or 1), merged_from=tuple(obj.get("merged_from") or ()))
        except MatrixError as exc:
            raise UsageError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{where}: malformed certificate: {exc!r}") from None


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- files ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificatePaths:
    json: Path
    junit: Path
    html: Path
    summary: Path


def write_certificate(directory: Path, cert: Certificate, secrets: Sequence[str] = ()) -> CertificatePaths:
    directory.mkdir(parents=True, exist_ok=True)
    paths = CertificatePaths(directory / CERT_FILE, directory / JUNIT_FILE, directory / HTML_FILE,
                             directory / SUMMARY_FILE)
    contents = {
        paths.json: json.dumps(cert.to_json(), indent=2) + "\n",
        paths.junit: render_junit(cert),
        paths.html: render_html(cert),
        paths.summary: render_markdown(cert),
    }
    for path, text in contents.items():
        path.write_text(redact(text, secrets), encoding="utf-8")
    return paths


def read_certificate(path: Path) -> tuple[Certificate, Path]:
    """A certificate file (or a directory holding `certificate.json`) and the directory it is in."""
    file = path / CERT_FILE if path.is_dir() else path
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file}: not JSON: {exc}") from None
    return Certificate.from_json(obj, str(file)), file.parent


def render_markdown(cert: Certificate) -> str:
    """The verdict, the target and one line per run that did not pass, as Markdown: what a CI step
    summary shows above the fold. Cell text is escaped for tables (`|`, newlines)."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    counts = cert.counts()
    lines = [f"## SimCity certificate: {cert.status.value}", "",
             f"{len(cert.runs)} runs of matrix `{cert.matrix.name}` ({cert.matrix.iterations} actions"
             f"{_slots_text(cert)}): {counts['pass']} PASS, {counts['fail']} FAIL, {counts['error']} ERROR "
             f"in {cert.wall_s:.1f} s.", "", "| target | |", "| --- | --- |"]
    lines += [f"| {cell(_TARGET_LABELS.get(k, k.replace('_', ' ')))} | {cell(_target_value(k, v, cert.target))} |"
              for k, v in cert.target.items()]
    failed = [run for run in cert.runs if run.status is not Status.PASS]
    if failed:
        lines += ["", "| run | verdict | what | report |", "| --- | --- | --- | --- |"]
        lines += [f"| {cell(run.id)} | {run.status.value} | {cell(run.first_violation or run.error or '-')} | "
                  f"{cell(f'{run.report}/report.html' if run.report else '-')} |" for run in failed]
    return "\n".join(lines) + "\n"


def render_junit(cert: Certificate) -> str:
    counts = cert.counts()
    suite = ET.Element("testsuite", name=f"simcity certify {cert.matrix.name}", tests=str(len(cert.runs)),
                       failures=str(counts["fail"]), errors=str(counts["error"]), time=f"{cert.wall_s:.3f}")
    for run in cert.runs:
        case = ET.SubElement(suite, "testcase", classname=f"certify.{run.profile}", name=run.id,
                             time=f"{run.wall_s:.3f}")
        if run.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", type=run.primary or "FAIL",
                                    message=f"{run.primary}: {run.first_violation or ''}".strip())
            failure.text = (f"schedule {run.schedule_hash}; first violation: {run.first_violation}; "
                            f"report: {run.report}")
        elif run.status is Status.ERROR:
            error = ET.SubElement(case, "error", type="infrastructure", message=run.error or "not carried out")
            error.text = run.error or ""
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1.pass{color:#2e9d4c} h1.fail{color:#c0392b} h1.error{color:#b7791f}
table{border-collapse:collapse;font-size:13px;margin-bottom:1.5em} td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
td.PASS{background:#d4f0db} td.FAIL{background:#f6cfcb} td.ERROR{background:#fbe6c2} td.absent{background:#eee;color:#888}
td.cell a{color:#7b1d12;font-weight:bold} td.PASS a{color:#1e6b34}
.sub{font-size:11px;color:#555;font-weight:normal}
.failure{border-left:4px solid #c0392b;padding:.2em 1em;margin:.8em 0;background:#fdf3f2}
.failure h3{margin:.2em 0} .failure dl{margin:.3em 0} .failure dd{margin:0 0 .3em 1em}
code{font-family:ui-monospace,monospace;font-size:12px;overflow-wrap:anywhere}
"""


def render_html(cert: Certificate) -> str:
    """The page: verdict, the seed x profile grid (each cell its verdict, winner or violation, and
    duration, linking to the run's timeline), every failure with the commands that replay and
    shrink it, the target in words, coverage, and the runs not carried out."""
    esc = html.escape
    status = cert.status.value
    by_cell = {(r.seed, r.profile): r for r in cert.runs}
    head = "".join(f"<th>{esc(p)}</th>" for p in cert.matrix.profiles)
    rows = []
    for seed in cert.matrix.seeds:
        cells = "".join(_cell(by_cell.get((seed, profile))) for profile in cert.matrix.profiles)
        rows.append(f"<tr><th>{esc(seed)}</th>{cells}</tr>")
    # The app's image is one entry of the images: shown once, there.
    shown = {k: v for k, v in cert.target.items() if not (k == "image_digest" and "image_digests" in cert.target)}
    target = "".join(f"<tr><th>{esc(_TARGET_LABELS.get(k, k))}</th><td>{esc(_target_value(k, v, cert.target))}</td></tr>"
                     for k, v in shown.items())
    cov = cert.coverage()
    cov_rows = "".join(f"<tr><th>{esc(k.replace('_', ' '))}</th><td>{esc(_flat(v))}</td></tr>" for k, v in cov.items())
    errors = [r for r in cert.runs if r.status is Status.ERROR]
    failures = [r for r in cert.runs if r.status is Status.FAIL]
    counts = cert.counts()
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>SimCity certificate {status}</title><style>{_CSS}</style></head><body>",
        f'<h1 class="{status.lower()}">SimCity certificate: {status}</h1>',
        f"<p>matrix <code>{esc(cert.matrix.name)}</code> ({esc(cert.matrix.description)}), "
        f"{cert.matrix.iterations} actions per run{_slots_text(cert)}, matrix hash <code>{cert.matrix.hash}</code>; "
        f"shard {esc(cert.shard)}; {len(cert.runs)} runs: {counts['pass']} PASS, {counts['fail']} FAIL, "
        f"{counts['error']} ERROR; {cert.wall_s:.1f} s with {cert.jobs} job(s); {esc(cert.created_at)}</p>",
        f"<h2>Matrix</h2><table><tr><th>seed \\ profile</th>{head}</tr>{''.join(rows)}</table>",
    ]
    if failures:
        parts.append(f"<h2>Failures</h2><p>Commands to run from this certificate's directory.</p>"
                     f"{''.join(_failure(r, cert) for r in failures)}")
    parts += [f"<h2>Target</h2><table>{target}</table>", f"<h2>Coverage</h2><table>{cov_rows}</table>"]
    if errors:
        items = "".join(f"<li><code>{esc(r.id)}</code>: {esc(r.error or '')}</li>" for r in errors)
        parts.append(f"<h2>Runs not carried out</h2><ul>{items}</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _cell(run: RunRecord | None) -> str:
    esc = html.escape
    if run is None:
        return '<td class="cell absent">not in this shard</td>'
    label = run.status.value
    if run.status is Status.FAIL:
        label += f": {esc(run.primary or '')}"
    elif run.status is Status.ERROR:
        label += f": {esc((run.error or '')[:80])}"
    if run.report and run.status is not Status.ERROR:
        label = f'<a href="{esc(run.report.rstrip("/"))}/report.html">{label}</a>'
    detail = []
    if run.winner:
        detail.append(f"{esc(run.winner)} won" if " " not in run.winner else f"winners {esc(run.winner)}")
    if run.status is Status.FAIL:
        detail.append(f'<a href="#fail-{esc(run.id)}">how to replay</a>')
    detail.append(f"{run.wall_s:.1f} s")
    return (f'<td class="cell {run.status.value}" title="{esc(run.id)}, schedule {esc(run.schedule_hash or "-")}">'
            f'{label}<div class="sub">{" · ".join(detail)}</div></td>')


def _failure(run: RunRecord, cert: Certificate) -> str:
    esc = html.escape
    commands = []
    if run.report:
        report = run.report.rstrip("/")
        commands += [("replay (the same schedule, fresh stack)", shlex.join(["simcity", "replay", report])),
                     ("shrink (the shortest schedule that still fails)", shlex.join(["simcity", "shrink", report]))]
    commands.append(("rerun from the seed", sc1_command(
        run.seed, run.profile, str(cert.target.get("stack_kind") or "auto"), _app_env(cert.target),
        iterations=run.iterations, slots=cert.matrix.slots)))
    items = "".join(f"<dt>{esc(what)}</dt><dd><code>{esc(command)}</code></dd>" for what, command in commands)
    report_link = (f' (<a href="{esc(run.report.rstrip("/"))}/report.html">timeline</a>)' if run.report else "")
    return (f'<div class="failure" id="fail-{esc(run.id)}"><h3>{esc(run.id)}: {esc(run.primary or "FAIL")}</h3>'
            f"<p>first violation: {esc(run.first_violation or '-')}; schedule <code>{esc(run.schedule_hash or '-')}"
            f"</code>; {run.wall_s:.1f} s{report_link}</p><dl>{items}</dl></div>")


def _app_env(target: Mapping[str, Any]) -> dict[str, str]:
    env = target.get("app_env")
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, Mapping) else {}


def _slots_text(cert: Certificate) -> str:
    return f", {cert.matrix.slots} slots each" if cert.matrix.slots > 1 else ""


_TARGET_LABELS = {"app_strategy": "app strategy", "app_env": "app environment", "stack_kind": "stack",
                  "git_sha": "git SHA", "simcity_git_sha": "SimCity git SHA", "simcity_version": "SimCity version", "image_digest": "app image",
                  "image_digests": "images (Compose)", "target_url": "your app",
                  "target_version": "its version", "target_git_sha": "its commit"}


def _target_value(key: str, value: Any, target: Mapping[str, Any]) -> str:
    """A target field in words: no `null`, no `{}`."""
    if key in ("image_digest", "image_digests") and not value:
        kind = target.get("stack_kind")
        return "none: the local stack runs no images" if kind == "local" else f"not recorded ({kind} stack)"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    if value in (None, ""):
        return "unknown"
    return str(value)


def _flat(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items())
    return str(value)


# --- merging shards -------------------------------------------------------------------------------


def identity(cert: Certificate) -> dict[str, Any]:
    return {"target": dict(cert.target), "matrix": cert.matrix.hash}


def merge(sources: Sequence[tuple[Certificate, Path]], out: Path) -> Certificate:
    """One certificate from shards' certificates; run reports are copied under `out/runs/`.

    UsageError when the certificates are of different targets or matrices, or carry the same run
    twice; runs of the matrix that no certificate carries become ERROR ("missing")."""
    if not sources:
        raise UsageError("certify merge: no certificate given")
    first, first_dir = sources[0]
    target: dict[str, Any] = {}
    for cert, where in sources:
        if cert.matrix.hash != first.matrix.hash:
            raise UsageError(f"certify merge: {where} is of matrix {cert.matrix.name} ({cert.matrix.hash}), "
                             f"{first_dir} of {first.matrix.name} ({first.matrix.hash}): refusing to merge")
        # A detail one shard could not learn (no stack started: no image digests) is no contradiction.
        diff = sorted(k for k, v in cert.target.items() if _known(v) and _known(target.get(k)) and target[k] != v)
        if diff:
            raise UsageError(f"certify merge: {where} certifies another target than {first_dir} "
                             f"(differs in {', '.join(diff)}): refusing to merge")
        target.update({k: v for k, v in cert.target.items() if _known(v) or k not in target})
    seen: dict[str, Path] = {}
    duplicates: list[str] = []
    runs: dict[str, RunRecord] = {}
    wanted = {spec.id for spec in first.matrix.runs()}
    for cert, where in sources:
        for run in cert.runs:
            if run.id not in wanted:
                raise UsageError(f"certify merge: {where} has run {run.id}, which is not in the matrix")
            if run.id in seen:
                duplicates.append(f"{run.id} ({seen[run.id]} and {where})")
                continue
            seen[run.id] = where
            runs[run.id] = _adopt_report(run, where, out)
    if duplicates:
        raise UsageError(f"certify merge: duplicate runs: {'; '.join(duplicates)}")
    ordered = []
    for spec in first.matrix.runs():
        ordered.append(runs.get(spec.id) or RunRecord(
            spec.seed, spec.profile, spec.iterations, Status.ERROR,
            error="missing: no shard certificate carries this run (a shard did not finish or was not given)"))
    return Certificate(
        target=target, matrix=first.matrix, runs=tuple(ordered), shard="merged",
        created_at=now_utc(), wall_s=max(c.wall_s for c, _ in sources),
        jobs=sum(c.jobs for c, _ in sources),
        merged_from=tuple(f"{c.shard} ({d})" for c, d in sources),
    )


def _known(value: Any) -> bool:
    return value not in (None, "", {}, [])


def _adopt_report(run: RunRecord, source_dir: Path, out: Path) -> RunRecord:
    """Copy the run's report dir into `out/runs/` so the merged certificate is self-contained."""
    if not run.report:
        return run
    src = (source_dir / run.report).resolve()
    dest = out / RUNS_DIR / run.spec.dirname
    if src.is_dir() and src != dest.resolve():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return replace(run, report=f"{RUNS_DIR}/{run.spec.dirname}")
    if src.is_dir():
        return run
    # Report not shipped with the shard's certificate: keep a path that still points at it.
    return replace(run, report=os.path.relpath(src, out.resolve()))


def ordered_records(records: Iterable[RunRecord], specs: Sequence[RunSpec]) -> tuple[RunRecord, ...]:
    by_id = {r.id: r for r in records}
    return tuple(by_id[s.id] for s in specs if s.id in by_id)
