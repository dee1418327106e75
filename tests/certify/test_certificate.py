"""The certificate: verdict and exit code, certificate.json round trip, junit.xml and HTML, and
merging shards (refusing other targets, other matrices and duplicate runs; missing runs = ERROR)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from harness.certificate import (
    Certificate, RunRecord, Status, merge, read_certificate, render_html, render_junit, render_markdown,
    write_certificate,
)
from harness.errors import UsageError
from harness.matrix import Matrix
from harness.shard import Shard

MATRIX = Matrix("tiny", ("s1", "s2"), ("calm", "storm"), 30, "test")
TARGET = {"app_strategy": "atomic", "app_env": {}, "stack_kind": "local", "git_sha": "abc",
          "simcity_version": "0.1.0", "image_digest": None, "image_digests": {}}


def record(seed: str, profile: str, status: Status = Status.PASS, **kw: object) -> RunRecord:
    defaults: dict[str, object] = {"schedule_hash": "0123456789ab", "wall_s": 1.5,
                                   "report": f"runs/{seed}__{profile}"}
    if status is Status.FAIL:
        defaults |= {"primary": "DOUBLE_BOOKING", "first_violation": "DOUBLE_BOOKING at op 9"}
    if status is Status.ERROR:
        defaults |= {"error": "stack did not start", "report": None, "schedule_hash": None}
    return RunRecord(seed, profile, 30, status, **(defaults | kw))  # type: ignore[arg-type]


def cert(*runs: RunRecord, shard: str = "1/1", target: dict[str, object] | None = None,
         matrix: Matrix = MATRIX) -> Certificate:
    return Certificate(target or TARGET, matrix, runs, shard=shard, created_at="now", wall_s=3.0)


ALL = [(s, p) for s in MATRIX.seeds for p in MATRIX.profiles]


@pytest.mark.parametrize("statuses, verdict, code", [
    ([Status.PASS] * 4, Status.PASS, 0),
    ([Status.PASS, Status.FAIL, Status.PASS, Status.PASS], Status.FAIL, 1),
    ([Status.PASS, Status.ERROR, Status.PASS, Status.PASS], Status.ERROR, 3),
    ([Status.FAIL, Status.ERROR, Status.PASS, Status.PASS], Status.FAIL, 1),  # a finding beats trouble
])
def test_verdict_and_exit_code(statuses: list[Status], verdict: Status, code: int) -> None:
    c = cert(*(record(s, p, st) for (s, p), st in zip(ALL, statuses)))
    assert c.status is verdict and c.exit_code == code


def test_an_empty_shard_passes_and_the_merge_still_sees_every_run(tmp_path: Path) -> None:
    assert cert(shard="9/9").exit_code == 0
    merged = merge([(cert(shard="9/9"), tmp_path)], tmp_path / "m")
    assert merged.exit_code == 3 and len(merged.runs) == len(MATRIX)


def test_json_round_trip_and_files(tmp_path: Path) -> None:
    cov = {"runs": 1, "crashes": 2, "crash_points": {"after_commit_before_answer": 1, "between_bookings": 1,
                                                      "before_first_booking": 0}}
    c = cert(record("s1", "calm", coverage=cov), record("s1", "storm", Status.FAIL),
             record("s2", "calm", Status.ERROR), record("s2", "storm", coverage=cov))
    paths = write_certificate(tmp_path, c, secrets=["sekrit"])
    data = json.loads(paths.json.read_text())
    assert data["verdict"] == "FAIL" and data["summary"] == {"runs": 4, "pass": 2, "fail": 1, "error": 1}
    assert data["errors"] == [{"id": "s2/calm", "error": "stack did not start"}]
    assert data["coverage"]["crashes"] == 4 and data["coverage"]["crash_points"]["after_commit_before_answer"] == 2
    assert data["matrix"]["hash"] == MATRIX.hash and data["target"]["git_sha"] == "abc"
    again, where = read_certificate(tmp_path)
    assert where == tmp_path and again.runs == c.runs and again.matrix == MATRIX and again.status is Status.FAIL


def test_markdown_summary_names_the_verdict_the_target_and_each_run_that_did_not_pass(tmp_path: Path) -> None:
    target = {"stack_kind": "external", "target_url": "http://app:8080", "target_version": "2.4|rc1",
              "target_git_sha": None, "simcity_git_sha": "abc", "simcity_version": "0.1.0"}
    c = cert(record("s1", "calm"), record("s1", "storm", Status.FAIL), record("s2", "calm", Status.ERROR),
             record("s2", "storm"), target=target)
    text = render_markdown(c)
    assert text.startswith("## SimCity certificate: FAIL\n")
    assert "4 runs of matrix `tiny` (30 actions): 2 PASS, 1 FAIL, 1 ERROR in 3.0 s." in text
    assert "| your app | http://app:8080 |" in text and "| its version | 2.4\\|rc1 |" in text
    assert "| its commit | unknown |" in text
    assert "| s1/storm | FAIL | DOUBLE_BOOKING at op 9 | runs/s1__storm/report.html |" in text
    assert "| s2/calm | ERROR | stack did not start | - |" in text and "s1/calm" not in text
    assert write_certificate(tmp_path, c).summary.read_text() == text
    assert "| run |" not in render_markdown(cert(record("s1", "calm")))  # nothing failed: no table of failures


def test_junit_has_a_testcase_per_run() -> None:
    c = cert(record("s1", "calm"), record("s1", "storm", Status.FAIL), record("s2", "calm", Status.ERROR))
    suite = ET.fromstring(render_junit(c).split("?>", 1)[1])
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"s1/calm", "s1/storm", "s2/calm"}
    assert cases["s1/storm"].find("failure").get("type") == "DOUBLE_BOOKING"  # type: ignore[union-attr]
    assert cases["s2/calm"].find("error") is not None and cases["s1/calm"].find("failure") is None


def test_html_grid_links_failing_runs() -> None:
    c = cert(record("s1", "calm"), record("s1", "storm", Status.FAIL), record("s2", "calm", Status.ERROR),
             shard="1/2")
    page = render_html(c)
    assert 'href="runs/s1__storm/report.html"' in page
    assert 'class="cell PASS"' in page and 'class="cell FAIL"' in page and 'class="cell ERROR"' in page
    assert "not in this shard" in page  # s2/storm
    assert "stack did not start" in page


def test_html_lists_failures_with_commands_and_reads_like_words() -> None:
    c = cert(record("s1", "calm", winner="C2"), record("s1", "storm", Status.FAIL),
             target={**TARGET, "app_env": {"BOOKING_STRATEGY": "racy"}})
    page = render_html(c)
    assert "C2 won · 1.5 s" in page and "1.5 s</div>" in page  # winner and duration in the cell
    failure = page[page.index('id="fail-s1/storm"'):]
    assert "simcity replay runs/s1__storm" in failure and "simcity shrink runs/s1__storm" in failure
    assert ("simcity sc1 --seed s1 --iterations 30 --profile storm --stack local --app-env "
            "BOOKING_STRATEGY=racy") in failure
    assert 'href="#fail-s1/storm"' in page  # the failing cell links to its entry
    target = page[page.index("<h2>Target</h2>"):page.index("<h2>Coverage</h2>")]
    assert "null" not in target and "{}" not in target
    assert "none: the local stack runs no images" in target and "BOOKING_STRATEGY=racy" in target


def test_a_passing_run_keeps_its_winner_through_json() -> None:
    run = record("s1", "calm", winner="C1 C2")
    assert RunRecord.from_json(run.to_json()).winner == "C1 C2"


def shards(tmp_path: Path, count: int, statuses: dict[str, Status] | None = None) -> list[tuple[Certificate, Path]]:
    out = []
    for i in range(1, count + 1):
        directory = tmp_path / f"shard-{i}"
        runs = []
        for spec in Shard(i, count).select(MATRIX.runs()):
            run = record(spec.seed, spec.profile, (statuses or {}).get(spec.id, Status.PASS))
            if run.report:
                (directory / run.report).mkdir(parents=True)
                (directory / run.report / "report.html").write_text(f"report of {spec.id}")
            runs.append(run)
        c = cert(*runs, shard=f"{i}/{count}")
        write_certificate(directory, c)
        out.append(read_certificate(directory / "certificate.json"))
    return out


def test_merge_joins_shards_and_copies_reports(tmp_path: Path) -> None:
    merged = merge(shards(tmp_path, 3, {"s2/calm": Status.FAIL}), tmp_path / "merged")
    assert [r.id for r in merged.runs] == [s.id for s in MATRIX.runs()]
    assert merged.status is Status.FAIL and merged.shard == "merged" and len(merged.merged_from) == 3
    failing = next(r for r in merged.runs if r.status is Status.FAIL)
    assert (tmp_path / "merged" / failing.report / "report.html").read_text() == "report of s2/calm"  # type: ignore[operator]


def test_merge_of_all_pass_shards_passes(tmp_path: Path) -> None:
    assert merge(shards(tmp_path, 2), tmp_path / "m").exit_code == 0


def test_missing_runs_are_errors(tmp_path: Path) -> None:
    merged = merge(shards(tmp_path, 3)[:2], tmp_path / "m")
    missing = [r for r in merged.runs if r.status is Status.ERROR]
    assert [r.id for r in missing] == [s.id for s in Shard(3, 3).select(MATRIX.runs())]
    assert all("missing" in (r.error or "") for r in missing) and merged.exit_code == 3


def test_duplicate_runs_are_refused(tmp_path: Path) -> None:
    parts = shards(tmp_path, 2)
    with pytest.raises(UsageError, match="duplicate runs: s1/calm"):
        merge([*parts, parts[0]], tmp_path / "m")


def test_other_target_is_refused(tmp_path: Path) -> None:
    (c1, d1), (c2, d2) = shards(tmp_path, 2)
    other = replace(c2, target={**TARGET, "app_strategy": "racy"})
    with pytest.raises(UsageError, match="another target.*app_strategy"):
        merge([(c1, d1), (other, d2)], tmp_path / "m")


def test_other_matrix_is_refused(tmp_path: Path) -> None:
    (c1, d1), (c2, d2) = shards(tmp_path, 2)
    other = replace(c2, matrix=Matrix("tiny", ("s1", "s2"), ("calm", "storm"), 50))
    with pytest.raises(UsageError, match="refusing to merge"):
        merge([(c1, d1), (other, d2)], tmp_path / "m")


def test_not_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "certificate.json").write_text('{"format": "x"}')
    with pytest.raises(UsageError, match="not a SimCity certificate"):
        read_certificate(tmp_path)


def test_a_shard_that_could_not_learn_the_images_still_merges(tmp_path: Path) -> None:
    (c1, d1), (c2, d2) = shards(tmp_path, 2)
    with_images = replace(c1, target={**TARGET, "image_digest": "sha256:aa", "image_digests": {"app": "sha256:aa"}})
    merged = merge([(c2, d2), (with_images, d1)], tmp_path / "m")
    assert merged.target["image_digest"] == "sha256:aa" and merged.exit_code == 0
    other = replace(c2, target={**TARGET, "image_digest": "sha256:bb"})
    with pytest.raises(UsageError, match="differs in image_digest"):
        merge([(with_images, d1), (other, d2)], tmp_path / "m2")
