"""SimCity's pytest plugin (entry point `pytest11`, name `simcity`): SC-1 as a test of your own.

    def test_booking_never_double_books(simcity_sc1):
        simcity_sc1(seed="sc1-1", iterations=50, slots=4).assert_passed()

`simcity_stack` is a started stack, one per test module, always closed; `simcity_sc1` runs SC-1 on
it, writes the report under the test's `tmp_path` and returns an `SC1Outcome`, whose
`assert_passed()` fails the test with the forensic text on FAIL and makes it an ERROR (never a
failure of the app) on INCONCLUSIVE or infrastructure trouble. Which stack: `--simcity-*` options,
or the same names as ini settings (`simcity_stack = local`). `simcity_app_env` gives the app's
environment: override it in a module (scope "module") for that module's own app.

This module is loaded by every pytest session where SimCity is installed, so it imports nothing
of SimCity's at load time and starts nothing until a test asks for a stack.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.checker import Verdict
    from harness.runner import RunResult
    from harness.stacks.base import Stack

STACK_KINDS = ("local", "compose", "external", "auto")

# (setting, pytest type, help): each is `--simcity-<setting>` on the command line and
# `simcity_<setting>` in the ini file; the command line wins, app-env pairs of both are merged.
_SETTINGS = (
    ("stack", "string", f"where the app under test runs: {', '.join(STACK_KINDS)} (default local)"),
    ("app-env", "linelist", "KEY=VALUE of the app on the local and compose stacks (repeatable)"),
    ("target-url", "string", "external stack: your app"),
    ("rest-url", "string", "external stack: the Supabase REST of your app's database"),
    ("restart-cmd", "string", "external stack: the command that crashes and restarts your app"),
    ("proxy", "bool", "external stack: put simcity-toxiproxy in front of your app"),
    ("db-upstream", "string", "external stack with proxy: your app's real database, HOST:PORT"),
    ("db-listen", "string", "where that app-db proxy listens, HOST:PORT"),
)
_RESOLVED_KIND = pytest.StashKey[str]()
_NO_VERDICT = "simcity_no_verdict"  # set on a test report whose run reached no verdict on the app


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simcity", "SimCity SC-1 (fixtures simcity_stack, simcity_sc1)")
    for name, kind, help_text in _SETTINGS:
        dest = f"simcity_{name.replace('-', '_')}"
        if kind == "bool":
            group.addoption(f"--simcity-{name}", dest=dest, action="store_const", const=True, help=help_text)
        elif kind == "linelist":
            group.addoption(f"--simcity-{name}", dest=dest, action="append", metavar="KEY=VALUE", help=help_text)
        else:
            choices = STACK_KINDS if name == "stack" else None
            group.addoption(f"--simcity-{name}", dest=dest, choices=choices, help=help_text)
        parser.addini(dest, help_text, type=kind)  # type: ignore[arg-type]


def _setting(config: pytest.Config, name: str) -> object:
    dest = f"simcity_{name.replace('-', '_')}"
    given = config.getoption(dest)
    return given if given is not None else config.getini(dest)


def session_app_env(config: pytest.Config) -> dict[str, str]:
    """The app environment the settings give: ini pairs, then command-line pairs over them."""
    from harness.cli_tools import app_env_map  # noqa: PLC0415 - only once a test wants a stack

    ini_pairs = config.getini("simcity_app_env") or []
    return app_env_map([*ini_pairs, *(config.getoption("simcity_app_env") or [])])


def _stack_args(config: pytest.Config, app_env: Mapping[str, str]) -> argparse.Namespace:
    """The settings as `simcity sc1` takes them, so the plugin chooses and checks a stack exactly as
    the command line does (harness.stacks.select)."""
    from harness.errors import UsageError  # noqa: PLC0415

    kind = config.stash.get(_RESOLVED_KIND, None) or _setting(config, "stack") or "local"
    if kind not in STACK_KINDS:  # the command line checks its choices, an ini file does not
        raise UsageError(f"simcity_stack: expected one of {', '.join(STACK_KINDS)}, got {kind!r}")
    values = {name.replace("-", "_"): _setting(config, name) or None
              for name, _, _ in _SETTINGS if name not in ("stack", "app-env")}
    return argparse.Namespace(stack=kind, app_env_map=dict(app_env), distance_map={},
                              **{**values, "proxy": bool(values["proxy"])})


def make_stack(config: pytest.Config, app_env: Mapping[str, str]) -> "Stack":
    """A stack as the settings describe it, not started; a mistake is a UsageError."""
    from rich.console import Console  # noqa: PLC0415

    from harness.stacks.select import choose_stack  # noqa: PLC0415

    return choose_stack(_stack_args(config, app_env), Console(stderr=True))


def _as_plugin_flags(message: str) -> str:
    """A SimCity usage message names `simcity sc1` flags (`--target-url`); here they are spelt
    `--simcity-target-url`."""
    return re.sub(r"(?<![\w-])--(?=[a-z])", "--simcity-", message)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Check the settings before any test runs, in sessions with a test that wants a stack:
    a mistake is one line and pytest's usage-error exit, and nothing has started."""
    if not any("simcity_stack" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from harness.errors import UsageError  # noqa: PLC0415

    try:
        stack = make_stack(session.config, session_app_env(session.config))
    except UsageError as exc:
        raise pytest.UsageError(f"simcity: {_as_plugin_flags(str(exc))}") from None
    session.config.stash[_RESOLVED_KIND] = stack.kind  # `auto` asks the Docker engine once


@pytest.fixture(scope="module")
def simcity_app_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The app's environment on the local and compose stacks (`--simcity-app-env`). Override this
    fixture (scope "module") in a test module to give that module's stack an app of its own."""
    return session_app_env(request.config)


@pytest.fixture(scope="module")
def simcity_stack(request: pytest.FixtureRequest, simcity_app_env: dict[str, str]) -> Iterator["Stack"]:
    """A started stack for this module's tests, closed (every process, port and temp dir) after them."""
    from harness.stacks.reaper import mark_this_process, sweep_before_starting  # noqa: PLC0415

    stack = make_stack(request.config, simcity_app_env)
    # As `simcity` does: what this stack starts carries this process's mark, so a test session
    # killed with -9 leaves nothing the next SimCity run cannot find and stop.
    mark_this_process()
    sweep_before_starting()
    with stack:
        yield stack


@dataclass(frozen=True)
class SC1Outcome:
    """One SC-1 run of a test: what it recorded, where its report is, and its verdict as text
    (render_text: the summary, or the forensic snapshot and the replay command; secrets redacted)."""

    result: "RunResult"
    report_dir: Path
    text: str

    @property
    def verdict(self) -> "Verdict":
        return self.result.verdict

    def assert_passed(self) -> None:
        """Return on PASS. On FAIL the test fails with the forensic text; on INCONCLUSIVE it is an
        ERROR (InconclusiveError): no verdict on the app is never reported as the app's failure."""
        from harness.errors import InconclusiveError  # noqa: PLC0415

        __tracebackhide__ = True  # the test's own line is where it broke, not this helper
        if self.verdict.passed:
            return
        where = f"report: {self.report_dir / 'report.html'}"
        if self.verdict.failed:
            pytest.fail(f"{self.text.rstrip()}\n{where}", pytrace=False)
        raise InconclusiveError(f"{self.text.rstrip()}\n{where}")


class SC1Runner:
    """`simcity_sc1`: call it to run SC-1 once on the module's stack."""

    def __init__(self, stack: "Stack", app_env: Mapping[str, str], config: pytest.Config, reports: Path) -> None:
        self.stack = stack
        self.app_env = dict(app_env)
        self.config = config
        self.reports = reports
        self.runs = 0

    def __call__(self, seed: str = "sc1-1", iterations: int = 50, profile: str = "default", slots: int = 1,
                 mix: str | None = None) -> SC1Outcome:
        from harness.errors import UsageError  # noqa: PLC0415
        from harness.report import redact, render_text, write_report  # noqa: PLC0415
        from harness.runinfo import RunInfo, write_run_info  # noqa: PLC0415
        from harness.runner import RunConfig, RunResult, run_sc1  # noqa: PLC0415

        if iterations < 0:
            raise UsageError(f"iterations must be >= 0, got {iterations}")
        self.runs += 1
        report_dir = self.reports / f"sc1-{self.runs}"
        secrets = [self.stack.endpoints.service_key]
        replay = self.replay_command(seed, iterations, profile, slots, mix)

        def save(result: RunResult) -> None:
            write_report(report_dir, result.history, result.verdict, replay_command=replay, secrets=secrets)
            write_run_info(report_dir, RunInfo(seed, len(result.schedule), profile, self.stack.kind,
                                               result.schedule, self.app_env, slots=slots), secrets)

        config = RunConfig(seed=seed, iterations=iterations, profile=profile, mix=mix, slots=slots)
        try:
            result = run_sc1(self.stack, config, on_stop=save)
        except Exception as exc:
            if (report_dir / "verdict.json").exists():
                exc.add_note(f"simcity: the run so far is saved: {report_dir / 'report.html'}")
            raise
        save(result)
        text = redact(render_text(result.history, result.verdict, replay_command=replay), secrets)
        return SC1Outcome(result, report_dir, text)

    def replay_command(self, seed: str, iterations: int, profile: str, slots: int, mix: str | None) -> str:
        """The `simcity sc1` command line that runs this again outside pytest."""
        from harness.runinfo import sc1_command  # noqa: PLC0415
        from harness.stacks.select import external_target  # noqa: PLC0415

        extra: list[str] = ["--mix", mix] if mix else []
        if self.stack.kind == "external":
            extra += external_target(_stack_args(self.config, {})).flags()
        app_env = self.app_env if self.stack.kind != "external" else {}
        return sc1_command(seed, profile, self.stack.kind, app_env, iterations=iterations, slots=slots, extra=extra)


@pytest.fixture
def simcity_sc1(simcity_stack: "Stack", simcity_app_env: dict[str, str], request: pytest.FixtureRequest,
                tmp_path: Path) -> SC1Runner:
    """Run SC-1 on `simcity_stack`: `simcity_sc1(seed=, iterations=, profile=, slots=, mix=)`;
    each run's report goes to `tmp_path / "sc1-<n>"`."""
    return SC1Runner(simcity_stack, simcity_app_env, request.config, tmp_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Only tests on a SimCity stack: the plugin leaves every other test's report as it is.
    if call.when == "call" and call.excinfo is not None and "simcity_stack" in getattr(item, "fixturenames", ()):
        from harness.errors import InconclusiveError, InfrastructureError  # noqa: PLC0415 - a small module

        if call.excinfo.errisinstance((InconclusiveError, InfrastructureError)):
            setattr(report, _NO_VERDICT, True)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """A run with no verdict on the app (INCONCLUSIVE, a stack or proxy that broke) is counted and
    shown as an ERROR, as pytest shows trouble outside the code under test, not as a failure."""
    if getattr(report, _NO_VERDICT, False) and report.failed:
        return "error", "E", "ERROR"
    return None
