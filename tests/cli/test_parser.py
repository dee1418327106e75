"""The parser as a user meets it: every option helped, `--version`, one-line errors that name the
subcommand and suggest the closest name, `sc1 --help` with exit codes and step actions."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib import metadata

import pytest

from harness.cli import build_parser
from harness.generator import SCHEDULE_ACTIONS
from tests.cli.test_cli import simcity


def every_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from every_parser(child)


def test_every_option_and_subcommand_has_help() -> None:
    missing = []
    for parser in every_parser(build_parser()):
        for action in parser._actions:
            helped = [action] if not isinstance(action, argparse._SubParsersAction) else action._choices_actions
            missing += [f"{parser.prog} {'/'.join(a.option_strings) or a.dest}" for a in helped
                        if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


def test_version_comes_from_the_installed_package() -> None:
    proc = simcity("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"simcity {metadata.version('simcity')}"


@pytest.mark.parametrize("args, expected", [
    (["sc2"], "simcity: error: argument COMMAND: invalid choice: 'sc2'"),
    (["chek", "x"], "(did you mean check?)"),
    (["sc1", "--seeed", "x"], "simcity sc1: error: unrecognized arguments: --seeed x (did you mean --seed?); "
                              "see 'simcity sc1 --help'"),
    (["sc1", "--stack", "locl"], "simcity sc1: error: argument --stack: invalid choice: 'locl'"),
    (["sc1", "--stack", "locl"], "(did you mean local?)"),
    (["sc1", "--mix", "chaos"], "(did you mean chaotic?)"),
    (["fault", "heal", "--hpo", "app-db"], "simcity fault heal: error: unrecognized arguments: --hpo app-db "
                                          "(did you mean --hop?); usage: simcity fault heal [-h] [--hop HOP]"),
    (["certify", "merge"], "simcity certify merge: error: the following arguments are required: CERT"),
    (["check"], "simcity check: error: the following arguments are required"),
    (["check", "a", "b"], "simcity check: error: unrecognized arguments: b; usage: simcity check"),
    ([], "simcity: error: the following arguments are required: COMMAND"),
])
def test_usage_errors_are_one_line_naming_the_subcommand(args: list[str], expected: str) -> None:
    proc = simcity(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_no_suggestion_for_a_name_like_nothing_known() -> None:
    proc = simcity("sc1", "--zzzzzz")
    assert proc.returncode == 2 and "did you mean" not in proc.stderr


def test_sc1_help_has_exit_codes_and_every_step_action() -> None:
    proc = simcity("sc1", "--help")
    assert proc.returncode == 0
    text = proc.stdout
    assert "exit: 0 PASS; 1 FAIL" in text and "3 INCONCLUSIVE" in text and "130 / 143 /" in text
    for action in SCHEDULE_ACTIONS:
        assert f"{action.value}(" in text, action
    assert "--out DIR" in text and "--report-dir is the same" in text


@pytest.mark.parametrize("command", [["sc1"], ["certify"], ["replay", "r"], ["check", "r"]])
def test_out_and_report_dir_are_one_flag(command: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args([*command, "--out", "x"]).out == parser.parse_args([*command, "--report-dir", "x"]).out
