"""`harness` as a library: every public name resolves, and importing it (as the pytest plugin does
in every pytest session) loads none of the stacks, the runner or their third-party modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import harness

INIT = Path(harness.__file__)
# Modules `import harness` must not load: they cost ~200 ms (docker, psutil, the services) and
# would load in every pytest session on a machine with SimCity.
HEAVY = ("harness.stacks", "harness.runner", "harness.checker", "harness.cli", "docker", "psutil", "httpx",
         "uvicorn", "asyncpg", "rich")


def loaded_by(statement: str) -> list[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return [m for m in json.loads(done.stdout) if m.startswith(HEAVY)]


@pytest.mark.parametrize("statement", ["import harness", "import harness.pytest_plugin"])
def test_importing_the_package_or_the_plugin_loads_nothing_heavy(statement: str) -> None:
    assert loaded_by(statement) == []


def test_the_issue_names_are_exported_from_their_modules() -> None:
    from harness import ComposeStack, ExternalStack, LocalStack, RunConfig, run_sc1  # noqa: PLC0415
    from harness.runner import RunConfig as runner_config, run_sc1 as runner_run  # noqa: PLC0415
    from harness.stacks.compose import ComposeStack as compose  # noqa: PLC0415
    from harness.stacks.external import ExternalStack as external  # noqa: PLC0415
    from harness.stacks.local import LocalStack as local  # noqa: PLC0415

    assert (run_sc1, RunConfig, LocalStack, ComposeStack, ExternalStack) == (
        runner_run, runner_config, local, compose, external)


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    assert set(harness.__all__) <= set(dir(harness))
    assert len(set(harness.__all__)) == len(harness.__all__)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        harness.no_such_name  # noqa: B018 - the access is the test


def test_what_type_checkers_see_is_the_public_table() -> None:
    """The TYPE_CHECKING imports and the lazy table list the same names from the same modules."""
    tree = ast.parse(INIT.read_text())
    [guarded] = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    imported = {(node.module, alias.name) for node in guarded.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    table = {(module, name) for module, names in harness._PUBLIC.items() for name in names}  # noqa: SLF001
    assert imported == table
