"""The API's errors: a message and an HTTP status, as Toxiproxy 2.12.0 reports them."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API answers with `{"error": message, "status": status}`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def wrap(self, detail: str) -> "ApiError":
        """This error with a detail appended, as upstream joins `bad request body: <cause>`."""
        return ApiError(f"{self.message}: {detail}", self.status)


BAD_REQUEST_BODY = ApiError("bad request body", 400)
MISSING_FIELD = ApiError("missing required field", 400)
PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_ALREADY_EXISTS = ApiError("proxy already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
TOXIC_ALREADY_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)


def internal(message: str) -> ApiError:
    """Upstream answers 500 with the bare text of any error it did not classify (e.g. bind errors)."""
    return ApiError(message, 500)
