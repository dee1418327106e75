"""Every answer other than a booking decision is one of these; the app turns each into JSON."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine-readable code, an optional human detail."""

    status = 500
    code = "internal"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, **self.extra}
        if self.detail:
            body["detail"] = self.detail
        return body


class InvalidBody(ApiError):
    status = 400
    code = "invalid_body"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class UnknownSlot(NotFound):
    code = "unknown_slot"


class UnknownCustomer(NotFound):
    code = "unknown_customer"


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class IntentMismatch(ApiError):
    status = 422
    code = "intent_mismatch"


class DatabaseUnavailable(ApiError):
    """The database did not answer in time or dropped us: the outcome is unknown (contract: 5xx)."""

    status = 503
    code = "database_unavailable"


class DecisionPending(ApiError):
    """A committed booking without a decision (never written by atomic): outcome unknown."""

    status = 503
    code = "decision_pending"


class SafetyNetsUnset(ApiError):
    """The schema's safety nets could not be made what the strategy needs (booking_app.safety_nets)."""

    status = 503
    code = "safety_nets"
