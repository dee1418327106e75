"""One exception tree, each error carrying PostgREST's JSON body and HTTP status.

PostgREST answers every failure with `{code, message, details, hint}` (all keys always present);
`RestError.body()` is that object. Database errors are translated once, at the edge, by
`from_postgres()` with PostgREST v12's SQLSTATE -> HTTP table.
"""

from __future__ import annotations

import json
from typing import Any

# Headers telling a client it should (re)authenticate, as PostgREST sends them with its 401s.
BEARER_CHALLENGE = ("www-authenticate", "Bearer")


class RestError(Exception):
    """Root of every error simcity-rest answers with; subclasses fix `status` and `code`."""

    status = 400
    code = "PGRST000"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        hint: Any = None,
        code: str | None = None,
        status: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers

    def body(self) -> bytes:
        return json.dumps(
            {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message},
            separators=(",", ":"),
        ).encode()


class BodyTooLargeError(RestError):
    """A request body past the server's limit (PostgREST itself sets none; a gateway in front of
    it, as Supabase's, answers 413): refused before it is read in full."""

    status, code = 413, "PGRST102"



class ParseError(RestError):
    """PGRST100: the query string does not follow PostgREST's grammar."""

    status, code = 400, "PGRST100"


class InvalidBodyError(RestError):
    """PGRST102: the request body is not the JSON PostgREST expects."""

    status, code = 400, "PGRST102"


class RangeError(RestError):
    """PGRST103: an offset past the counted total, or an unusable Range header."""

    status, code = 416, "PGRST103"


class UnacceptableSchemaError(RestError):
    """PGRST106: Accept-Profile/Content-Profile names a schema that is not exposed."""

    status, code = 406, "PGRST106"


class NotAcceptableError(RestError):
    """PGRST107: no supported media type in Accept."""

    status, code = 406, "PGRST107"


class NotEmbeddedError(RestError):
    """PGRST108: a filter/order/limit names an embed that `select` does not contain."""

    status, code = 400, "PGRST108"


class SingularityError(RestError):
    """PGRST116: one object was requested (vnd.pgrst.object) but 0 or >1 rows came back."""

    status, code = 406, "PGRST116"


class NoRelationshipError(RestError):
    """PGRST200: no foreign key links the two tables."""

    status, code = 400, "PGRST200"


class AmbiguousRelationshipError(RestError):
    """PGRST201: more than one foreign key links the two tables."""

    status, code = 300, "PGRST201"


class NoFunctionError(RestError):
    """PGRST202: RPC is not provided by this stand-in."""

    status, code = 404, "PGRST202"


class UnknownColumnError(RestError):
    """PGRST204: a body key (or `columns=` entry) is not a column of the table."""

    status, code = 400, "PGRST204"


class ServerConfigError(RestError):
    """PGRST300: a JWT arrived but no secret is configured."""

    status, code = 500, "PGRST300"


class JwtError(RestError):
    """PGRST301: the bearer token is malformed, badly signed or expired."""

    status, code = 401, "PGRST301"

    def __init__(self, description: str) -> None:
        challenge = f'Bearer error="invalid_token", error_description="{description}"'
        super().__init__(description, headers=(("www-authenticate", challenge),))


class AnonymousDisabledError(RestError):
    """PGRST302: no token and no PGRST_DB_ANON_ROLE."""

    status, code = 401, "PGRST302"

    def __init__(self) -> None:
        super().__init__("Anonymous access is disabled", headers=(BEARER_CHALLENGE,))


class DatabaseError(RestError):
    """An error raised by PostgreSQL, its SQLSTATE as `code`."""


class UnavailableError(RestError):
    """PGRST001/003: the database cannot be reached, or the pool is exhausted."""

    status, code = 503, "PGRST001"


def pg_error(sqlstate: str, message: str, *, details: Any = None, hint: Any = None) -> DatabaseError:
    """A PostgreSQL-shaped error raised by simcity-rest itself (where v12 would let PostgreSQL fail)."""
    return DatabaseError(message, details=details, hint=hint, code=sqlstate, status=status_for_sqlstate(sqlstate, False))


def status_for_sqlstate(sqlstate: str, authenticated: bool) -> int:
    """PostgREST v12's SQLSTATE -> HTTP status table (Error.hs `pgErrorStatus`)."""
    exact = {
        "23503": 409, "23505": 409, "25006": 405, "P0001": 400, "42883": 404, "42P01": 404,
        "42P17": 500, "42501": 403 if authenticated else 401,
    }
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    by_class = {
        "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
        "39": 500, "3B": 500, "40": 500, "53": 503, "54": 413, "55": 500, "57": 500, "58": 500,
        "F0": 500, "HV": 500, "P0": 500, "XX": 500,
    }
    return by_class.get(sqlstate[:2], 400)


def from_postgres(exc: Exception, authenticated: bool) -> DatabaseError:
    """Translate an asyncpg PostgresError into PostgREST's error body and status."""
    sqlstate = getattr(exc, "sqlstate", None) or "XX000"
    status = status_for_sqlstate(sqlstate, authenticated)
    headers: tuple[tuple[str, str], ...] = ()
    if sqlstate == "42501" and not authenticated:
        headers = (BEARER_CHALLENGE,)
    return DatabaseError(
        getattr(exc, "message", None) or str(exc),
        details=getattr(exc, "detail", None),
        hint=getattr(exc, "hint", None),
        code=sqlstate,
        status=status,
        headers=headers,
    )
