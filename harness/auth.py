"""Supabase-style keys: HS256 JWTs with a `role` claim, signed with the stack's JWT secret.

The service-role key comes from the environment only (SIMCITY_SERVICE_KEY, or minted from
SIMCITY_JWT_SECRET); it is never taken from a flag and never printed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

import jwt

from harness.errors import UsageError

SERVICE_KEY_ENV = "SIMCITY_SERVICE_KEY"
JWT_SECRET_ENV = "SIMCITY_JWT_SECRET"


def new_jwt_secret() -> str:
    """A fresh secret long enough for PostgREST (it requires at least 32 characters)."""
    return secrets.token_urlsafe(48)


def mint_key(jwt_secret: str, role: str, **claims: object) -> str:
    """A Supabase API key: an HS256 JWT whose `role` claim names the database role."""
    return jwt.encode({"role": role, "iss": "simcity", **claims}, jwt_secret, algorithm="HS256")


def service_key_from_env(env: Mapping[str, str] | None = None) -> str:
    """The service-role key from SIMCITY_SERVICE_KEY, else minted from SIMCITY_JWT_SECRET."""
    env = os.environ if env is None else env
    if env.get(SERVICE_KEY_ENV):
        key = env[SERVICE_KEY_ENV]
        if any(c.isspace() or not c.isprintable() for c in key):
            # It goes into a header as it is: say so now, not as an unreachable REST later.
            raise UsageError(f"{SERVICE_KEY_ENV} holds a space, line break or control character: a key is one token")
        return key
    if env.get(JWT_SECRET_ENV):
        return mint_key(env[JWT_SECRET_ENV], "service_role")
    raise UsageError(f"no service-role key: set {SERVICE_KEY_ENV} (or {JWT_SECRET_ENV} to mint one)")
