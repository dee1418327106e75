"""`history.jsonl`: a history written to disk and read back, with a format version.

A header line (format version, fixture), then one line per op. Version 2 records a snapshot read
as an interval (its invoke when the request was sent, its ok when the answer arrived). Version 1
recorded both at the answer; such a history still loads, with each read widened to the earliest
moment it could have been sent (the previous read's answer: reads were one at a time), which is
sound for real-time checking: a wider read demands less and excuses more.
"""

from __future__ import annotations

import json
from dataclasses import replace

from harness.contract import JSON, Answer, parse_snapshot
from harness.errors import HistoryFormatError, MalformedSnapshotError
from harness.history import Action, Details, Fixture, History, Hop, Intent, Op, OpKind, Process

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def _fixture_json(f: Fixture) -> dict[str, JSON]:
    return {
        "vendor_id": f.vendor_id, "slot_id": f.slot_id,
        "intents": [
            {"process": i.process.value, "intent_id": i.intent_id, "slot_id": i.slot_id,
             "customer_id": i.customer_id}
            for i in f.intents
        ],
    }


def _fixture_from_json(seed: str, obj: JSON) -> Fixture:
    data = _record(obj, "fixture")
    return Fixture(
        seed=seed, vendor_id=str(data["vendor_id"]), slot_id=str(data["slot_id"]),
        intents=tuple(Intent(Process(i["process"]), str(i["intent_id"]), str(i["slot_id"]), str(i["customer_id"]))
                      for i in data["intents"]),
    )


def to_jsonl(history: History) -> str:
    """The header holds the first slot's fixture at its top level (as one-slot histories always
    did) and, with several slots, every fixture under `slots`."""
    first = history.fixtures[0]
    header: dict[str, JSON] = {"type": "header", "version": FORMAT_VERSION, "seed": first.seed, **_fixture_json(first)}
    if len(history.fixtures) > 1:
        header["slots"] = [_fixture_json(f) for f in history.fixtures]
    lines = [header] + [{"type": "op", **op_to_json(op)} for op in history.ops]
    return "".join(json.dumps(line, sort_keys=True, allow_nan=False) + "\n" for line in lines)


def from_jsonl(text: str) -> History:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise HistoryFormatError(f"history line {number}: not JSON: {exc}") from None
    if not records or _record(records[0], "header").get("type") != "header":
        raise HistoryFormatError("history: the first line must be the header")
    header = records[0]
    version = header.get("version")
    if version not in READABLE_VERSIONS:
        raise HistoryFormatError(f"history: format version {version!r} is not one this SimCity reads "
                                 f"({', '.join(map(str, READABLE_VERSIONS))})")
    try:
        seed = str(header["seed"])
        fixtures = tuple(_fixture_from_json(seed, f) for f in header.get("slots") or [header])
    except (KeyError, ValueError, TypeError, HistoryFormatError) as exc:
        raise HistoryFormatError(f"history header: {exc!r}") from None
    ops = []
    for record in records[1:]:
        if _record(record, "op").get("type") != "op":
            raise HistoryFormatError(f"history: unexpected record {record!r}")
        ops.append(op_from_json({k: v for k, v in record.items() if k != "type"}))
    if version == 1:
        ops = _widen_point_reads(ops)
    return History(fixtures, tuple(ops))


def _widen_point_reads(ops: list[Op]) -> list[Op]:
    """Version 1 wrote each snapshot's invoke right before its ok, both at the answer. Move each
    such invoke back to just after the previous read's answer (or the start), renumbering."""
    moved: list[Op] = []
    last_read_end = 0  # position in `moved` right after the previous read's ok
    for op in ops:
        if op.action is Action.SNAPSHOT and op.kind is OpKind.INVOKE:
            at_time = moved[last_read_end - 1].time_s if last_read_end else (moved[0].time_s if moved else op.time_s)
            moved.insert(last_read_end, replace(op, time_s=at_time))
            continue
        moved.append(op)
        if op.action is Action.SNAPSHOT and op.kind is not OpKind.INVOKE:
            last_read_end = len(moved)
    renumber = {op.index: new for new, op in enumerate(moved)}
    return [replace(op, index=new, invoke_index=renumber.get(op.invoke_index) if op.invoke_index is not None else None)
            for new, op in enumerate(moved)]


def op_to_json(op: Op) -> dict[str, JSON]:
    out: dict[str, JSON] = {
        "index": op.index, "kind": op.kind.value, "process": op.process.value,
        "action": op.action.value, "time_s": op.time_s,
    }
    if op.invoke_index is not None:
        out["invoke_index"] = op.invoke_index
    details = _details_to_json(op.details)
    if details:
        out["details"] = details
    if len(op.snapshots) == 1:
        out["snapshot"] = op.snapshots[0].to_json()
    elif op.snapshots:
        out["snapshots"] = [s.to_json() for s in op.snapshots]
    return out


def op_from_json(obj: JSON) -> Op:
    data = _record(obj, "op")
    try:
        return Op(
            index=_int(data["index"], "index"),
            kind=OpKind(data["kind"]),
            process=Process(data["process"]),
            action=Action(data["action"]),
            time_s=float(data["time_s"]),
            details=_details_from_json(data.get("details", {})),
            invoke_index=_int(data["invoke_index"], "invoke_index") if "invoke_index" in data else None,
            snapshots=(parse_snapshot(data["snapshot"]),) if "snapshot" in data
            else tuple(parse_snapshot(s) for s in data.get("snapshots", ())),
        )
    except (KeyError, ValueError, TypeError, MalformedSnapshotError) as exc:
        raise HistoryFormatError(f"bad op {obj!r}: {exc}") from None


def _details_to_json(d: Details) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    if d.intent_id is not None:
        out["intent_id"] = d.intent_id
    if d.hop is not None:
        out["hop"] = d.hop.value
    if d.params:
        out["params"] = dict(d.params)
    for key in ("status", "body", "latency_ms", "error"):
        if getattr(d, key) is not None:
            out[key] = getattr(d, key)
    if d.answer is not None:
        out["answer"] = d.answer.value
    return out


def _details_from_json(obj: JSON) -> Details:
    data = _record(obj, "details")
    return Details(
        intent_id=data.get("intent_id"),
        hop=Hop(data["hop"]) if "hop" in data else None,
        params=tuple((str(k), _int(v, k)) for k, v in _record(data.get("params", {}), "params").items()),
        status=_int(data["status"], "status") if "status" in data else None,
        body=data.get("body"),
        answer=Answer(data["answer"]) if "answer" in data else None,
        latency_ms=data.get("latency_ms"),
        error=data.get("error"),
    )


def _record(obj: JSON, what: str) -> dict[str, JSON]:
    if not isinstance(obj, dict):
        raise HistoryFormatError(f"{what}: expected an object, got {obj!r}")
    return obj


def _int(value: JSON, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HistoryFormatError(f"{what}: expected an integer, got {value!r}")
    return value
