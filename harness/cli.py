"""`simcity`: the command line. Exit codes: 0 PASS, 1 FAIL (the product broke an invariant),
2 bad usage, 3 INCONCLUSIVE or infrastructure trouble (never reported as PASS or as a product
FAIL), 130 / 143 / 129 stopped by SIGINT / SIGTERM / SIGHUP."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from rich.console import Console

from harness import check_cmd, cli_tools
from harness.errors import SimCityError, StopSignal, UsageError
from harness.checker import Validity
from harness.faults import KINDS
from harness.history import Action
from harness.report import ensure_writable, redact, render_text, write_report
from harness.runinfo import sc1_command, simcity_version
from harness.generator import AIMABLE, MIXES, SCHEDULE_ACTIONS
from harness.runner import RunConfig, RunResult, plan_schedule, run_sc1
from harness.runs_index import REPORTS_ROOT, after_run, find_runs, write_index
from harness.stacks.base import Stack
from harness.stacks.reaper import mark_this_process, reap_orphans, sweep_before_starting
from harness.stacks.select import choose_stack, external_target
from harness.terminal import display_path, make_console, print_verdict, progress_display, started

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3
STATE_DIR = Path(".simcity")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: they name the (sub)command, suggest the closest subcommand,
    choice or option ("did you mean"), and end with its usage, or where to find it when that is
    longer than a line. Subparsers are of this class too (argparse makes them of the parent's)."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        tail = f"usage: {usage}" if len(usage) <= USAGE_IN_ERROR_CHARS else f"see '{self.prog} --help'"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{self.suggestion(message)}; {tail}\n")

    def suggestion(self, message: str) -> str:
        """" (did you mean X?)" for a mistyped subcommand, choice or option, else ""."""
        choice = _INVALID_CHOICE.search(message)
        if choice:
            pairs = [(choice["value"], re.findall(r"'([^']*)'", choice["choices"]))]
        elif message.startswith(UNRECOGNIZED):
            options = [o for o in self._option_string_actions if o.startswith("--")]
            pairs = [(arg.partition("=")[0], options) for arg in message[len(UNRECOGNIZED):].split()
                     if arg.startswith("-")]
        else:
            return ""
        guesses = [match[0] for given, known in pairs
                   if (match := difflib.get_close_matches(given, known, n=1, cutoff=0.6))]
        return f" (did you mean {' / '.join(dict.fromkeys(guesses))}?)" if guesses else ""


USAGE_IN_ERROR_CHARS = 100
UNRECOGNIZED = "unrecognized arguments: "
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)")


def _step_forms() -> str:
    """The step actions of `--steps`, as the generator and the fault table know them."""
    forms = []
    for action in SCHEDULE_ACTIONS:
        if action in KINDS:
            arg = "|".join(hop.value for hop in KINDS[action].hops)
        elif action is Action.HEAL:
            arg = "[client-app|app-db]"
        elif action.takes_intent:
            arg = "A|B"
        else:
            arg = ""
        forms.append(f"{action.value}({arg})")
    return textwrap.fill(", ".join(forms), width=96, initial_indent="  ", subsequent_indent="  ",
                         break_on_hyphens=False)


SC1_HELP = f"""\
Run SC-1, the double-booking attack: two customers' booking intents at one slot (per --slots),
network faults and real crashes from a seeded schedule, the database truth read after every
action, then PASS (a legal final state, its winner) or FAIL (a forensic snapshot and the command
that replays the run). The report (history.jsonl, verdict.json, junit.xml, report.html, run.json)
goes to --out; under reports/, reports/latest then names it and reports/index.html lists it.

exit: 0 PASS; 1 FAIL (the product broke an invariant); 2 bad usage (one line, before anything
starts); 3 INCONCLUSIVE (no definite answer while settling) or infrastructure trouble; 130 / 143 /
129 stopped by SIGINT / SIGTERM / SIGHUP (faults healed, stack stopped, the run so far saved).

step actions (--steps, comma-separated):
{_step_forms()}
  A demand step may name a slot: race()@2. An aimable step strikes a delay after the burst
  before it: restart_simcity(+40ms), cut(client-app+120ms) ({", ".join(sorted(a.value for a in AIMABLE))}).
