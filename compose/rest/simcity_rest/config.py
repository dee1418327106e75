"""simcity-rest's settings, read from PostgREST's own environment variables."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass

from simcity_rest.errors import RestError


class ConfigError(RestError):
    """A PGRST_* variable holds a value PostgREST would refuse."""

    status, code = 500, "PGRST000"


@dataclass(frozen=True)
class Config:
    db_uri: str = "postgresql://"
    db_schemas: tuple[str, ...] = ("public",)
    db_anon_role: str | None = None
    jwt_secret: bytes | None = None
    jwt_aud: str | None = None
    server_host: str = "0.0.0.0"
    server_port: int = 3000
    db_max_rows: int | None = None
    db_pool: int = 10
    db_channel: str = "pgrst"
    db_channel_enabled: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        secret_text = get("PGRST_JWT_SECRET")
        secret: bytes | None = None
        if secret_text is not None:
            if (get("PGRST_JWT_SECRET_IS_BASE64") or "false").lower() in ("true", "1", "yes", "on"):
                secret = base64.b64decode(secret_text)
            else:
                secret = secret_text.encode()
            # PostgREST refuses HS256 secrets shorter than 32 characters at startup.
            if len(secret) < 32:
                raise ConfigError("The JWT secret must be at least 32 characters long.")
        host = get("PGRST_SERVER_HOST") or "!4"
        # PostgREST's special host names: !4 = any IPv4, !6 = any IPv6, * = any.
        host = {"!4": "0.0.0.0", "*4": "0.0.0.0", "!6": "::", "*6": "::", "*": "0.0.0.0"}.get(host, host)
        max_rows = get("PGRST_DB_MAX_ROWS")
        schemas = tuple(s.strip() for s in (get("PGRST_DB_SCHEMAS") or get("PGRST_DB_SCHEMA") or "public").split(","))
        return cls(
            db_uri=get("PGRST_DB_URI") or "postgresql://",
            db_schemas=tuple(s for s in schemas if s),
            db_anon_role=get("PGRST_DB_ANON_ROLE"),
            jwt_secret=secret,
            jwt_aud=get("PGRST_JWT_AUD"),
            server_host=host,
            server_port=int(get("PGRST_SERVER_PORT") or 3000),
            db_max_rows=int(max_rows) if max_rows else None,
            db_pool=int(get("PGRST_DB_POOL") or 10),
            db_channel=get("PGRST_DB_CHANNEL") or "pgrst",
            db_channel_enabled=(get("PGRST_DB_CHANNEL_ENABLED") or "true").lower() in ("true", "1", "yes", "on"),
        )
