"""The `simcity` pytest plugin as a user meets it: pytest sessions of their own (pytester, in a
subprocess, the plugin loaded through its entry point) running the README's example test on the
real local stack, with the correct app and with a broken one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import LocalStack, Process, Validity, check, render_text
from harness.errors import InconclusiveError
from harness.generator import Schedule
from harness.pytest_plugin import SC1Outcome
from harness.runner import RunResult
from tests.harness.builders import Builder
from tests.leftovers import processes_in, private_tmpdir

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_booking_sc1.py"
RUN_TIMEOUT_S = 240


def the_one(pattern: str, out: str) -> str:
    """The one value `pattern` captures in a pytest session's output. Under CI (the `CI` or
    `BUILD_NUMBER` variable set) pytest's short summary repeats a failure's whole message instead
    of its first line, so the same line may show twice: it must name one value."""
    found = set(re.findall(pattern, out, re.M))
    assert len(found) == 1, (pattern, out)
    return found.pop()


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR of the pytest sessions under test: what their stacks leave behind is seen here."""
    directory = private_tmpdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    yield directory
    assert processes_in(directory) == []
    assert list(directory.iterdir()) == []
    directory.rmdir()


def test_the_readme_shows_the_example_test_as_it_is() -> None:
    assert EXAMPLE.read_text() in (ROOT / "README.md").read_text()


def test_loading_the_plugin_starts_nothing_and_offers_its_options(pytester: pytest.Pytester,
                                                                  private_tmp: Path) -> None:
    pytester.makepyfile(test_other="""
        import sys

        def test_an_unrelated_test_of_the_same_session():
            assert "harness.pytest_plugin" in sys.modules  # loaded through the pytest11 entry point
            assert [m for m in sys.modules if m.startswith(("harness.stacks", "harness.runner", "docker"))] == []
            import psutil
            assert psutil.Process().children() == []
    """)
    assert pytester.runpytest_subprocess(timeout=RUN_TIMEOUT_S).ret == pytest.ExitCode.OK
    helped = pytester.runpytest_subprocess("--help", timeout=RUN_TIMEOUT_S)
    assert "--simcity-stack={local,compose,external,auto}" in helped.stdout.str()
    assert "simcity_app_env (linelist)" in helped.stdout.str()


@pytest.mark.parametrize("args, message", [
    (["--simcity-app-env", "BOOKING_STRATEGY=rac"],
     "ERROR: simcity: --simcity-app-env BOOKING_STRATEGY=rac: unknown strategy (did you mean racy?)"),
    (["--simcity-stack", "external", "--simcity-target-url", "http://127.0.0.1:9"],
     "ERROR: simcity: --simcity-stack external needs --simcity-target-url and --simcity-rest-url"),
    (["--simcity-app-env", "NOEQUALS"], "ERROR: simcity: --simcity-app-env wants KEY=VALUE, got 'NOEQUALS'"),
    (["-o", "simcity_stack=locl"], "ERROR: simcity: simcity_stack: expected one of local, compose, external, auto"),
])
def test_bad_settings_are_pytests_usage_error_before_anything_starts(
        pytester: pytest.Pytester, private_tmp: Path, args: list[str], message: str) -> None:
    pytester.makepyfile(test_booking_sc1=EXAMPLE.read_text())
    result = pytester.runpytest_subprocess(*args, timeout=RUN_TIMEOUT_S)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0].startswith(message)


def test_the_example_passes_on_the_correct_app_and_fails_with_the_forensic_text_on_a_broken_one(
        pytester: pytest.Pytester, private_tmp: Path) -> None:
    pytester.makepyfile(test_booking_sc1=EXAMPLE.read_text())

    correct = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=RUN_TIMEOUT_S)
    correct.assert_outcomes(passed=1)

    # `racy` on 4 slots is caught on seed sc1-1 (tests/e2e/test_nemesis_aimed.py).
    broken = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--simcity-app-env", "BOOKING_STRATEGY=racy",
                                           timeout=RUN_TIMEOUT_S)
    broken.assert_outcomes(failed=1)
    out = broken.stdout.str()
    assert re.search(r"^SC-1 FAIL on slot \d of 4: DOUBLE_BOOKING \(invariant 1", out, re.M), out
    for forensic in ("all violations:", "confirmed C1's intent", "confirmed C2's intent",
                     "last actions before the break:",
                     "replay: simcity sc1 --seed sc1-1 --iterations 50 --slots 4 --profile default --stack local "
                     "--app-env BOOKING_STRATEGY=racy"):
        assert forensic in out
    assert "Traceback" not in out and "eyJ" not in out  # no stack trace of the plugin, no JWT (secret)
    html = the_one(r"^report: (\S+)$", out)
    report = Path(html).parent
    assert json.loads((report / "verdict.json").read_text())["valid"] == "FAIL"
    run = json.loads((report / "run.json").read_text())  # what `simcity replay` / `shrink` read
    assert (run["seed"], run["slots"], run["app_env"]) == ("sc1-1", 4, {"BOOKING_STRATEGY": "racy"})