"""


def build_parser() -> Parser:
    parser = Parser(prog="simcity", description="SimCity: certify that a booking system never double-books "
                    "(scenario SC-1). `simcity COMMAND --help` tells more.",
                    epilog="exit: 0 PASS, 1 FAIL (the product broke an invariant), 2 bad usage, 3 INCONCLUSIVE or "
                    "infrastructure trouble, 128+N stopped by signal N (130 Ctrl-C).")
    parser.add_argument("--version", action="version", version=f"simcity {simcity_version()}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sc1 = sub.add_parser("sc1", help="run SC-1, the double-booking attack", description=SC1_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
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
    sc1.add_argument("--stack", choices=cli_tools.STACK_KINDS, default="auto",
                     help="where the target runs: local (embedded, no Docker), compose (Docker Compose), external "
                          "(your own app: --target-url, --rest-url); auto: compose where a Docker engine answers, "
                          "else local (default)")
    cli_tools.add_external_flags(sc1)
    sc1.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                     help="environment of the app on the local and Compose stacks (repeatable)")
    sc1.add_argument("--out", "--report-dir", type=Path, dest="out", metavar="DIR",
                     help="where to write the report (default reports/<seed>-<time>); --report-dir is the same")
    sc1.add_argument("--json", action="store_true", help="print the verdict as JSON instead of text")
    cli_tools.add_sc1_flags(sc1)

    stack = sub.add_parser("stack", help="start or stop a stack for manual use (local or Compose)")
    stack_sub = stack.add_subparsers(dest="stack_command", required=True, metavar="up|down")
    up = stack_sub.add_parser("up", help="start a stack and leave it running (for `simcity fault` and a person)")
    up.add_argument("--stack", choices=("local", "compose"), default="local",
                    help="the embedded local stack (default) or a Docker Compose project")
    up.add_argument("--no-app", action="store_true",
                    help="local stack: database, REST and proxy only (bring your own app)")
    up.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment of the app, e.g. BOOKING_STRATEGY=racy (repeatable)")
    down = stack_sub.add_parser("down", help="stop the stack started by `stack up`")
    down.add_argument("--all", action="store_true",
                      help="also stop whatever SimCity runs that were killed (kill -9) left running")
    cli_tools.add_parsers(sub)
    check_cmd.add_parser(sub)
    index = sub.add_parser("index", help="rebuild the index page of every run in a reports dir",
                           description="Rebuild DIR/index.html: every run and certificate under DIR (verdict, seed, "
                           "profile, stack, app strategy, time, a link to its page). sc1 and certify rebuild "
                           "reports/index.html after each run written under reports/.")
    index.add_argument("directory", nargs="?", type=Path, default=REPORTS_ROOT, metavar="DIR",
                       help=f"the reports dir (default {REPORTS_ROOT})")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; arguments no parser knew are reported by the subcommand they were given to (plain
    argparse reports them by the top-level parser, with its usage, not the subcommand's)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _chosen_parser(parser, args).error(UNRECOGNIZED + " ".join(unknown))
    return args


def _chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost (sub)command parser `args` went through."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _chosen_parser(action.choices[chosen], args)
    return parser


def replay_command(args: argparse.Namespace) -> str:
    extra = external_target(args).flags() if args.resolved_stack == "external" else []
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
        console = make_console(stderr=True)
    stack: Stack = choose_stack(args, console)
    args.resolved_stack = stack.kind
    report_dir = args.out or REPORTS_ROOT / f"{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    ensure_writable(report_dir)
    secrets: list[str] = []

    def save(result: RunResult) -> Path:
        replay = replay_command(args)
        info = cli_tools.write_sc1_run_info(report_dir, args, stack, result, secrets)
        paths = write_report(report_dir, result.history, result.verdict, replay_command=replay, secrets=secrets,
                             run=info)
        after_run(report_dir)
        return paths.html

    def save_partial(result: RunResult) -> None:
        html_path = save(result)
        print(f"simcity: the run so far ({result.verdict.valid.value}) is saved: {display_path(html_path)}",
              file=sys.stderr)

    sweep_before_starting()
    with started(stack, disable=args.json):
        console.print(f"SC-1 on {stack.describe()}", highlight=False, markup=False)
        secrets.append(stack.endpoints.service_key)
        result = _run_with_progress(stack, config, console, quiet=args.json, on_stop=save_partial)
    html_path = save(result)
    verdict = result.verdict
    if args.json:
        print(redact(json.dumps(_summary(result, report_dir, replay_command(args)), indent=2), secrets), flush=True)
    else:
        text = render_text(result.history, verdict, replay_command=replay_command(args))
        print_verdict(console, redact(text, secrets), verdict.valid, f"report: {display_path(html_path)}")
    if verdict.valid is Validity.INCONCLUSIVE:
        print(f"simcity: INCONCLUSIVE (no verdict on the app): {redact(verdict.reason or '', secrets)}", file=sys.stderr)
        return EXIT_INFRA
    return EXIT_PASS if verdict.passed else EXIT_FAIL


def _run_with_progress(stack: Stack, config: RunConfig, console: Console, *, quiet: bool,
                       on_stop: Callable[[RunResult], None]) -> RunResult:
    with progress_display("SC-1", disable=quiet) as progress:
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
    from harness.stacks.detached import detached_kind, stop_detached  # noqa: PLC0415

    state_file = STATE_DIR / "stack.json"
    env_file = STATE_DIR / "stack.env"
    if args.stack_command == "down":
        kind = stop_detached(state_file)
        env_file.unlink(missing_ok=True)
        console.print(f"{kind} stack stopped" if kind else "no stack was running")
        if args.all:
            console.print(f"stopped {reap_orphans()} process(es) left by SimCity runs that were killed")
        return EXIT_PASS
    if state_file.exists():
        raise UsageError(f"a {detached_kind(state_file)} stack is already running ({state_file}); "
                         "`simcity stack down` first")
    app_env = cli_tools.app_env_map(args.app_env)
    stack: Stack
    if args.stack == "compose":
        if args.no_app:
            raise UsageError("--no-app is for the local stack")
        from harness.stacks.compose import ComposeStack  # noqa: PLC0415

        stack = ComposeStack(app_env)
    else:
        from harness.stacks.local import LocalStack  # noqa: PLC0415

        mark_this_process(detached=True)  # what it leaves running is no orphan: no sweep stops it
        stack = LocalStack(app_env, with_app=not args.no_app)
    STATE_DIR.mkdir(exist_ok=True)
    with started(stack, disable=False):
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
    console.print(f"{stack.kind} stack up: {stack.describe()}", highlight=False, markup=False)
    console.print(f"env file (mode 0600): {display_path(env_file)}", highlight=False, markup=False)
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


def cmd_index(args: argparse.Namespace, console: Console) -> int:
    if not args.directory.is_dir():
        raise UsageError(f"{args.directory}: not a directory")
    path = write_index(args.directory)
    console.print(f"index of {len(find_runs(args.directory))} runs and certificates: {display_path(path)}",
                  highlight=False, markup=False)
    return EXIT_PASS


def main(argv: Sequence[str] | None = None) -> int:
    console = make_console()
    if threading.current_thread() is threading.main_thread():
        for each in STOP_SIGNALS:
            signal.signal(each, _stop_on_signal)
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error (or the help)
        return int(exc.code or 0) and EXIT_USAGE
    mark_this_process()
    try:
        if args.command == "sc1":
            args.app_env_map = cli_tools.app_env_map(args.app_env)
            args.distance_map = cli_tools.distance_map(args.distance)
            return cmd_sc1(args, console)
        if args.command in cli_tools.COMMANDS:
            return cli_tools.dispatch(args, console)
        if args.command == "check":
            return check_cmd.cmd_check(args, console)
        if args.command == "index":
            return cmd_index(args, console)
        return cmd_stack(args, console)
    except SimCityError as exc:
        kind = "error" if isinstance(exc, UsageError) else "infrastructure trouble"
        print(f"simcity: {kind}: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # stdout went away (`simcity check --json DIR | head`): as the shell would
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the exit's flush does not fail again
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, StopSignal) else signal.SIGINT
        print(f"simcity: stopped by {signal.Signals(signum).name}; stack stopped and faults healed", file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - a bug in SimCity is never a verdict on the product
        print(f"simcity: internal error (no verdict): {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return EXIT_INFRA


if __name__ == "__main__":
    raise SystemExit(main())
