"""The typed AST of a PostgREST query string: what the parser produces and the SQL builder reads.

Every value here is request text; none of it is SQL. The builder matches names against the schema
cache and turns values into bind parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

Path = tuple[str, ...]  # embed path by label (alias or name); () is the root table


@dataclass(frozen=True)
class JsonStep:
    arrow: Literal["->", "->>"]
    key: str

    @property
    def is_index(self) -> bool:
        return self.key.lstrip("-").isdigit()


@dataclass(frozen=True)
class Field:
    name: str
    json_path: tuple[JsonStep, ...] = ()

    @property
    def label(self) -> str:
        """The JSON key PostgREST gives a selected field: the last JSON key, else the column name."""
        return self.json_path[-1].key if self.json_path else self.name


@dataclass(frozen=True)
class StarItem:
    pass


@dataclass(frozen=True)
class ColumnItem:
    field: Field
    alias: str | None = None
    cast: str | None = None

    @property
    def label(self) -> str:
        return self.alias or self.field.label


@dataclass(frozen=True)
class EmbedItem:
    name: str
    items: tuple["SelectItem", ...]
    alias: str | None = None
    hint: str | None = None
    inner: bool = False

    @property
    def label(self) -> str:
        return self.alias or self.name


SelectItem = Union[StarItem, ColumnItem, EmbedItem]

SIMPLE_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
TEXT_OPS = {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}
TYPED_OPS = {"cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}
FTS_OPS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery", "wfts": "websearch_to_tsquery"}
OTHER_OPS = {"in", "is", "isdistinct"}
ALL_OPS = frozenset(SIMPLE_OPS) | frozenset(TEXT_OPS) | frozenset(TYPED_OPS) | frozenset(FTS_OPS) | OTHER_OPS
IS_VALUES = ("null", "true", "false", "unknown")


@dataclass(frozen=True)
class Filter:
    field: Field
    op: str
    value: str | tuple[str, ...]
    negate: bool = False
    quantifier: Literal["any", "all"] | None = None
    language: str | None = None  # fts(english)


@dataclass(frozen=True)
class Logic:
    op: Literal["and", "or"]
    children: tuple["Condition", ...]
    negate: bool = False


Condition = Union[Filter, Logic]


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    desc: bool = False
    nulls: Literal["first", "last"] | None = None
    relation: str | None = None  # `order=vendors(name)`: a column of a to-one embed


@dataclass
class Query:
    """Everything the query string asks for, keyed by embed path."""

    select: tuple[SelectItem, ...] = (StarItem(),)
    conditions: dict[Path, list[Condition]] = field(default_factory=dict)
    order: dict[Path, tuple[OrderTerm, ...]] = field(default_factory=dict)
    limit: dict[Path, int] = field(default_factory=dict)
    offset: dict[Path, int] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
