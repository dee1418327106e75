"""The shipped CI examples call the commands as they exist: every `simcity ...` line they run
parses with the real argument parser (the YAML is read as text: no YAML library is needed)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from harness.cli import build_parser
from tests.certify.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "certify.example.yml"
OWN_APP_WORKFLOW = REPO / ".github" / "workflows" / "certify-own-app.example.yml"
K8S = REPO / "compose" / "k8s" / "certify-indexed-job.yaml"


def commands(path: Path, substitutions: dict[str, str]) -> list[list[str]]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    for pattern, value in substitutions.items():
        text = re.sub(pattern, value, text)
    # Folded YAML (`>`): the command's lines are joined with spaces up to the next key or `;`.
    found = []
    for match in re.finditer(r"simcity (certify[^;\n]*(?:\n\s+--[^;\n]*)*)", text):
        found.append(shlex.split(" ".join(match[1].split())))
    return found


def test_workflow_runs_shards_then_merges() -> None:
    found = commands(WORKFLOW, {r"\$\{\{ matrix\.shard \}\}": "2", r"\$\{SHARDS\}": "3",
                                r"\$\{\{ inputs\.\w+ \}\}": "default"})
    assert any("--shard" in c for c in found) and any(c[:2] == ["certify", "merge"] for c in found)
    for argv in found:
        args = build_parser().parse_args(argv)
        assert args.command == "certify"
        if "--shard" in argv:
            assert argv[argv.index("--shard") + 1] == "2/3"


def test_own_app_workflow_certifies_an_external_app_with_its_identity() -> None:
    [argv] = commands(OWN_APP_WORKFLOW, {r"\$\{\{ github\.ref_name \}\}": "v2.4.0"})
    args = build_parser().parse_args(argv)
    assert (args.command, args.stack, args.target_version) == ("certify", "external", "v2.4.0")
    assert args.target_url and args.rest_url and args.restart_cmd and args.proxy and args.db_upstream
    text = OWN_APP_WORKFLOW.read_text()
    assert "certificate/junit.xml" in text and "certificate/summary.md" in text and "GITHUB_STEP_SUMMARY" in text


def test_k8s_indexed_job_maps_the_index_to_a_1_based_shard() -> None:
    text = K8S.read_text()
    assert "completionMode: Indexed" in text
    found = commands(K8S, {r"\$\(\(JOB_COMPLETION_INDEX \+ 1\)\)": "1"})
    certify = [c for c in found if "--shard" in c]
    assert certify and certify[0][certify[0].index("--shard") + 1] == "1/6"
    build_parser().parse_args(certify[0])
    assert re.search(r"completions: 6\b", text)
