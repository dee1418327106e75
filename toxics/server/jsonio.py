"""JSON in and out the way Go's encoding/json does it, so clients see the same bytes and errors.

Go decodes only the first JSON value of a body (trailing bytes are ignored), matches object keys to
struct fields case-insensitively (the last matching key wins), and encodes compactly with `<`, `>`
and `&` escaped.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

from toxics.server.errors import BAD_REQUEST_BODY, ApiError

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def encode(value: Any) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text.encode()


def go_number(value: float) -> float | int:
    """Go prints an integral float32 without a fraction: toxicity 1 is `1`, not `1.0`."""
    return int(value) if float(value).is_integer() else value


def float32(value: float) -> float:
    """`value` as Go's float32 holds and prints it: 0.123456789 becomes 0.12345679."""
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if struct.pack("f", shortest) == struct.pack("f", single):
            return shortest
    return single


def decode(body: bytes) -> Any:
    """The first JSON value of `body`, or ApiError 400 `bad request body: ...`."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise BAD_REQUEST_BODY.wrap(f"invalid UTF-8 at byte {exc.start}") from None
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if start == len(text):
        raise BAD_REQUEST_BODY.wrap("EOF")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nesting too deep"
        raise BAD_REQUEST_BODY.wrap(f"invalid JSON: {detail}") from None
    return value


def go_type(value: Any) -> str:
    """The JSON kind of a value, as Go names it in `cannot unmarshal <kind>` errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def fields(value: Any, target: str) -> dict[str, Any]:
    """An object's keys folded to lower case (Go's struct-field matching), else a 400."""
    if not isinstance(value, Mapping):
        raise BAD_REQUEST_BODY.wrap(f"json: cannot unmarshal {go_type(value)} into Go value of type {target}")
    return {str(key).lower(): item for key, item in value.items()}


def typed(given: Mapping[str, Any], key: str, kind: type, target: str) -> Any:
    """`given[key]` if present, not null and of `kind`; None if absent or null (Go keeps the default)."""
    value = given.get(key)
    if value is None:
        return None
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        go_kind = {str: "string", bool: "bool", float: "float32"}[kind]
        raise BAD_REQUEST_BODY.wrap(
            f"json: cannot unmarshal {go_type(value)} into Go struct field {target}.{key} of type {go_kind}"
        )
    if kind is str:
        # Go's decoder turns a lone UTF-16 surrogate ("\ud800") into U+FFFD; kept as it is, such a
        # name could never be written back out and every later listing would fail.
        value = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


def error_body(error: ApiError) -> bytes:
    return encode({"error": error.message, "status": error.status})


__all__ = ["decode", "encode", "error_body", "fields", "float32", "go_number", "go_type", "typed"]