def test_a_module_overriding_simcity_app_env_gets_a_stack_of_its_own(pytester: pytest.Pytester,
                                                                     private_tmp: Path) -> None:
    pytester.makepyfile(
        test_default="""
            def test_the_settings_app(simcity_stack):
                assert "booking-app[split_tx]" in simcity_stack.describe()
        """,
        test_own_app="""
            import pytest

            @pytest.fixture(scope="module")
            def simcity_app_env():
                return {"BOOKING_STRATEGY": "racy"}

            def test_this_modules_app(simcity_stack):
                assert "booking-app[racy]" in simcity_stack.describe()
        """)
    result = pytester.runpytest_subprocess("--simcity-app-env", "BOOKING_STRATEGY=split_tx", timeout=RUN_TIMEOUT_S)
    result.assert_outcomes(passed=2)


@pytest.fixture(scope="module")
def served() -> Iterator[LocalStack]:
    """A reference app to point an external stack at. Module-scoped, so it starts before the
    `pytester` fixture snapshots sys.modules: pytester drops at teardown what was imported after
    its snapshot (httpcore imports its connection code on the first request), and a second copy
    of a module means exception classes that other tests' `except` clauses no longer catch."""
    with LocalStack() as stack:
        yield stack


def test_infrastructure_trouble_in_a_run_is_an_error_not_a_failure(
        served: LocalStack, pytester: pytest.Pytester, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The external stack: the reference app serves, its REST URL refuses, so the run's first
    read of the truth fails. The test is an ERROR and the run so far is saved."""
    pytester.makepyfile(test_booking_sc1=EXAMPLE.read_text())
    refused = "http://127.0.0.1:9"  # discard: nothing listens
    key = served.endpoints.service_key
    monkeypatch.setenv("SIMCITY_SERVICE_KEY", key)
    # The schedule crashes the app, so a restart command is required up front; the run never
    # gets that far.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--simcity-stack", "external", "--simcity-target-url", served.app_direct_url,
        "--simcity-rest-url", refused, "--simcity-restart-cmd", "true", timeout=RUN_TIMEOUT_S)
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "RestUnreachableError" in out and "ERROR at call of test_booking_never_double_books" in out
    saved = the_one(r"simcity: the run so far is saved: (\S+)", out)
    verdict = json.loads((Path(saved).parent / "verdict.json").read_text())
    assert verdict["valid"] == "INCONCLUSIVE"
    assert verdict["replay_command"] == (
        f"simcity sc1 --seed sc1-1 --iterations 50 --slots 4 --profile default --stack external "
        f"--target-url {served.app_direct_url} --rest-url {refused} --restart-cmd true")
    assert key not in out


def test_assert_passed_on_an_inconclusive_run_raises_the_error_the_plugin_reports_as_error(tmp_path: Path) -> None:
    """A recorded history where one booking's answer never came: no terminal state, INCONCLUSIVE."""
    builder = Builder()
    builder.invoke(Process.C1)
    history = builder.rec.history()
    verdict = check(history, terminal=True)
    assert verdict.valid is Validity.INCONCLUSIVE
    outcome = SC1Outcome(RunResult(Schedule((), "sc1-1", "calm"), history, verdict, 0.1, 0), tmp_path,
                         render_text(history, verdict))
    with pytest.raises(InconclusiveError, match=r"(?s)^SC-1 INCONCLUSIVE \(no verdict on the app\): .*"
                                                r"\nreport: .*report\.html$"):
        outcome.assert_passed()
