"""The booking request, the booking row and the decision a strategy returns."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from booking_app.errors import InvalidBody


class Outcome(enum.Enum):
    """What POST /bookings answers, by HTTP status."""

    CREATED = 201  # this intent now holds the slot
    REPLAYED = 200  # a replay of an intent already confirmed
    REJECTED = 409  # another intent holds the slot (first time or replay)


@dataclass(frozen=True)
class BookingRequest:
    intent_id: uuid.UUID
    slot_id: uuid.UUID
    customer_id: uuid.UUID


@dataclass(frozen=True)
class Booking:
    id: uuid.UUID
    intent_id: uuid.UUID
    slot_id: uuid.UUID
    customer_id: uuid.UUID
    status: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Booking":
        return cls(row["id"], row["intent_id"], row["slot_id"], row["customer_id"], row["status"])

    def matches(self, request: BookingRequest) -> bool:
        return self.slot_id == request.slot_id and self.customer_id == request.customer_id

    def as_json(self) -> dict[str, str]:
        return {
            "id": str(self.id), "intent_id": str(self.intent_id), "slot_id": str(self.slot_id),
            "customer_id": str(self.customer_id), "status": self.status,
        }


@dataclass
class Decision:
    """A strategy's answer. `after_response` runs once the answer was sent (ack_before_commit)."""

    outcome: Outcome
    booking: Booking
    after_response: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)

    def body(self) -> dict[str, Any]:
        if self.outcome is Outcome.REJECTED:
            return {"error": "slot_taken", "booking": self.booking.as_json()}
        return {"booking": self.booking.as_json()}


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object; anything else is a 400."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise InvalidBody("body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidBody("body must be a JSON object")
    return value


def _uuid_field(body: Mapping[str, Any], name: str) -> uuid.UUID:
    if name not in body:
        raise InvalidBody(f"missing field {name!r}")
    value = body[name]
    # Only the canonical 36-character form: uuid.UUID() also takes braces, URNs and bare hex, which
    # would let two spellings of one id look different to a client comparing strings.
    if not isinstance(value, str) or len(value) != 36:
        raise InvalidBody(f"{name!r} must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidBody(f"{name!r} must be a UUID string") from exc


def parse_booking_request(raw: bytes) -> BookingRequest:
    body = parse_json_object(raw)
    return BookingRequest(
        intent_id=_uuid_field(body, "intent_id"),
        slot_id=_uuid_field(body, "slot_id"),
        customer_id=_uuid_field(body, "customer_id"),
    )
