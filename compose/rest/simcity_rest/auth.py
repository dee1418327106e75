"""PostgREST's authentication: the role (and claims) of a request from its `Authorization` header.

HS256/384/512 JWTs signed with PGRST_JWT_SECRET; the `role` claim picks the database role, no token
(or no role claim) means PGRST_DB_ANON_ROLE. exp/nbf/iat get PostgREST's 30 s clock skew. Error
texts are PostgREST v12's, since clients (and SimCity's own checks) match on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jwt

from simcity_rest.errors import AnonymousDisabledError, JwtError, ServerConfigError

CLOCK_SKEW_S = 30
_ALGORITHMS = ["HS256", "HS384", "HS512"]


@dataclass(frozen=True)
class Identity:
    role: str
    claims_json: str  # what request.jwt.claims is set to
    # The JWT carried a role claim (PostgREST's `authed`): a 42501 is then 403, else 401.
    authenticated: bool


class Authenticator:
    def __init__(self, secret: bytes | None, anon_role: str | None, audience: str | None = None) -> None:
        self.secret = secret
        self.anon_role = anon_role
        self.audience = audience
        # Tokens repeat (service keys, a client's session): cache verified claims by token text.
        self._cache: dict[str, tuple[dict[str, object], float | None]] = {}

    def identify(self, authorization: str | None, now: float) -> Identity:
        token = _bearer(authorization)
        if token is None:
            if self.anon_role is None:
                raise AnonymousDisabledError()
            return Identity(self.anon_role, json.dumps({"role": self.anon_role}), False)
        claims = self._verify(token, now)
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            if self.anon_role is None:
                raise AnonymousDisabledError()
            return Identity(self.anon_role, json.dumps({**claims, "role": self.anon_role}), False)
        return Identity(role, json.dumps(claims), True)

    def _verify(self, token: str, now: float) -> dict[str, object]:
        cached = self._cache.get(token)
        if cached is not None:
            claims, exp = cached
            if exp is None or now <= exp + CLOCK_SKEW_S:
                return claims
            raise JwtError("JWT expired")
        if self.secret is None:
            raise ServerConfigError("Server lacks JWT secret")
        parts = token.split(".")
        if len(parts) != 3:
            raise JwtError(f"JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got {len(parts)})")
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=_ALGORITHMS, leeway=CLOCK_SKEW_S,
                audience=self.audience,
                options={"verify_aud": self.audience is not None, "require": []},
            )
        except jwt.ExpiredSignatureError:
            raise JwtError("JWT expired") from None
        except jwt.ImmatureSignatureError as exc:
            raise JwtError("JWT issued at future" if "iat" in str(exc) else "JWT not yet valid") from None
        except jwt.InvalidAudienceError:
            raise JwtError("JWT not in audience") from None
        except jwt.InvalidSignatureError:
            raise JwtError("JWSError JWSInvalidSignature") from None
        except jwt.InvalidAlgorithmError:
            raise JwtError("JWSError (JWSInvalidAlgorithm)") from None  # unusual algorithm
        except jwt.PyJWTError:
            raise JwtError("JWSError (CompactDecodeError Invalid base64url encoding)") from None
        if not isinstance(claims, dict):
            raise JwtError("Parsing claims failed")
        for claim in ("exp", "nbf", "iat"):
            value = claims.get(claim)
            # A string the decoder coerced would pass once, then never expire from the cache.
            if claim in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise JwtError(f"The JWT '{claim}' claim must be a number")
        exp_claim = claims.get("exp")
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[token] = (claims, float(exp_claim) if isinstance(exp_claim, (int, float)) else None)
        return claims


def _bearer(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <t>` (scheme case-insensitive); other schemes are ignored."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
