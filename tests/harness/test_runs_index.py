"""reports/latest and reports/index.html: what is listed, escaping, atomic replacement."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.runs_index import LATEST, after_run, find_runs, render_index, update_latest, write_index
from tests.cli.test_cli import simcity


def fake_run(directory: Path, valid: str, *, seed: str = "sc1-1", strategy: str = "racy", mtime: float = 0) -> Path:
    directory.mkdir(parents=True)
    (directory / "verdict.json").write_text(json.dumps({"valid": valid}))
    (directory / "run.json").write_text(json.dumps({"seed": seed, "profile": "storm", "stack_kind": "local",
                                                    "app_env": {"BOOKING_STRATEGY": strategy}}))
    if mtime:
        os.utime(directory / "verdict.json", (mtime, mtime))
    return directory


def test_runs_and_certificates_newest_first(tmp_path: Path) -> None:
    fake_run(tmp_path / "old", "PASS", mtime=1_600_000_000)
    fake_run(tmp_path / "new", "FAIL", mtime=1_700_000_000)
    cert = tmp_path / "certify-smoke"
    cert.mkdir()
    (cert / "certificate.json").write_text(json.dumps({
        "verdict": "FAIL", "target": {"stack_kind": "compose", "app_strategy": "split_tx"},
        "matrix": {"seeds": ["a", "b"], "profiles": ["default", "calm"]}}))
    fake_run(cert / "runs" / "a-default", "FAIL", mtime=1_650_000_000)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "verdict.json").write_text("{not json")
    rows = find_runs(tmp_path)
    by_path = {r.path: r for r in rows}
    assert set(by_path) == {"old", "new", "certify-smoke", "certify-smoke/runs/a-default", "broken"}
    assert [r.path for r in rows if r.written_at < 1_750_000_000] == ["new", "certify-smoke/runs/a-default", "old"]
    assert (by_path["new"].verdict, by_path["new"].seed, by_path["new"].strategy) == ("FAIL", "sc1-1", "racy")
    certificate = by_path["certify-smoke"]
    assert (certificate.kind, certificate.seed, certificate.profile, certificate.stack, certificate.page) == (
        "certificate", "2 seeds", "default, calm", "compose", "certificate.html")
    assert by_path["broken"].verdict == "?"  # a broken dir is a row, not a broken index


def test_every_value_is_escaped(tmp_path: Path) -> None:
    fake_run(tmp_path / "<script>x", "<b>PASS</b>", seed='"><img src=x onerror=alert(1)>')
    page = render_index(find_runs(tmp_path), tmp_path)
    assert "<script>x" not in page and "<img" not in page and "<b>PASS" not in page
    assert "&lt;script&gt;x" in page and 'href="%3Cscript%3Ex/report.html"' in page
    assert "http" not in page.replace('charset="utf-8"', "")  # self-contained: nothing fetched


def test_latest_is_replaced_atomically_and_index_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    first = fake_run(root / "first", "PASS")
    second = fake_run(root / "nested" / "second", "FAIL")
    assert after_run(first, root) == root / "index.html"
    assert os.readlink(root / LATEST) == "first"
    after_run(second, root)
    assert os.readlink(root / LATEST) == os.path.join("nested", "second")
    assert (root / LATEST / "verdict.json").is_file()
    assert "nested/second/report.html" in (root / "index.html").read_text()
    assert sorted(p.name for p in root.iterdir()) == ["first", "index.html", "latest", "nested"]  # no temp file left
    assert after_run(tmp_path / "elsewhere", root) is None


def test_latest_is_a_file_where_symlinks_cannot_be_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A mock: a file system without symlinks (FAT, some Windows set-ups) is not at hand here.
    def no_symlinks(self: Path, target: str, target_is_directory: bool = False) -> None:
        raise OSError("symlinks not supported")

    monkeypatch.setattr(Path, "symlink_to", no_symlinks)
    run = fake_run(tmp_path / "a-run", "PASS")
    link = update_latest(tmp_path, run)
    assert not link.is_symlink() and link.read_text() == "a-run\n"


def test_a_real_dir_called_latest_is_a_note_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / LATEST).mkdir()
    (tmp_path / LATEST / "keep").write_text("x")
    assert after_run(fake_run(tmp_path / "run", "PASS"), tmp_path) is None
    assert "not updated" in capsys.readouterr().err and (tmp_path / LATEST / "keep").is_file()


def test_index_command(tmp_path: Path) -> None:
    fake_run(tmp_path / "r1", "PASS")
    proc = simcity("index", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "index of 1 runs and certificates" in proc.stdout
    assert "r1/report.html" in write_index(tmp_path).read_text()
    missing = simcity("index", str(tmp_path / "nope"))
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
