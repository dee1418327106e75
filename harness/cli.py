"""`simcity`: the command line. Exit codes: 0 PASS, 1 FAIL (the product broke an invariant),
2 bad usage, 3 INCONCLUSIVE or infrastructure trouble (never reported as PASS or as a product
FAIL), 130 interrupted."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness import cli_tools
from harness.errors import SimCityError, StopSignal, UsageError
from harness.checker import Validity
from harness.report import ensure_writable, redact, render_text, write_report
from harness.runinfo import sc1_command
from harness.generator import MIXES
from harness.runner import RunConfig, RunResult, plan_schedule, run_sc1
from harness.stacks.base import Stack
from harness.stacks.reaper import mark_this_process, reap_orphans, sweep_before_starting
from harness.stacks.external import DEFAULT_DB_LISTEN
from harness.stacks.select import choose_stack

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3
STATE_DIR = Path(".simcity")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simcity", description="SimCity: certify that a booking system never double-books.")
    sub = parser.add_subparsers(dest="command", required=True)

    sc1 = sub.add_parser("sc1", help="run SC-1, the double-booking attack")
    sc1.add_argument("--seed", default="sc1-1", help="schedule seed; the same seed replays the same actions")
    sc1.add_argument("--iterations", type=int, default=50, help="actions in the schedule (default 50)")
    sc1.add_argument("--profile", default="default",
                     help="fault profile: which toxics a fault step injects. default (each fault kind its own), "
                          "a kind's own (latency, jitter, drops, resets, timeouts, partition, cut, stall: that kind "
                          "only), calm (no faults, no crashes), storm (storm.toml for every kind, often), "
                          "or a .toml path")
    sc1.add_argument("--mix", choices=MIXES,
                     help="action mix: how often each step is drawn (default: the profile's; calm -> quiet, "
                          "storm -> chaotic, else standard)")
    sc1.add_argument("--slots", type=int, default=1,
                     help="independent slots attacked in one run, each its own SC-1 instance (default 1, the "
                          "seed's scenario)")
    sc1.add_argument("--stack", choices=("auto", "local", "compose", "external"), default="auto")
    sc1.add_argument("--target-url", help="the app under attack (external stack)")
    sc1.add_argument("--rest-url", help="Supabase REST of the app's database (external stack)")
    sc1.add_argument("--restart-cmd", help="command that crashes and restarts an external app")
    sc1.add_argument("--proxy", action="store_true", help="external stack: put simcity-toxiproxy in front of the app")
    sc1.add_argument("--db-upstream", metavar="HOST:PORT",
                     help="external stack with --proxy: your app's real database; a second proxy forwards to it")
    sc1.add_argument("--db-listen", metavar="HOST:PORT",
                     help=f"where that app-db proxy listens (default {DEFAULT_DB_LISTEN}): point your app's "
                     "database here before the run")
    sc1.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                     help="environment of the app on the local and Compose stacks (repeatable)")
    sc1.add_argument("--report-dir", type=Path, help="where to write the report (default reports/<seed>-<time>)")
    sc1.add_argument("--json", action="store_true", help="print the verdict as JSON instead of text")
    cli_tools.add_sc1_flags(sc1)

    stack = sub.add_parser("stack", help="start or stop the embedded stack for manual use")
    stack_sub = stack.add_subparsers(dest="stack_command", required=True)
    up = stack_sub.add_parser("up", help="start the local stack and leave it running")
    up.add_argument("--no-app", action="store_true", help="database, REST and proxy only (bring your own app)")
    up.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE")
    down = stack_sub.add_parser("down", help="stop the local stack started by `stack up`")
    down.add_argument("--all", action="store_true",
                      help="also stop whatever SimCity runs that were killed (kill -9) left running")
    cli_tools.add_parsers(sub)
    return parser


def replay_command(args: argparse.Namespace) -> str:
    extra: list[str] = []
    for flag in ("target_url", "rest_url", "restart_cmd", "db_upstream", "db_listen"):
        if getattr(args, flag):
            extra += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    if args.proxy:
        extra.append("--proxy")
    if args.distance:
        extra += ["--distance", args.distance]
    if args.mix:
        extra += ["--mix", args.mix]
    return sc1_command(args.seed, args.profile, args.resolved_stack, args.app_env, iterations=args.iterations,
                       slots=args.slots,
                       extra=[*extra, *cli_tools.schedule_flags(args)])


def cmd_sc1(args: argparse.Namespace, console: Console) -> int:
    if args.iterations < 0:
        raise UsageError(f"--iterations must be >= 0, got {args.iterations}")
    config = RunConfig(seed=args.seed, iterations=args.iterations, profile=args.profile, mix=args.mix,
                       slots=args.slots, schedule=cli_tools.explicit_schedule(args))
    plan_schedule(config)  # a bad profile, mix or slot count is a usage error before anything starts
    if args.json:  # stdout carries the JSON only; the rest goes to stderr
        console = Console(stderr=True)
    stack: Stack = choose_stack(args, console)
    args.resolved_stack = stack.kind
    report_dir = args.report_dir or Path("reports") / f"{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    ensure_writable(report_dir)
    secrets: list[str] = []

    def save(result: RunResult) -> Path:
        replay = replay_command(args)
        info = cli_tools.write_sc1_run_info(report_dir, args, stack, result, secrets)
        paths = write_report(report_dir, result.history, result.verdict, replay_command=replay, secrets=secrets,
                             run=info)
        return paths.html

    def save_partial(result: RunResult) -> None:
        html_path = save(result)
        print(f"simcity: the run so far ({result.verdict.valid.value}) is saved: {html_path}", file=sys.stderr)

    sweep_before_starting()
    with stack:
        console.print(f"SC-1 on {stack.describe()}", highlight=False, markup=False)
        secrets.append(stack.endpoints.service_key)
        result = _run_with_progress(stack, config, console, quiet=args.json, on_stop=save_partial)
    html_path = save(result)
    verdict = result.verdict
    if args.json:
        print(redact(json.dumps(_summary(result, report_dir, replay_command(args)), indent=2), secrets), flush=True)
    else:
        text = render_text(result.history, verdict, replay_command=replay_command(args))
        console.print(redact(text, secrets), highlight=False, markup=False)
        style = {Validity.PASS: "bold green", Validity.FAIL: "bold red"}.get(verdict.valid, "bold yellow")
        console.print(f"[{style}]{verdict.valid.value}[/] - report: {html_path}")
    if verdict.valid is Validity.INCONCLUSIVE:
        print(f"simcity: INCONCLUSIVE (no verdict on the app): {redact(verdict.reason or '', secrets)}", file=sys.stderr)
        return EXIT_INFRA
    return EXIT_PASS if verdict.passed else EXIT_FAIL


def _run_with_progress(stack: Stack, config: RunConfig, console: Console, *, quiet: bool,
                       on_stop: Callable[[RunResult], None]) -> RunResult:
    progress = Progress(TextColumn("[bold blue]SC-1"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True, disable=quiet)
    with progress:
        task = progress.add_task("starting", total=config.iterations)

        def on_step(done: int, total: int, step: str) -> None:
            progress.update(task, completed=done, total=total, description=step)

        result = run_sc1(stack, config, on_step, on_stop=on_stop)
    slots = f", {config.slots} slots" if config.slots > 1 else ""
    console.print(f"seed {config.seed}, profile {config.profile}, mix {result.schedule.mix or 'explicit'}, "
                  f"schedule hash {result.schedule.hash}, {len(result.schedule.steps)} actions{slots}", highlight=False)
    return result


def _summary(result: RunResult, report_dir: Path, replay: str) -> dict[str, object]:
    return {
        "verdict": result.verdict.to_json(),
        "seed": result.schedule.seed,
        "schedule_hash": result.schedule.hash,
        "wall_s": round(result.wall_s, 3),
        "crashes": result.crashes,
        "report_dir": str(report_dir),
        "replay": replay,
    }


def cmd_stack(args: argparse.Namespace, console: Console) -> int:
    from harness.stacks.local import LocalStack, stop_detached  # noqa: PLC0415

    state_file = STATE_DIR / "stack.json"
    env_file = STATE_DIR / "stack.env"
    if args.stack_command == "down":
        stopped = stop_detached(state_file)
        env_file.unlink(missing_ok=True)
        console.print("local stack stopped" if stopped else "no local stack was running")
        if args.all:
            console.print(f"stopped {reap_orphans()} process(es) left by SimCity runs that were killed")
        return EXIT_PASS
    if state_file.exists():
        raise UsageError(f"a local stack is already running ({state_file}); `simcity stack down` first")
    STATE_DIR.mkdir(exist_ok=True)
    mark_this_process(detached=True)  # what it leaves running is no orphan: no sweep stops it
    stack = LocalStack(cli_tools.app_env_map(args.app_env), with_app=not args.no_app)
    with stack:
        ends = stack.endpoints
        lines = {
            "SIMCITY_TARGET_URL": ends.app_url if not args.no_app else "",
            "SIMCITY_REST_URL": ends.rest_url,
            "SIMCITY_PROXY_URL": ends.proxy_api_url or "",
            "DATABASE_URL": ends.database_url or "",
            "SIMCITY_SERVICE_KEY": ends.service_key,
            # hop -> proxy name, for `simcity fault --hop`
            "SIMCITY_PROXY_CLIENT_APP": ends.proxy_names.get("client-app", ""),
            "SIMCITY_PROXY_APP_DB": ends.proxy_names.get("app-db", ""),
        }
        # 0600 from the first byte: the file holds the service-role key.
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{k}={v}\n" for k, v in lines.items())
        stack.detach(state_file)
    console.print(f"local stack up; env file (mode 0600): {env_file.resolve()}")
    for key, value in lines.items():
        if key != "SIMCITY_SERVICE_KEY" and value:
            console.print(f"  {key}={value}", highlight=False)
    console.print("stop it with `simcity stack down`")
    return EXIT_PASS


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_on_signal(signum: int, frame: object) -> None:
    # Once: later signals are ignored, so that the cleanup the first one started runs to its end
    # (a second Ctrl-C must not leave a stack running).
    for each in STOP_SIGNALS:
        signal.signal(each, _still_stopping)
    raise StopSignal(signum)


def _still_stopping(signum: int, frame: object) -> None:
    print(f"simcity: {signal.Signals(signum).name} again: still stopping the stack, please wait", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    console = Console()
    if threading.current_thread() is threading.main_thread():
        for each in STOP_SIGNALS:
            signal.signal(each, _stop_on_signal)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0) and EXIT_USAGE
    mark_this_process()
    try:
        if args.command == "sc1":
            args.app_env_map = cli_tools.app_env_map(args.app_env)
            args.distance_map = cli_tools.distance_map(args.distance)
            return cmd_sc1(args, console)
        if args.command in cli_tools.COMMANDS:
            return cli_tools.dispatch(args, console)
        return cmd_stack(args, console)
    except SimCityError as exc:
        kind = "error" if isinstance(exc, UsageError) else "infrastructure trouble"
        print(f"simcity: {kind}: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, StopSignal) else signal.SIGINT
        print(f"simcity: stopped by {signal.Signals(signum).name}; stack stopped and faults healed", file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - a bug in SimCity is never a verdict on the product
        print(f"simcity: internal error (no verdict): {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return EXIT_INFRA


if __name__ == "__main__":
    raise SystemExit(main())
