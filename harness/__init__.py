"""SimCity's SC-1 harness as a library: start a stack, run SC-1 on it, write and read its reports.

    from harness import LocalStack, RunConfig, run_sc1, write_report

    with LocalStack({"BOOKING_STRATEGY": "atomic"}) as stack:
        result = run_sc1(stack, RunConfig(seed="sc1-1", iterations=50, slots=4))
    write_report(pathlib.Path("reports/sc1-1"), result.history, result.verdict)

The public API is what `__all__` lists. Each name is imported from its module on first use
(PEP 562): `import harness`, and with it the pytest plugin that every pytest session on a machine
with SimCity loads, stays a few milliseconds, and the stacks' Docker SDK, process and service
code load only for a caller who touches a stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# module -> the public names it defines.
_PUBLIC: dict[str, tuple[str, ...]] = {
    "harness.errors": (
        "SimCityError", "UsageError", "InfrastructureError", "StackStartError", "ProxyUnreachableError",
        "RestUnreachableError", "ScheduleError", "HistoryFormatError", "MalformedSnapshotError", "InconclusiveError",
    ),
    "harness.history": ("Action", "Details", "Fixture", "History", "Hop", "Intent", "Op", "OpKind", "Process"),
    "harness.contract": (
        "Answer", "BookingRow", "BookingStatus", "SlotSnapshot", "SlotState", "classify_booking_answer",
        "parse_snapshot",
    ),
    "harness.recorder": ("Recorder",),
    "harness.history_io": ("from_jsonl", "to_jsonl"),
    "harness.generator": ("MIXES", "ActionMix", "IntentRef", "Schedule", "Step", "mix_named"),
    "harness.faults": ("KINDS", "FaultKind", "FaultPlan", "plan_for_profile"),
    "harness.checker": ("Invariant", "TerminalState", "Validity", "Verdict", "Violation", "ViolationName", "check"),
    "harness.report": ("ReportPaths", "redact", "render_html", "render_junit", "render_text", "write_report"),
    "harness.runner": ("RunConfig", "RunResult", "run_sc1"),
    "harness.stacks.base": ("Stack", "StackEndpoints"),
    "harness.stacks.local": ("LocalStack",),
    "harness.stacks.compose": ("ComposeStack",),
    "harness.stacks.external": ("ExternalStack",),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = list(_MODULE_OF)

if TYPE_CHECKING:  # what type checkers and IDEs see; tests/harness/test_api.py keeps it equal to _PUBLIC
    from harness.checker import Invariant, TerminalState, Validity, Verdict, Violation, ViolationName, check
    from harness.contract import (
        Answer,
        BookingRow,
        BookingStatus,
        SlotSnapshot,
        SlotState,
        classify_booking_answer,
        parse_snapshot,
    )
    from harness.errors import (
        HistoryFormatError,
        InconclusiveError,
        InfrastructureError,
        MalformedSnapshotError,
        ProxyUnreachableError,
        RestUnreachableError,
        ScheduleError,
        SimCityError,
        StackStartError,
        UsageError,
    )
    from harness.faults import KINDS, FaultKind, FaultPlan, plan_for_profile
    from harness.generator import MIXES, ActionMix, IntentRef, Schedule, Step, mix_named
    from harness.history import Action, Details, Fixture, History, Hop, Intent, Op, OpKind, Process
    from harness.history_io import from_jsonl, to_jsonl
    from harness.recorder import Recorder
    from harness.report import ReportPaths, redact, render_html, render_junit, render_text, write_report
    from harness.runner import RunConfig, RunResult, run_sc1
    from harness.stacks.base import Stack, StackEndpoints
    from harness.stacks.compose import ComposeStack
    from harness.stacks.external import ExternalStack
    from harness.stacks.local import LocalStack


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
