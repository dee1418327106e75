"""`GET /`: a Swagger 2.0 description of the exposed tables, built from the schema cache."""

from __future__ import annotations

import json

from simcity_rest.schema import SchemaCache

_TYPES = {
    "int2": ("integer", "smallint"), "int4": ("integer", "integer"), "int8": ("integer", "bigint"),
    "float4": ("number", "real"), "float8": ("number", "double precision"), "numeric": ("number", "numeric"),
    "bool": ("boolean", "boolean"), "json": ("object", "json"), "jsonb": ("object", "jsonb"),
}


def openapi_document(cache: SchemaCache, schema: str, host: str) -> bytes:
    definitions: dict[str, object] = {}
    paths: dict[str, object] = {"/": {"get": {"produces": ["application/openapi+json", "application/json"],
                                              "responses": {"200": {"description": "OK"}}, "summary": "OpenAPI description (this document)", "tags": ["Introspection"]}}}
    for (table_schema, name), table in sorted(cache.tables.items()):
        if table_schema != schema:
            continue
        props = {}
        for col in table.columns.values():
            kind, fmt = _TYPES.get(col.type_name, ("string", col.sql_type))
            props[col.name] = {"format": fmt, "type": kind}
        required = [c.name for c in table.columns.values() if not c.nullable and not c.has_default]
        definitions[name] = {"properties": props, "type": "object", **({"required": required} if required else {})}
        ref = {"$ref": f"#/definitions/{name}"}
        ok = {"200": {"description": "OK", "schema": {"items": ref, "type": "array"}}, "206": {"description": "Partial Content"}}
        paths[f"/{name}"] = {
            "get": {"tags": [name], "responses": ok},
            "post": {"tags": [name], "responses": {"201": {"description": "Created"}}},
            "patch": {"tags": [name], "responses": {"204": {"description": "No Content"}}},
            "delete": {"tags": [name], "responses": {"204": {"description": "No Content"}}},
        }
    doc = {
        "swagger": "2.0",
        "info": {"title": "simcity-rest (PostgREST v12 stand-in)", "version": "12.2.0"},
        "host": host,
        "basePath": "/",
        "schemes": ["http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json"],
        "produces": ["application/json", "application/vnd.pgrst.object+json"],
        "paths": paths,
        "definitions": definitions,
    }
    return json.dumps(doc, separators=(",", ":")).encode()
