"""The release and reproduction commands of `simcity`: certify (+ merge), replay, shrink, fault.

`harness.cli` registers them with `add_parsers` and hands them over with `dispatch`; the logic
lives in harness.certify / certificate / replay / shrink / fault_cmd. Exit codes as everywhere:
0 PASS (or: what was asked holds), 1 FAIL, 2 usage, 3 infrastructure.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from harness import fault_cmd
from harness.certificate import Certificate, merge, read_certificate, write_certificate
from harness.certify import Certifier, CertifyPlan, max_jobs, run_config
from harness.errors import UsageError
from harness.generator import Schedule
from harness.errors import HistoryFormatError
from harness.history import History
from harness.history_io import from_jsonl
from harness.matrix import load_matrix
from harness.replay import label_of, replay, verdict_label
from harness.report import ensure_writable, redact, write_report
from harness.runinfo import RecordedRun, RunInfo, read_report_dir, sc1_command, write_run_info
from harness.runner import ProgressCallback, RunResult
from harness.runs_index import after_run
from harness.shard import Shard
from harness.shrink import NotReproducedError, shrink_run, story
from harness.auth import service_key_from_env
from harness.history import Action
from harness.matrix import RunSpec
from harness.runner import plan_schedule
from harness.stacks.base import Stack, check_app_env
from harness.stacks.external import DEFAULT_DB_LISTEN, RESTART_ENV_TARGET_URL, ExternalTarget
from harness.stacks.select import external_target
from harness.stacks.reaper import sweep_before_starting
from harness.terminal import display_path, make_console, progress_display, started

COMMANDS = ("certify", "replay", "shrink", "fault")
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3
STACK_KINDS = ("auto", "local", "compose", "external")

CERTIFY_HELP = """\
Run a matrix of seeds x fault profiles (a TOML file; shipped: harness/matrices/) against one stack
kind and write ONE certificate into --out: certificate.json, junit.xml (a test case per run),
certificate.html (the seed x profile grid, failing cells link to their run's report), and each run's
report dir under runs/ (replayable with `simcity replay`).

exit: 0 every run PASSED; 1 a run FAILED (a broken invariant is a finding, whatever else happened);
3 no FAIL but runs could not be carried out (infrastructure; they are listed); 2 bad usage.

--shard i/n (1-based) takes runs i-1, i-1+n, ... of the matrix's fixed order: every run is in
exactly one shard. `simcity certify merge CERT... --out DIR` joins shards' certificates; it refuses
certificates of other targets or matrices and duplicate runs (exit 2), and counts runs no shard
carried out as ERROR. The target is the app strategy and environment, the stack kind, the Compose
images' digests, and the git SHA ($SIMCITY_GIT_SHA, else this checkout's HEAD, `-dirty` if changed).
"""

REPLAY_HELP = """\
Rerun the exact schedule recorded in REPORT_DIR/run.json (written by `simcity sc1` and by every
certify run) on a fresh stack with the recorded app environment (--app-env overrides, e.g. to check
a fix against a recorded failure), and compare verdicts.

exit: 0 reproduced: a recorded PASS passed again, or a recorded FAIL failed again with the same
primary violation name; 1 not reproduced in any of --tries runs (PASS<->FAIL, or another
violation); 2 REPORT_DIR unusable; 3 infrastructure. Timing is not recorded, so a race may need
several --tries; the first reproduction stops them.
"""

SHRINK_HELP = """\
Cut the failing schedule of REPORT_DIR down with delta debugging (ddmin) over its steps, bookings
and faults alike, on ONE fresh stack reused across trials (each trial starts from a fresh fixture).
A candidate still fails when, in up to --tries runs, at least --need FAIL with the recorded primary
violation name (default: 1 of 2; runs are not deterministic, timing is not in a schedule). Bounded
by --budget-runs and --budget-s: when one runs out, the shortest failing schedule so far is printed.

