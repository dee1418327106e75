"""simcity-rest: a PostgREST v12 stand-in (tables only) for SimCity's local stack and tests.

Modules, one job each: `config` (PGRST_* env), `schema` (catalog cache), `querystring` (query string
-> `nodes` AST), `sqlbuilder` (AST -> one SQL statement), `auth` (JWT -> role), `errors` (PostgREST
error bodies), `database` (pool, per-request transaction, reloads), `app` (ASGI), `spawn` (child
process for tests).
"""

from simcity_rest.app import RestApp
from simcity_rest.config import Config
from simcity_rest.errors import RestError

__all__ = ["Config", "RestApp", "RestError"]
