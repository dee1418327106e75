"""SimCity's SC-1 harness: the recorded history, the seeded generator, the checker and the reports.

The public API is what `__all__` lists; the stacks, client and nemesis build on these types.
"""

from harness.checker import (
    Invariant,
    TerminalState,
    Validity,
    Verdict,
    Violation,
    ViolationName,
    check,
)
from harness.errors import (
    HistoryFormatError,
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
from harness.contract import (
    Answer,
    BookingRow,
    BookingStatus,
    SlotSnapshot,
    SlotState,
    classify_booking_answer,
    parse_snapshot,
)
from harness.history import Action, Details, Fixture, History, Hop, Intent, Op, OpKind, Process
from harness.history_io import from_jsonl, to_jsonl
from harness.recorder import Recorder
from harness.report import ReportPaths, redact, render_html, render_junit, render_text, write_report

__all__ = [
    # errors
    "SimCityError", "UsageError", "InfrastructureError", "StackStartError", "ProxyUnreachableError",
    "RestUnreachableError", "ScheduleError", "HistoryFormatError", "MalformedSnapshotError",
    # history
    "Action", "Answer", "BookingRow", "BookingStatus", "Details", "Fixture", "History", "Hop",
    "Intent", "Op", "OpKind", "Process", "Recorder", "SlotSnapshot", "SlotState",
    "classify_booking_answer", "parse_snapshot", "from_jsonl", "to_jsonl",
    # generator
    "MIXES", "ActionMix", "IntentRef", "Schedule", "Step", "mix_named",
    # faults
    "KINDS", "FaultKind", "FaultPlan", "plan_for_profile",
    # checker
    "Invariant", "TerminalState", "Validity", "Verdict", "Violation", "ViolationName", "check",
    # reports
    "ReportPaths", "redact", "render_html", "render_junit", "render_text", "write_report",
]