Prints the shrunk schedule as a numbered story (each step in words, the settle phase after it, what
broke) and as a replayable `simcity sc1 --steps ...`
command; writes REPORT_DIR/shrunk.json, shrunk-steps.txt and a failing run of it in
REPORT_DIR/shrunk/ (replayable with `simcity replay REPORT_DIR/shrunk`).

exit: 0 shrunk; 1 the recorded failure did not come back (nothing to shrink); 2 REPORT_DIR unusable
or recorded a PASS; 3 infrastructure.
"""

FAULT_HELP = """\
Drive faults by hand on a running stack (`simcity stack up`, found via .simcity/stack.env, or
--proxy-url). NAME of `apply` is a toxic type (latency, jitter via latency's --attr jitter=,
bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, noop), `partition`, or a fault
profile (toxics/profiles/: latency, drops, ...). A name that is both is the toxic when
--attr/--toxicity/--stream/--name is given, else the profile; `toxic:NAME`/`profile:NAME` force it.
Faults stay until `simcity fault heal`. exit: 2 bad toxic/attribute/hop, 3 proxy unreachable.
"""


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fmt = argparse.RawDescriptionHelpFormatter
    certify = sub.add_parser("certify", help="certify a release candidate over a matrix of seeds x profiles",
                             description=CERTIFY_HELP, formatter_class=fmt)
    certify.add_argument("--matrix", default="default", help="matrix TOML file or shipped name (default: default)")
    certify.add_argument("--jobs", type=int, default=1, help="isolated stacks side by side (capped at the CPUs)")
    certify.add_argument("--shard", default="1/1", help="run only shard i of n (1-based), e.g. 2/4")
    certify.add_argument("--stack", choices=STACK_KINDS, default="auto",
                         help="stack kind every run gets a fresh one of (default auto: compose where a Docker "
                         "engine answers, else local); external: your own app, named by the flags below")
    certify.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                         help="environment of the app, e.g. BOOKING_STRATEGY=atomic (repeatable)")
    add_external_flags(certify, release=True)
    certify.add_argument("--out", "--report-dir", type=Path, dest="out", metavar="DIR",
                         help="certificate dir (default reports/certify-<matrix>-<time>); --report-dir is the same")
    certify_sub = certify.add_subparsers(dest="certify_command")
    merge_p = certify_sub.add_parser("merge", help="join shards' certificates into one",
                                     description="Join shards' certificates (files or dirs) into one; refuses "
                                     "different targets or matrices and duplicate runs; runs no shard carried out "
                                     "are ERROR (exit 3).")
    merge_p.add_argument("certificates", nargs="+", type=Path, metavar="CERT",
                         help="a shard's certificate.json or the dir holding it (one per shard)")
    merge_p.add_argument("--out", "--report-dir", type=Path, required=True, dest="merge_out", metavar="DIR",
                         help="where the merged certificate goes (certificate.json, junit.xml, certificate.html)")

    rep = sub.add_parser("replay", help="rerun a recorded run's exact schedule and compare verdicts",
                         description=REPLAY_HELP, formatter_class=fmt)
    rep.add_argument("report_dir", type=Path, metavar="REPORT_DIR", help="a report dir holding run.json")
    rep.add_argument("--stack", choices=STACK_KINDS, help="stack kind (default: the recorded one)")
    rep.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                     help="override the recorded app environment (repeatable)")
    rep.add_argument("--tries", type=int, default=1, help="reruns until the verdict reproduces (default 1)")
    rep.add_argument("--trust-env", action="store_true",
                     help="apply a recorded app environment that loads code (PYTHONPATH, LD_PRELOAD, ...)")
    rep.add_argument("--out", "--report-dir", type=Path, dest="out", metavar="DIR",
                     help="where to write the replay's report (default REPORT_DIR/replay)")

    shr = sub.add_parser("shrink", help="cut a failing schedule down to a short one that still fails",
                         description=SHRINK_HELP, formatter_class=fmt)
    shr.add_argument("report_dir", type=Path, metavar="REPORT_DIR", help="the report dir of a failing run")
    shr.add_argument("--budget-runs", type=int, default=100, help="at most this many sc1 runs (default 100)")
    shr.add_argument("--budget-s", type=float, default=600.0, help="at most this many seconds (default 600)")
    shr.add_argument("--tries", type=int, default=2, help="runs per candidate at most (default 2)")
    shr.add_argument("--need", type=int, default=1, help="failing runs that keep a candidate (default 1)")
    shr.add_argument("--stack", choices=STACK_KINDS, help="stack kind (default: the recorded one)")
    shr.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                     help="override the recorded app environment (repeatable)")
    shr.add_argument("--trust-env", action="store_true",
                     help="apply a recorded app environment that loads code (PYTHONPATH, LD_PRELOAD, ...)")

    fault = sub.add_parser("fault", help="apply, heal and show faults on a running stack by hand",
                           description=FAULT_HELP, formatter_class=fmt)
    fault_sub = fault.add_subparsers(dest="fault_command", required=True)
    apply_p = fault_sub.add_parser("apply", help="start a toxic, a partition or a whole profile",
                                   description=FAULT_HELP, formatter_class=fmt)
    apply_p.add_argument("name", metavar="PROFILE|TOXIC", help="a fault profile, a toxic type or partition")
    apply_p.add_argument("--hop", help="client-app or app-db (required for a single toxic)")
    apply_p.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                         help="toxic attribute, e.g. latency=300 (repeatable; units per toxics/catalog.py)")
    apply_p.add_argument("--toxicity", type=float, help="share of connections affected, 0..1 (default 1)")
    apply_p.add_argument("--stream", help="up|down (upstream|downstream; default downstream)")
    apply_p.add_argument("--name", dest="toxic_name", help="toxic name (default manual_<type>_<stream>)")
    heal_p = fault_sub.add_parser("heal", help="remove faults (every hop, or --hop)")
    heal_p.add_argument("--hop", help="heal only this hop: client-app or app-db (default every hop)")
    status_p = fault_sub.add_parser("status", help="show the faults active on each hop")
    status_p.add_argument("--json", action="store_true", help="print the faults as JSON instead of text")
    for p in (apply_p, heal_p, status_p):
        p.add_argument("--proxy-url", help="Toxiproxy API of the stack (default: from the env file)")
        p.add_argument("--env-file", type=Path, help="env file of `simcity stack up` (default .simcity/stack.env)")


def dispatch(args: argparse.Namespace, console: Console) -> int:
    console = make_console()
    return {"certify": cmd_certify, "replay": cmd_replay, "shrink": cmd_shrink, "fault": cmd_fault}[args.command](
        args, console)


def app_env_map(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--app-env wants KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


# --- stacks ---------------------------------------------------------------------------------------


def resolve_kind(kind: str) -> str:
    if kind != "auto":
        return kind
    from harness.stacks.select import compose_available  # noqa: PLC0415

    return "compose" if compose_available() else "local"


def stack_class(kind: str) -> type | None:
    if kind == "external":
        from harness.stacks.external import ExternalStack  # noqa: PLC0415

        return ExternalStack
    if kind == "local":
        from harness.stacks.local import LocalStack  # noqa: PLC0415

        return LocalStack
    try:
        from harness.stacks.compose import ComposeStack  # noqa: PLC0415
    except ImportError:
        return None
    return ComposeStack


def make_stack(kind: str, app_env: Mapping[str, str], external: ExternalTarget | None = None) -> Stack:
    """A fresh, unstarted stack of `kind` through the same selection as `simcity sc1`."""
    if external is not None:
        return external.stack(service_key_from_env())
    from harness.stacks.select import choose_stack  # noqa: PLC0415

    ns = argparse.Namespace(stack=kind, target_url=None, rest_url=None, restart_cmd=None, proxy=False,
                            app_env_map=dict(app_env))
    return choose_stack(ns, Console(quiet=True))


# --- certify --------------------------------------------------------------------------------------


def cmd_certify(args: argparse.Namespace, console: Console) -> int:
    if args.certify_command == "merge":
        return cmd_certify_merge(args, console)
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    matrix = load_matrix(args.matrix)
    shard = Shard.parse(args.shard)
    app_env = app_env_map(args.app_env)
    check_app_env(app_env)
    kind = "external" if args.stack == "auto" and args.target_url else resolve_kind(args.stack)
    specs = shard.select(matrix.runs())
    external = external_plan(args, specs, matrix.slots) if kind == "external" else None
    if external is None and (args.target_url or args.rest_url or args.restart_cmd or args.proxy
                             or args.target_version or args.target_checkout):
        raise UsageError("--target-url, --rest-url, --restart-cmd, --proxy, --target-version and "
                         "--target-checkout are for --stack external")
    jobs, why = max_jobs(kind, args.jobs, len(specs), stack_class(kind))
    out = args.out or Path("reports") / f"certify-{matrix.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    ensure_writable(out, "--out")
    console.print(f"certify: matrix {matrix.name} ({len(matrix)} runs, hash {matrix.hash}), shard {shard}: "
                  f"{len(specs)} runs of {matrix.iterations} actions on {kind} stacks x {jobs}"
                  + (f" ({why})" if why else ""), highlight=False, markup=False)
    if not specs:
        console.print(f"shard {shard} holds no run of this matrix ({len(matrix)} runs)")
    factory = functools.partial(make_stack, kind, app_env, external)
    plan = CertifyPlan(matrix, shard, kind, app_env, out, jobs, factory, specs, external)
    sweep_before_starting()
    certifier = Certifier(plan, console)
    cert = certifier.run()
    paths = write_certificate(out, cert, sorted(certifier.secrets))
    after_run(out)
    print_summary(cert, out, paths.html, console)
    return cert.exit_code


def cmd_certify_merge(args: argparse.Namespace, console: Console) -> int:
    sources = [read_certificate(path) for path in args.certificates]
    cert = merge(sources, args.merge_out)
    paths = write_certificate(args.merge_out, cert)
    console.print(f"merged {len(sources)} certificate(s): {', '.join(cert.merged_from)}", highlight=False,
                  markup=False)
    print_summary(cert, args.merge_out, paths.html, console)
    return cert.exit_code


def print_summary(cert: Certificate, out: Path, html_path: Path, console: Console) -> None:
    """The certificate's verdict, coverage and failing runs; paths as seen from the current dir
    (a run's report is recorded relative to the certificate's `out`)."""
    counts = cert.counts()
    cov = cert.coverage()
    style = {"PASS": "bold green", "FAIL": "bold red", "ERROR": "bold yellow"}[cert.status.value]
    console.print(f"[{style}]{cert.status.value}[/]: {len(cert.runs)} runs, {counts['pass']} PASS, "
                  f"{counts['fail']} FAIL, {counts['error']} ERROR in {cert.wall_s:.1f} s")
    console.print(f"coverage: crashes {cov['crashes']} ({_flat(cov['crash_points'])}), faults "
                  f"{sum(cov['faults'].values())} ({_flat(cov['faults'])}), retries {cov['retries']}, "
                  f"unknown answers {cov['answers']['unknown']}", highlight=False, markup=False)
    for run in cert.runs:
        if run.status.value == "FAIL":
            report = display_path(out / run.report / "report.html") if run.report else "none"
            console.print(f"  FAIL  {run.id}: {run.primary} ({run.first_violation}); report {report}",
                          highlight=False, markup=False)
    for run in cert.runs:
        if run.status.value == "ERROR":
            console.print(f"  ERROR {run.id}: {redact(run.error or '')}", highlight=False, markup=False)
    console.print(f"certificate: {display_path(html_path)}", highlight=False, markup=False)


def _flat(values: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items())


# --- replay ---------------------------------------------------------------------------------------


# Variables that make a process load code it was not started with: a run.json is a file anyone
# may have written, so SimCity does not apply these from one unless told to trust it.
CODE_LOADING_ENV = frozenset({
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONINSPECT", "PYTHONEXECUTABLE",
    "PYTHONBREAKPOINT", "PYTHONWARNINGS", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV",
    "NODE_OPTIONS", "PERL5LIB", "PERL5OPT", "RUBYOPT", "RUBYLIB", "JAVA_TOOL_OPTIONS", "PATH",
})


def _recorded_target(recorded: RecordedRun, stack_flag: str | None, overrides: Sequence[str], console: Console,
                     *, trust_env: bool) -> tuple[str, dict[str, str], ExternalTarget | None]:
    """The stack kind, app environment and (for a user's own app) target a recorded run is rerun
    with. The recorded environment and target are shown; an environment that would load code,
    and a recorded restart command (SimCity would run it), are refused (exit 2) unless `trust_env`."""
    kind = stack_flag or recorded.info.stack_kind
    if kind == "external":
        external = ExternalTarget.from_json(recorded.info.external)
        console.print(f"recorded target: app {external.target_url}, REST {external.rest_url}"
                      + (f", restart command {external.restart_cmd!r}" if external.restart_cmd else ""),
                      highlight=False, markup=False)
        if external.restart_cmd and not trust_env:
            raise UsageError(f"{recorded.directory}: run.json's restart command {external.restart_cmd!r} would run "
                             "here; rerun with --trust-env if you trust that file")
        return kind, {}, external
    if kind not in STACK_KINDS:
        raise UsageError(f"the run was recorded on a {kind} stack; pass --stack local|compose to rerun it")
    recorded_env = recorded.info.app_env
    loading = sorted(k for k in recorded_env if k.upper() in CODE_LOADING_ENV or k.upper().startswith("LD_"))
    if loading and not trust_env:
        raise UsageError(f"{recorded.directory}: run.json sets {', '.join(loading)} for the app, which loads code; "
                         "rerun with --trust-env if you trust that file")
    if recorded_env:
        console.print("recorded app environment: " + " ".join(f"{k}={v}" for k, v in sorted(recorded_env.items())),
                      highlight=False, markup=False)
    return resolve_kind(kind), {**recorded_env, **app_env_map(overrides)}, None


def _progress(console: Console, label: str) -> Progress:
    return progress_display(label, disable=not console.is_terminal)


def cmd_replay(args: argparse.Namespace, console: Console) -> int:
    if args.tries < 1:
        raise UsageError(f"--tries must be >= 1, got {args.tries}")
    recorded = read_report_dir(args.report_dir)
    kind, app_env, external = _recorded_target(recorded, args.stack, args.app_env, console, trust_env=args.trust_env)
    info = recorded.info
    out = args.out or args.report_dir / "replay"
    expected = verdict_label(recorded.valid, recorded.primary)
    console.print(f"replay of {args.report_dir}: seed {info.seed}, profile {info.profile}, schedule "
                  f"{info.schedule.hash} ({len(info.schedule)} steps), recorded {expected}", highlight=False,
                  markup=False)
    command = shlex.join(["simcity", "replay", str(args.report_dir), "--stack", kind,
                          *[a for k, v in app_env.items() if app_env.get(k) != info.app_env.get(k)
                            for a in ("--app-env", f"{k}={v}")]])
    stack = make_stack(kind, app_env, external)
    progress = _progress(console, "replay")
    sweep_before_starting()
    with started(stack, disable=not console.is_terminal), progress:
        console.print(f"on {stack.describe()}", highlight=False, markup=False)
        task = progress.add_task("", total=len(info.schedule))

        def per_try(attempt: int) -> ProgressCallback:
            def cb(done: int, total: int, step: str) -> None:
                progress.update(task, completed=done, total=total, description=f"try {attempt}: {step}")
            return cb

        outcome = replay(recorded, stack, tries=args.tries, out=out, app_env=app_env, replay_command=command,
                         progress=per_try, secrets=(stack.endpoints.service_key,))
    for attempt, (result, directory) in enumerate(zip(outcome.results, outcome.report_dirs), 1):
        console.print(f"try {attempt}: {label_of(result.verdict)} (schedule {result.schedule.hash}); "
                      f"report {display_path(directory / 'report.html')}", highlight=False, markup=False)
    if outcome.reproduced:
        console.print(f"[bold green]REPRODUCED[/]: {expected}")
        return EXIT_PASS
    console.print(f"[bold red]NOT REPRODUCED[/]: recorded {expected}, replay gave "
                  f"{', '.join(label_of(r.verdict) for r in outcome.results)}")
    return EXIT_FAIL


# --- shrink ---------------------------------------------------------------------------------------


def cmd_shrink(args: argparse.Namespace, console: Console) -> int:
    for flag in ("budget_runs", "tries", "need"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.need > args.tries:
        raise UsageError("--need cannot exceed --tries")
    recorded = read_report_dir(args.report_dir)
    if recorded.valid != "FAIL" or recorded.primary is None:
        raise UsageError(f"{args.report_dir} recorded a PASS: there is no failure to shrink")
    history = _history(args.report_dir)
    kind, app_env, external = _recorded_target(recorded, args.stack, args.app_env, console, trust_env=args.trust_env)
    info = recorded.info
    console.print(f"shrink {recorded.primary} of {args.report_dir}: {len(info.schedule)} steps, budget "
                  f"{args.budget_runs} runs / {args.budget_s:.0f} s, a candidate fails if {args.need} of "
                  f"{args.tries} tries fail", highlight=False, markup=False)
    stack = make_stack(kind, app_env, external)
    progress = _progress(console, "shrink")
    sweep_before_starting()
    with started(stack, disable=not console.is_terminal), progress:
        task = progress.add_task("", total=args.budget_runs)

        def on_trial(runs: int, length: int, failed: bool) -> None:
            progress.update(task, completed=runs, description=f"{length} steps: {'fails' if failed else 'passes'}")

        try:
            result = shrink_run(stack, info, recorded.primary, history, recorded.first_index,
                                tries=args.tries, need=args.need, budget_runs=args.budget_runs,
                                budget_s=args.budget_s, on_trial=on_trial)
        except NotReproducedError as exc:
            console.print(f"[bold red]NOT REPRODUCED[/]: {exc}", highlight=False)
            return EXIT_FAIL
        secrets = (stack.endpoints.service_key,)
    shrunk = result.shrunk
    steps_arg = ",".join(str(s) for s in shrunk.steps)
    target_flags = external.flags() if external else []
    command = sc1_command(info.seed, info.profile, kind, app_env, slots=info.slots,
                          extra=[*target_flags, "--steps", steps_arg])
    file_command = sc1_command(info.seed, info.profile, kind, app_env, slots=info.slots,
                               extra=["--schedule", str(args.report_dir / "shrunk.json")])
    numbered = "\n".join(f"{n:>3}. {step}" for n, step in enumerate(shrunk.steps, 1))
    doc = {
        "primary": result.primary, "schedule": shrunk.to_json(), "original": info.schedule.to_json(),
        "original_steps": len(info.schedule), "shrunk_steps": len(shrunk), "runs": result.runs,
        "candidates": result.trials, "wall_s": round(result.wall_s, 3), "stopped_by": result.stopped_by,
        "tries": args.tries, "need": args.need, "stack_kind": kind, "app_env": app_env,
        "command": command, "schedule_command": file_command,
    }
    (args.report_dir / "shrunk.json").write_text(redact(json.dumps(doc, indent=2), secrets) + "\n", encoding="utf-8")
    (args.report_dir / "shrunk-steps.txt").write_text(
        f"# {result.primary}: {len(info.schedule)} -> {len(shrunk)} steps\n{numbered}\n\n{command}\n", encoding="utf-8")
    if result.last_failure is not None:
        _write_shrunk_report(args.report_dir / "shrunk", result.last_failure, info, kind, app_env, command, secrets)
    budget = f" (stopped by the {result.stopped_by}; shortest failing schedule so far)" if result.stopped_by else ""
    console.print(f"[bold]{result.primary}[/]: {len(info.schedule)} -> {len(shrunk)} steps in {result.runs} runs, "
                  f"{result.wall_s:.1f} s{budget}", highlight=False)
    console.print(story(shrunk.steps, result.last_failure), highlight=False, markup=False)
    console.print(f"replay:\n  {command}\n  {file_command}", highlight=False, markup=False)
    if result.last_failure is not None:
        console.print(f"a failing run of it: {display_path(args.report_dir / 'shrunk' / 'report.html')} "
                      f"(`simcity replay {args.report_dir / 'shrunk'}`)", highlight=False, markup=False)
    return EXIT_PASS


def _history(report_dir: Path) -> History | None:
    path = report_dir / "history.jsonl"
    try:
        return from_jsonl(path.read_text(encoding="utf-8"))
    except (OSError, HistoryFormatError):
        return None  # only an optimisation (the cut after the break) is lost


def _write_shrunk_report(directory: Path, result: RunResult, info: RunInfo, kind: str, app_env: Mapping[str, str],
                         command: str, secrets: Sequence[str]) -> None:
    shrunk = RunInfo(info.seed, len(result.schedule), info.profile, kind, result.schedule, dict(app_env),
                     slots=info.slots, external=info.external)
    write_report(directory, result.history, result.verdict, replay_command=command, secrets=secrets, run=shrunk)
    write_run_info(directory, shrunk, secrets)


# --- the user's own app (sc1 and certify) ---------------------------------------------------------


def add_external_flags(parser: argparse.ArgumentParser, *, release: bool = False) -> None:
    """The flags naming a user's own app (`--stack external`); with `release`, also those naming
    the release candidate a certificate is for."""
    parser.add_argument("--target-url", help="the app under attack (external stack)")
    parser.add_argument("--rest-url", help="Supabase REST of the app's database (external stack)")
    parser.add_argument("--restart-cmd", help="command that crashes and restarts an external app (SimCity runs it "
                        f"for each crash step; it finds {RESTART_ENV_TARGET_URL} in its environment)")
    parser.add_argument("--proxy", action="store_true",
                        help="external stack: put simcity-toxiproxy in front of the app (faults on hop client-app)")
    parser.add_argument("--db-upstream", metavar="HOST:PORT",
                        help="external stack with --proxy: your app's real database; a second proxy forwards to it "
                        "(faults on hop app-db)")
    parser.add_argument("--db-listen", metavar="HOST:PORT",
                        help=f"where that app-db proxy listens (default {DEFAULT_DB_LISTEN}): point your app's "
                        "database here before the run")
    if release:
        parser.add_argument("--target-version", metavar="VERSION",
                            help="external stack: what you call this release candidate (recorded in the certificate)")
        parser.add_argument("--target-checkout", type=Path, metavar="DIR",
                            help="external stack: your app's git checkout, whose commit the certificate records "
                            "(default: the current dir)")


def external_plan(args: argparse.Namespace, specs: Sequence[RunSpec], slots: int) -> ExternalTarget:
    """The user's own app for `certify --stack external`, refused before anything starts when it
    cannot be certified as asked: no service key, app env given (it is the reference app's), or a
    matrix that crashes the app without --restart-cmd to say how."""
    if args.app_env:
        raise UsageError("--app-env is the environment of SimCity's reference app; your own app (--stack "
                         "external) has its own")
    target = external_target(args)
    target.stack(service_key_from_env())  # validates URLs and the app-db flags, starts nothing
    if not target.restart_cmd:
        crashing = [s.id for s in specs if any(step.action is Action.RESTART_SIMCITY
                                               for step in plan_schedule(run_config(s, slots))[0].steps)]
        if crashing:
            raise UsageError(f"{len(crashing)} runs of the matrix crash the app (e.g. {crashing[0]}): give "
                             "--restart-cmd to say how, or a matrix of calm profiles")
    return target


# --- sc1: explicit schedules and run.json ---------------------------------------------------------


def add_sc1_flags(sc1: argparse.ArgumentParser) -> None:
    sc1.add_argument("--distance", metavar="HOP=MS[,HOP=MS]",
                     help="local stack: put REST and/or the database far away, e.g. 'rest=100,app-db=15' "
                          "(a steady latency per round trip that faults never heal; hops: rest, app-db)")
    group = sc1.add_mutually_exclusive_group()
    group.add_argument("--steps", help="explicit schedule instead of the seed's, e.g. "
                       "'send_book(A),latency(app-db),send_book(B)' (--iterations is then ignored)")
    group.add_argument("--schedule", type=Path, help="explicit schedule from a JSON file (a run.json, "
                       "shrunk.json or Schedule JSON)")


def distance_map(text: str | None) -> dict[str, int]:
    """`rest=100,app-db=15` -> {"rest": 100, "app-db": 15}; a bad item is a one-line UsageError."""
    distance: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        hop, sep, ms = item.partition("=")
        if not sep or not ms.strip().isdigit():
            raise UsageError(f"--distance: expected HOP=MS (e.g. rest=100), got {item!r}")
        distance[hop.strip()] = int(ms)
    return distance


def explicit_schedule(args: argparse.Namespace) -> Schedule | None:
    if getattr(args, "steps", None):
        steps = [s for s in (part.strip() for part in _split_steps(args.steps)) if s]
        return Schedule.from_actions(steps, seed=args.seed)
    if getattr(args, "schedule", None):
        try:
            obj = json.loads(args.schedule.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{args.schedule}: cannot read: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"{args.schedule}: not JSON: {exc}") from None
        if isinstance(obj, dict) and isinstance(obj.get("schedule"), dict):
            obj = obj["schedule"]
        return Schedule.from_json(obj)
    return None


def _split_steps(text: str) -> list[str]:
    """`a(A),b(app-db)` -> steps (a step's argument never holds a comma); newlines work too."""
    return text.replace("\n", ",").split(",")


def schedule_flags(args: argparse.Namespace) -> list[str]:
    if getattr(args, "steps", None):
        return ["--steps", args.steps]
    if getattr(args, "schedule", None):
        return ["--schedule", str(args.schedule)]
    return []


def write_sc1_run_info(report_dir: Path, args: argparse.Namespace, stack: Stack, result: RunResult,
                       secrets: Sequence[str]) -> RunInfo:
    external = external_target(args).to_json() if stack.kind == "external" else {}
    info = RunInfo(args.seed, len(result.schedule), args.profile, stack.kind, result.schedule,
                   dict(getattr(args, "app_env_map", {}) or {}), slots=getattr(args, "slots", 1), external=external)
    write_run_info(report_dir, info, secrets)
    return info


# --- fault ----------------------------------------------------------------------------------------

_STREAMS = {"up": "upstream", "down": "downstream", "upstream": "upstream", "downstream": "downstream"}


def cmd_fault(args: argparse.Namespace, console: Console) -> int:
    if args.fault_command == "apply":
        stream = None
        if args.stream is not None:
            if args.stream not in _STREAMS:
                raise UsageError(f"--stream must be up or down, got {args.stream!r}")
            stream = _STREAMS[args.stream]
        plan = fault_cmd.plan_apply(args.name, args.hop, fault_cmd.parse_attrs(args.attr), args.toxicity,
                                    stream, args.toxic_name)
        target = fault_cmd.find_target(args.proxy_url, args.env_file)
        lines = fault_cmd.apply(target, plan)
        note = fault_cmd.packet_loss_note(args.name)
        lines += [note] if note else []
    elif args.fault_command == "heal":
        target = fault_cmd.find_target(args.proxy_url, args.env_file)
        lines = fault_cmd.heal(target, args.hop)
    else:
        target = fault_cmd.find_target(args.proxy_url, args.env_file)
        data = fault_cmd.status(target)
        if args.json:
            print(fault_cmd.to_json(data), flush=True)
            return EXIT_PASS
        lines = [fault_cmd.render_status(data)]
    for line in lines:
        console.print(line, highlight=False, markup=False)
    return EXIT_PASS


__all__ = ["COMMANDS", "add_parsers", "add_sc1_flags", "dispatch", "explicit_schedule", "schedule_flags",
           "write_sc1_run_info"]
