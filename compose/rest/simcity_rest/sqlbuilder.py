"""The AST + schema cache -> ONE parameterised SQL statement per request.

Rules that make this safe and the SC-1 snapshot untearable:
- every identifier comes from the schema cache and is quoted; every request value is a bind
  parameter (`$n::text`, cast to the column's catalog type inside SQL); nothing else is pasted;
- a read, embeds included, is a single SELECT whose one row carries the whole JSON body (built by
  json_agg / row_to_json subqueries), plus the page size and the optional exact count;
- the SQL text depends only on the request's *shape*, so asyncpg's per-connection prepared
  statement cache serves repeated requests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from simcity_rest.errors import NotEmbeddedError, RestError, UnknownColumnError, pg_error
from simcity_rest.nodes import (
    FTS_OPS, SIMPLE_OPS, TEXT_OPS, TYPED_OPS, ColumnItem, Condition, EmbedItem, Field, Filter, Logic,
    OrderTerm, Path, Query, SelectItem, StarItem,
)
from simcity_rest.schema import Relationship, SchemaCache, Table, quote_ident

q = quote_ident


@dataclass(frozen=True)
class Statement:
    """SQL returning one row (total int8 | NULL, n int8, body text | NULL) and its bind values."""

    sql: str
    params: tuple[Any, ...]


@dataclass
class _Node:
    table: Table
    alias: str
    items: tuple[SelectItem, ...]
    rel: Relationship | None = None
    inner: bool = False
    children: dict[str, "_Node"] = field(default_factory=dict)  # by label: the alias if any, else the name


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, sql_type: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{sql_type}"


class Builder:
    """Builds the statement of one request; single use."""

    def __init__(self, cache: SchemaCache, table: Table, query: Query) -> None:
        self.cache = cache
        self.query = query
        self.params = _Params()
        self._aliases = itertools.count(1)
        self.root = self._plan(table, "t0", query.select, None, False)
        self._check_paths()

    # -- planning -------------------------------------------------------------------------------

    def _plan(self, table: Table, alias: str, items: tuple[SelectItem, ...], rel: Relationship | None, inner: bool) -> _Node:
        node = _Node(table, alias, items, rel, inner)
        for item in items:
            if isinstance(item, EmbedItem):
                relationship = self.cache.relationship(table, item.name, item.hint)
                child = self._plan(relationship.target, f"t{next(self._aliases)}", item.items, relationship, item.inner)
                node.children[item.label] = child
        return node

    def _node_at(self, path: Path) -> _Node:
        node = self.root
        for name in path:
            child = node.children.get(name)
            if child is None:
                raise NotEmbeddedError(
                    f"'{name}' is not an embedded resource in this request",
                    hint=f"Verify that '{name}' is included in the 'select' query parameter.",
                )
            node = child
        return node

    def _check_paths(self) -> None:
        for mapping in (self.query.conditions, self.query.order, self.query.limit, self.query.offset):
            for path in mapping:
                self._node_at(path)

    # -- expressions ----------------------------------------------------------------------------

    def _column(self, node: _Node, fld: Field) -> tuple[str, str]:
        """SQL for a field of a node and the SQL type its comparison values are cast to."""
        column = node.table.columns.get(fld.name)
        if column is None:
            raise pg_error("42703", f"column {node.table.name}.{fld.name} does not exist")
        expr = f"{node.alias}.{q(column.name)}"
        sql_type = column.sql_type
        for step in fld.json_path:
            key = self.params.add(int(step.key), "int4") if step.is_index else self.params.add(step.key, "text")
            expr = f"({expr} {step.arrow} {key})"
            sql_type = "text" if step.arrow == "->>" else column.sql_type
        return expr, sql_type

    def _condition(self, node: _Node, cond: Condition) -> str:
        if isinstance(cond, Logic):
            joiner = " AND " if cond.op == "and" else " OR "
            inner = joiner.join(self._condition(node, c) for c in cond.children)
            return f"NOT ({inner})" if cond.negate else f"({inner})"
        sql = self._filter(node, cond)
        return f"NOT ({sql})" if cond.negate else sql

    def _filter(self, node: _Node, f: Filter) -> str:
        lhs, sql_type = self._column(node, f.field)
        p = self.params.add
        if f.op in SIMPLE_OPS or f.op in TEXT_OPS:
            op = SIMPLE_OPS.get(f.op) or TEXT_OPS[f.op]
            text_rhs = f.op in TEXT_OPS
            if f.quantifier:
                arr = p(list(f.value), "text[]") + ("" if text_rhs else f"::{sql_type}[]")
                return f"{lhs} {op} {f.quantifier.upper()}({arr})"
            return f"{lhs} {op} " + (p(f.value, "text") if text_rhs else f"{p(f.value, 'text')}::{sql_type}")
        if f.op == "in":
            return f"{lhs} = ANY({p(list(f.value), 'text[]')}::{sql_type}[])"
        if f.op == "is":
            return f"{lhs} IS {str(f.value).upper()}"  # one of four fixed words, checked by the parser
        if f.op == "isdistinct":
            return f"{lhs} IS DISTINCT FROM {p(f.value, 'text')}::{sql_type}"
        if f.op in TYPED_OPS:
            return f"{lhs} {TYPED_OPS[f.op]} {p(f.value, 'text')}::{sql_type}"
        if f.op in FTS_OPS:
            fn = f"pg_catalog.{FTS_OPS[f.op]}"
            if f.language is not None:
                return f"{lhs} @@ {fn}({p(f.language, 'text')}::pg_catalog.regconfig, {p(f.value, 'text')})"
            return f"{lhs} @@ {fn}({p(f.value, 'text')})"
        raise pg_error("42883", f"operator does not exist: {f.op}")  # unreachable: parser checks ops

    def _where(self, node: _Node, extra: list[str]) -> list[str]:
        """Join condition(s) + the node's filters + EXISTS for its !inner embeds."""
        parts = list(extra)
        path = self._path_of(node)
        for cond in self.query.conditions.get(path, []):
            parts.append(self._condition(node, cond))
        for child in node.children.values():
            if child.inner:
                child_where = self._where(child, self._join(node, child))
                parts.append(f"EXISTS (SELECT 1 FROM {child.table.sql} {child.alias} WHERE {' AND '.join(child_where)})")
        return parts

    def _path_of(self, target: _Node) -> Path:
        def walk(node: _Node, path: Path) -> Path | None:
            if node is target:
                return path
            for label, child in node.children.items():
                found = walk(child, path + (label,))
                if found is not None:
                    return found
            return None

        path = walk(self.root, ())
        assert path is not None
        return path

    @staticmethod
    def _join(parent: _Node, child: _Node) -> list[str]:
        assert child.rel is not None
        return [
            f"{child.alias}.{q(tc)} = {parent.alias}.{q(sc)}"
            for sc, tc in zip(child.rel.source_columns, child.rel.target_columns)
        ]

    def _order(self, node: _Node) -> str:
        terms: tuple[OrderTerm, ...] = self._lookup(self.query.order, node) or ()
        if not terms:
            return ""
        sql = []
        for term in terms:
            if term.relation is not None:
                expr = self._related_order(node, term)
            else:
                expr, _ = self._column(node, term.field)
            nulls = {"first": " NULLS FIRST", "last": " NULLS LAST", None: ""}[term.nulls]
            sql.append(f"{expr} {'DESC' if term.desc else 'ASC'}{nulls}")
        return " ORDER BY " + ", ".join(sql)

    def _related_order(self, node: _Node, term: OrderTerm) -> str:
        """`order=rel(col)`: the to-one embed's column as a scalar subquery (PGRST108/118 otherwise)."""
        assert term.relation is not None
        child = node.children.get(term.relation)
        if child is None:
            raise NotEmbeddedError(
                f"'{term.relation}' is not an embedded resource in this request",
                hint=f"Verify that '{term.relation}' is included in the 'select' query parameter.",
            )
        assert child.rel is not None
        if not child.rel.to_one:
            raise RestError(
                f"A related order on '{term.relation}' is not possible",
                details=f"'{node.table.name}' and '{term.relation}' do not form a many-to-one or one-to-one relationship",
                code="PGRST118", status=400,
            )
        expr, _ = self._column(child, term.field)
        join = " AND ".join(self._join(node, child))
        return f"(SELECT {expr} FROM {child.table.sql} {child.alias} WHERE {join})"

    def _lookup(self, mapping: dict[Path, Any], node: _Node) -> Any:
        return mapping.get(self._path_of(node))

    def _select_list(self, node: _Node) -> str:
        cols: list[str] = []
        for item in node.items:
            if isinstance(item, StarItem):
                cols.extend(f"{node.alias}.{q(c)} AS {q(c)}" for c in node.table.columns)
            elif isinstance(item, ColumnItem):
                expr, _ = self._column(node, item.field)
                if item.cast is not None:
                    expr = f"CAST({expr} AS {self.cache.cast_type(item.cast)})"
                cols.append(f"{expr} AS {q(item.label)}")
            else:
                child = node.children[item.label]
                cols.append(f"{self._embed(node, child)} AS {q(item.label)}")
        # A select of embeds only still needs a target list entry per row.
        return ", ".join(cols) if cols else ""

    def _embed(self, parent: _Node, child: _Node) -> str:
        where = " AND ".join(self._where(child, self._join(parent, child)))
        page = ""
        limit = self._lookup(self.query.limit, child)
        offset = self._lookup(self.query.offset, child)
        if limit is not None:
            page += f" LIMIT {self.params.add(limit, 'int8')}"
        if offset is not None:
            page += f" OFFSET {self.params.add(offset, 'int8')}"
        inner = f"SELECT {self._select_list(child)} FROM {child.table.sql} {child.alias} WHERE {where}{self._order(child)}{page}"
        sub = f"_{child.alias}"
        assert child.rel is not None
        if child.rel.to_one:
            return f"(SELECT pg_catalog.row_to_json({sub}) FROM ({inner}) {sub})"
        return f"(SELECT coalesce(pg_catalog.json_agg({sub}), '[]') FROM ({inner}) {sub})"

    # -- statements -----------------------------------------------------------------------------

    @staticmethod
    def _wrap(total_sql: str, page_sql: str, singular: bool) -> str:
        body = "(pg_catalog.json_agg(_r) ->> 0)" if singular else "coalesce(pg_catalog.json_agg(_r), '[]')::text"
        return f"SELECT {total_sql} AS total, pg_catalog.count(_r) AS n, {body} AS body FROM ({page_sql}) _r"

    def read(self, *, limit: int | None, offset: int, count: bool, singular: bool) -> Statement:
        """GET/HEAD: the page, its size and (with count) the total, in one SELECT."""
        root = self.root
        where = self._where(root, [])
        from_where = f"FROM {root.table.sql} {root.alias}" + (f" WHERE {' AND '.join(where)}" if where else "")
        select = self._select_list(root)
        order = self._order(root)
        page = (
            f"SELECT {select} {from_where}{order} "
            f"LIMIT {self.params.add(limit, 'int8')} OFFSET {self.params.add(offset, 'int8')}"
        )
        total = f"(SELECT pg_catalog.count(*) {from_where})" if count else "NULL::int8"
        return Statement(self._wrap(total, page, singular), tuple(self.params.values))

    def _body_columns(self, keys: list[str]) -> list[str]:
        table = self.root.table
        cols = list(self.query.columns) if self.query.columns is not None else keys
        for col in cols:
            if col not in table.columns:
                raise UnknownColumnError(f"Could not find the '{col}' column of '{table.name}' in the schema cache")
        return cols

    def _mutation(self, dml: str, returning: bool, singular: bool) -> Statement:
        if returning:
            page = f"SELECT {self._select_list(self.root) or 'NULL'} FROM _m t0"
            sql = f"WITH _m AS ({dml}) " + self._wrap("NULL::int8", page, singular)
        else:
            sql = f"WITH _m AS ({dml}) SELECT NULL::int8 AS total, pg_catalog.count(*) AS n, NULL::text AS body FROM _m"
        return Statement(sql, tuple(self.params.values))

    def insert(
        self, rows_json: str, keys: list[str], *, returning: bool, singular: bool,
        resolution: str | None = None,
    ) -> Statement:
        """POST: json_populate_recordset over the body; missing keys are NULL, absent columns default."""
        table = self.root.table
        cols = self._body_columns(keys)
        col_sql = ", ".join(q(c) for c in cols)
        body = self.params.add(rows_json, "text")
        # No keys at all (`{}`): a zero-column SELECT makes every column take its default.
        dml = (
            f"INSERT INTO {table.sql} AS t0 " + (f"({col_sql}) " if cols else "") + f"SELECT {col_sql} "
            f"FROM pg_catalog.json_populate_recordset(NULL::{table.sql}, {body}::json) _b"
        )
        if resolution is not None:
            target = list(self.query.on_conflict or table.primary_key)
            for col in target:
                if col not in table.columns:
                    raise pg_error("42703", f"column {table.name}.{col} does not exist")
            conflict = ", ".join(q(c) for c in target)
            updates = [c for c in cols if c not in target]
            if resolution == "merge-duplicates" and updates:
                sets = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in updates)
                dml += f" ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
            else:
                dml += f" ON CONFLICT ({conflict}) DO NOTHING"
        dml += " RETURNING t0.*" if returning else " RETURNING 1"
        return self._mutation(dml, returning, singular)

    def update(self, row_json: str, keys: list[str], *, returning: bool, singular: bool) -> Statement:
        table = self.root.table
        cols = self._body_columns(keys)
        body = self.params.add(row_json, "text")
        sets = ", ".join(f"{q(c)} = _b.{q(c)}" for c in cols)
        where = self._where(self.root, [])
        dml = (
            f"UPDATE {table.sql} AS t0 SET {sets} "
            f"FROM (SELECT * FROM pg_catalog.json_populate_record(NULL::{table.sql}, {body}::json)) _b"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + (" RETURNING t0.*" if returning else " RETURNING 1")
        )
        return self._mutation(dml, returning, singular)

    def delete(self, *, returning: bool, singular: bool) -> Statement:
        table = self.root.table
        where = self._where(self.root, [])
        dml = (
            f"DELETE FROM {table.sql} AS t0"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + (" RETURNING t0.*" if returning else " RETURNING 1")
        )
        return self._mutation(dml, returning, singular)
