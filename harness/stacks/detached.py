"""Stacks left running by `simcity stack up` (local or Compose) and their removal by `stack down`.

The state file (`.simcity/stack.json`) only says which kind of stack and how to recognise its
parts; what is stopped is verified against facts the stack itself carries (the owner mark in each
process's environment, the Compose project label on each resource), never taken on the file's word.
"""

from __future__ import annotations

import json
from pathlib import Path


def detached_kind(state_file: Path) -> str | None:
    """`local` or `compose` for a stack recorded in `state_file`, None when there is none."""
    state = _read(state_file)
    return None if state is None else str(state.get("kind") or "local")


def stop_detached(state_file: Path) -> str | None:
    """Stop the stack recorded in `state_file` and forget it; its kind, None when none was recorded."""
    state = _read(state_file)
    if state is None:
        return None
    if state.get("kind") == "compose":
        from harness.stacks.compose import stop_detached as stop_compose  # noqa: PLC0415 - needs docker

        project = state.get("project")
        if isinstance(project, str):
            stop_compose(project)
    else:
        from harness.stacks.local import stop_detached as stop_local  # noqa: PLC0415

        stop_local(state)
    state_file.unlink()
    return str(state.get("kind") or "local")


def _read(state_file: Path) -> dict[str, object] | None:
    if not state_file.exists():
        return None
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    return state if isinstance(state, dict) else {}
