"""The schema cache: tables, columns, keys and foreign keys of the exposed schemas, from pg_catalog.

Loaded once at start and again on `NOTIFY pgrst, 'reload schema'` or SIGUSR1, like PostgREST's.
Only pg_catalog is read: information_schema hides objects the (rights-less) authenticator role has
no privilege on, whereas PostgREST lists every table and lets PostgreSQL refuse at query time.
Nothing is hard-coded: every identifier the SQL builder emits comes from here, quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from simcity_rest.errors import AmbiguousRelationshipError, NoRelationshipError, pg_error


def quote_ident(name: str) -> str:
    """A PostgreSQL quoted identifier (doubling inner quotes), for names taken from the catalog."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # format_type() output: already valid SQL, produced by PostgreSQL itself
    type_name: str  # pg_type.typname, e.g. uuid, text, jsonb
    nullable: bool
    has_default: bool

    @property
    def is_json(self) -> bool:
        return self.type_name in ("json", "jsonb")


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str  # pg_class.relkind: r table, v view, m matview, f foreign, p partitioned
    columns: dict[str, Column]
    primary_key: tuple[str, ...]

    @property
    def sql(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: tuple[str, str]  # (schema, table) holding the key
    columns: tuple[str, ...]
    ref_table: tuple[str, str]
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Relationship:
    """How `target` embeds into `source`: target.target_columns[i] = source.source_columns[i]."""

    cardinality: Literal["m2o", "o2m"]
    source: Table
    target: Table
    fk: ForeignKey
    source_columns: tuple[str, ...]
    target_columns: tuple[str, ...]

    @property
    def to_one(self) -> bool:
        return self.cardinality == "m2o"

    def describe(self) -> dict[str, str]:
        """The entry PostgREST lists in PGRST201's details."""
        kind = "many-to-one" if self.to_one else "one-to-many"
        cols = ", ".join(self.fk.columns)
        refs = ", ".join(self.fk.ref_columns)
        return {
            "cardinality": kind,
            "embedding": f"{self.source.name} with {self.target.name}",
            "relationship": f"{self.fk.name} using {self.fk.table[1]}({cols}) and {self.fk.ref_table[1]}({refs})",
        }


# SQL spellings PostgREST users write in `col::type` that are not pg_type names.
_TYPE_ALIASES = {
    "integer": "int4", "int": "int4", "smallint": "int2", "bigint": "int8", "boolean": "bool",
    "real": "float4", "double precision": "float8", "float": "float8", "decimal": "numeric",
    "character varying": "varchar", "character": "bpchar", "char": "bpchar",
    "timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp",
    "time with time zone": "timetz", "time without time zone": "time",
}

_TABLES_SQL = """
SELECT n.nspname, c.relname, c.relkind::text,
       coalesce((SELECT array_agg(a.attname::text ORDER BY k.i)
                   FROM pg_catalog.pg_constraint p
                        CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY k(num, i)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.num
                  WHERE p.conrelid = c.oid AND p.contype = 'p'), '{}') AS pk
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
"""

_COLUMNS_SQL = """
SELECT n.nspname, c.relname, a.attname, pg_catalog.format_type(a.atttypid, NULL), t.typname::text,
       NOT a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY n.nspname, c.relname, a.attnum
"""

_FKS_SQL = """
SELECT k.conname, n1.nspname, c1.relname, n2.nspname, c2.relname,
       array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(num, i)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i),
       array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(num, i)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.i)
  FROM pg_catalog.pg_constraint k
  JOIN pg_catalog.pg_class c1 ON c1.oid = k.conrelid JOIN pg_catalog.pg_namespace n1 ON n1.oid = c1.relnamespace
  JOIN pg_catalog.pg_class c2 ON c2.oid = k.confrelid JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace
 WHERE k.contype = 'f' AND n1.nspname = ANY($1::text[]) AND n2.nspname = ANY($1::text[])
 ORDER BY k.conname
"""

_TYPES_SQL = """
SELECT t.typname::text FROM pg_catalog.pg_type t
 WHERE t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype IN ('b', 'd', 'e', 'r', 'm')
   AND t.typname NOT LIKE '\\_%'
"""


@dataclass(frozen=True)
class SchemaCache:
    schemas: tuple[str, ...]
    tables: dict[tuple[str, str], Table]
    foreign_keys: tuple[ForeignKey, ...]
    cast_types: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    async def load(cls, conn: Any, schemas: tuple[str, ...]) -> "SchemaCache":
        """Read the catalog over an asyncpg connection (one REPEATABLE READ snapshot)."""
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            table_rows = await conn.fetch(_TABLES_SQL, list(schemas))
            column_rows = await conn.fetch(_COLUMNS_SQL, list(schemas))
            fk_rows = await conn.fetch(_FKS_SQL, list(schemas))
            type_rows = await conn.fetch(_TYPES_SQL)
        columns: dict[tuple[str, str], dict[str, Column]] = {}
        for schema, table, name, sql_type, type_name, nullable, has_default in column_rows:
            columns.setdefault((schema, table), {})[name] = Column(name, sql_type, type_name, nullable, has_default)
        tables = {
            (schema, name): Table(schema, name, kind, columns.get((schema, name), {}), tuple(pk))
            for schema, name, kind, pk in table_rows
        }
        fks = tuple(
            ForeignKey(name, (s1, t1), tuple(cols), (s2, t2), tuple(refs))
            for name, s1, t1, s2, t2, cols, refs in fk_rows
        )
        return cls(tuple(schemas), tables, fks, frozenset(r[0] for r in type_rows))

    def table(self, schema: str, name: str) -> Table:
        """The table or view, else PostgreSQL's v12 error for an unknown relation (42P01 -> 404)."""
        found = self.tables.get((schema, name))
        if found is None:
            raise pg_error("42P01", f'relation "{schema}.{name}" does not exist')
        return found

    def cast_type(self, name: str) -> str:
        """The SQL for `::name`, only for a pg_catalog type that exists (never the request's text)."""
        canonical = _TYPE_ALIASES.get(name.lower(), name.lower())
        if canonical not in self.cast_types:
            raise pg_error("42704", f'type "{name}" does not exist')
        return f"pg_catalog.{quote_ident(canonical)}"

    def relationships(self, source: Table, target_name: str) -> list[Relationship]:
        """Every foreign-key path from `source` to a relation named `target_name` (or via an FK column)."""
        found: list[Relationship] = []
        src = (source.schema, source.name)
        for fk in self.foreign_keys:
            # many-to-one: source holds the key; embed by the referenced table's name or by the FK column.
            if fk.table == src and (fk.ref_table[1] == target_name or fk.columns == (target_name,)):
                target = self.tables.get(fk.ref_table)
                if target is not None:
                    found.append(Relationship("m2o", source, target, fk, fk.columns, fk.ref_columns))
            # one-to-many: the target holds a key to source.
            if fk.ref_table == src and fk.table[1] == target_name:
                target = self.tables.get(fk.table)
                if target is not None:
                    found.append(Relationship("o2m", source, target, fk, fk.ref_columns, fk.columns))
        return found

    def relationship(self, source: Table, target_name: str, hint: str | None) -> Relationship:
        """The one relationship an embed means, else PGRST200 (none) / PGRST201 (ambiguous)."""
        candidates = self.relationships(source, target_name)
        if hint is not None:
            candidates = [
                r for r in candidates
                if hint == r.fk.name or hint in r.fk.columns or hint in r.fk.ref_columns
                or hint == r.target.name
            ]
        if not candidates:
            using = f"' using the hint '{hint}" if hint else ""
            raise NoRelationshipError(
                f"Could not find a relationship between '{source.name}' and '{target_name}' in the schema cache",
                details=f"Searched for a foreign key relationship between '{source.name}' and '{target_name}"
                f"{using}' in the schema '{source.schema}', but no matches were found.",
            )
        if len(candidates) > 1:
            raise AmbiguousRelationshipError(
                f"Could not embed because more than one relationship was found for '{source.name}' and '{target_name}'",
                details=[r.describe() for r in candidates],
                hint=f"Try changing '{target_name}' to one of the following: "
                + ", ".join(f"'{target_name}!{r.fk.name}'" for r in candidates)
                + ". Find the desired relationship in the 'details' key.",
            )
        return candidates[0]
