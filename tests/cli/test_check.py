"""`simcity check`: a stored history judged again, as a user runs it (a real process), on a FAIL
and a PASS history, and on files that are no history (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import Process, SlotState, check
from harness.history_io import to_jsonl
from harness.report import write_report
from harness.terminal import display_path
from tests.cli.test_cli import simcity
from tests.harness.builders import Builder, row, state_1


def double_booking_dir(directory: Path) -> Path:
    """A report dir as an app that confirms both customers leaves it: both rows confirmed."""
    b = Builder()
    b.book(Process.C1, 201)
    b.book(Process.C2, 201)
    b.snap(SlotState.BOOKED, row(Process.C1), row(Process.C2))
    history = b.history()
    write_report(directory, history, check(history), replay_command="simcity sc1 --seed test")
    return directory


def test_a_fail_history_fails_again_with_its_forensics(tmp_path: Path) -> None:
    report = double_booking_dir(tmp_path / "run")
    proc = simcity("check", str(report))
    assert proc.returncode == 1, proc.stderr
    assert "SC-1 FAIL: DOUBLE_BOOKING" in proc.stdout
    assert "replay: simcity sc1 --seed test" in proc.stdout
    # As seen from the directory it ran in, this test's (relative where that is shorter).
    assert proc.stdout.rstrip().endswith(f"FAIL - history: {display_path(report / 'history.jsonl')}")
    assert "recorded verdict" not in proc.stdout  # it agrees with the one recorded


def test_a_pass_history_file_passes(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(to_jsonl(state_1(Builder()).history()))
    proc = simcity("check", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["verdict"]["valid"] == "PASS" and summary["verdict"]["winner"] == "C1"
    assert summary["recorded"] is None and summary["ops"] > 0


def test_a_history_without_a_definite_answer_is_inconclusive_exit_3(tmp_path: Path) -> None:
    b = Builder()
    b.answer(b.invoke(Process.C1), None, error="timeout")  # unknown outcome, and nothing after it
    b.settle()
    b.snap(SlotState.FREE)
    path = tmp_path / "history.jsonl"
    path.write_text(to_jsonl(b.history()))
    proc = simcity("check", str(path))
    assert proc.returncode == 3, proc.stderr
    assert "SC-1 INCONCLUSIVE (no verdict on the app)" in proc.stdout and "INCONCLUSIVE - history:" in proc.stdout


def test_a_verdict_that_changed_is_said_and_out_writes_a_fresh_report(tmp_path: Path) -> None:
    report = double_booking_dir(tmp_path / "run")
    (report / "run.json").write_text('{"format": "simcity-run/1"}\n')
    verdict = json.loads((report / "verdict.json").read_text())
    (report / "verdict.json").write_text(json.dumps({**verdict, "valid": "PASS", "violations": []}))
    out = tmp_path / "rechecked"
    proc = simcity("check", str(report), "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    assert "the recorded verdict was PASS; this checker says FAIL" in proc.stdout
    assert json.loads((out / "verdict.json").read_text())["valid"] == "FAIL"
    assert "DOUBLE_BOOKING" in (out / "report.html").read_text()
    assert (out / "run.json").read_text() == (report / "run.json").read_text()  # replayable from there
    assert (out / "history.jsonl").read_text() == (report / "history.jsonl").read_text()


@pytest.mark.parametrize("content, fragment", [
    ("not json at all\n", "history line 1: not JSON"),
    ('{"type": "op", "index": 0}\n', "the first line must be the header"),
    ('{"type": "header", "version": 99, "seed": "x"}\n', "format version 99"),
    ("", "the first line must be the header"),
    (None, "no such file"),
])
def test_unusable_input_is_one_line_and_exit_2(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "history.jsonl"
    if content is not None:
        path.write_text(content)
    proc = simcity("check", str(path))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("simcity: error: ") and fragment in lines[0], proc.stderr


def test_a_truncated_history_and_a_bad_op_are_one_line(tmp_path: Path) -> None:
    text = (double_booking_dir(tmp_path / "run") / "history.jsonl").read_text()
    lines = text.splitlines()
    cases = {"truncated": text[: len(text) // 2], "bad op": "\n".join([lines[0], '{"type": "op", "index": "x"' + ', "pad": "'
                                                                      + "y" * 2000 + '"}'])}
    for name, content in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(content)
        proc = simcity("check", str(path))
        assert proc.returncode == 2, (name, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1 and len(proc.stderr) < 500, (name, proc.stderr)


def test_a_dir_without_a_history(tmp_path: Path) -> None:
    proc = simcity("check", str(tmp_path))
    assert proc.returncode == 2 and f"{tmp_path}: no history.jsonl in it" in proc.stderr


def test_a_certificate_dir_points_at_its_runs(tmp_path: Path) -> None:
    (tmp_path / "certificate.json").write_text("{}")
    proc = simcity("check", str(tmp_path))
    assert proc.returncode == 2 and "(a certificate: each run has one, under runs/)" in proc.stderr
