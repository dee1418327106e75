"""PostgREST's query-string grammar -> the typed AST in `nodes`.

Failures raise ParseError (PGRST100) with PostgREST's message shape:
`"failed to parse <what> (<text>)" (line 1, column N)`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from simcity_rest.errors import ParseError
from simcity_rest.nodes import (
    ALL_OPS, FTS_OPS, IS_VALUES, SIMPLE_OPS, TEXT_OPS, ColumnItem, Condition, EmbedItem, Field, Filter,
    JsonStep, Logic, OrderTerm, Path, Query, SelectItem, StarItem,
)

# PostgREST's pFieldName: letters, digits, `_`, ` `, `$`, dash-joined; or a double-quoted name.
_NAME = re.compile(r"[\w $]+(?:-(?!>)[\w $]+)*")
_OPERATOR = re.compile(r"([a-z]+)(?:\((any|all)\)|\(([\w ]*)\))?")
_RESERVED_PER_PATH = ("order", "limit", "offset")


def _fail(what: str, text: str, column: int, details: str | None = None) -> ParseError:
    return ParseError(f'"failed to parse {what} ({text})" (line 1, column {column})', details=details)


def _split_top(text: str, sep: str = ",") -> list[tuple[int, str]]:
    """Split at `sep` outside parentheses and double quotes; keep each part's start offset."""
    parts: list[tuple[int, str]] = []
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _fail("parameter", text, i + 1, 'unexpected ")"')
        elif ch == sep and depth == 0:
            parts.append((start, text[start:i]))
            start = i + 1
        i += 1
    if depth != 0 or quoted:
        raise _fail("parameter", text, len(text) + 1, "unexpected end of input")
    parts.append((start, text[start:]))
    return parts


def _unquote(text: str) -> str:
    """A double-quoted PostgREST value: strip the quotes, undo backslash escapes."""
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse_name(text: str, what: str = "parameter") -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return _unquote(text)
    if not _NAME.fullmatch(text):
        bad = next((i for i, ch in enumerate(text) if not (ch.isalnum() or ch in "_ $-")), len(text))
        raise _fail(what, text, bad + 1, f'unexpected {text[bad:bad + 1]!r}' if bad < len(text) else "unexpected end of input")
    return text


def parse_field(text: str, what: str = "parameter") -> Field:
    """`name`, `name->key->>key`, `"quoted name"`."""
    pieces = re.split(r"(->>|->)", text)
    name = parse_name(pieces[0].strip(), what)
    steps = []
    for arrow, key in zip(pieces[1::2], pieces[2::2]):
        steps.append(JsonStep(arrow, parse_name(key, what)))  # type: ignore[arg-type]
    return Field(name, tuple(steps))


def _split_alias(text: str) -> tuple[str | None, str]:
    """`alias:rest` (a single colon; `::` is a cast)."""
    m = re.match(r'^((?:"[^"]*")|[^:"(]+):(?!:)(.*)$', text, re.S)
    if m:
        return parse_name(m.group(1).strip(), "select parameter"), m.group(2)
    return None, text


# Deeper embeds or logic trees than any real query has are refused (400) before they reach the
# recursion limit or the database; a count longer than a bigint's digits is refused too.
MAX_NESTING = 16
MAX_COUNT_DIGITS = 18


def _check_depth(depth: int, what: str, text: str) -> None:
    if depth > MAX_NESTING:
        raise _fail(what, text, 1, f"nested more than {MAX_NESTING} levels deep")


def parse_select(text: str, depth: int = 0) -> tuple[SelectItem, ...]:
    _check_depth(depth, "select parameter", text)
    if text.strip() == "":
        return (StarItem(),)
    try:
        parts = _split_top(text)
    except ParseError:
        raise _fail("select parameter", text, len(text) + 1, "unexpected end of input") from None
    items: list[SelectItem] = []
    for offset, raw in parts:
        item = raw.strip()
        if item == "*":
            items.append(StarItem())
            continue
        if not item:
            raise _fail("select parameter", text, offset + 1, "unexpected \",\" expecting field name")
        alias, rest = _split_alias(item)
        paren = _first_paren(rest)
        if paren >= 0:
            if not rest.endswith(")"):
                raise _fail("select parameter", text, offset + len(item), "unexpected text after embedded resource")
            head, inner = rest[:paren], rest[paren + 1:-1]
            if head.startswith("..."):
                raise _fail("select parameter", text, offset + 1, "spread embedding is not supported by simcity-rest")
            names = head.split("!")
            name = parse_name(names[0].strip(), "select parameter")
            hint, is_inner = None, False
            for mod in names[1:]:
                if mod == "inner":
                    is_inner = True
                elif mod == "left":
                    continue
                else:
                    hint = parse_name(mod, "select parameter")
            items.append(EmbedItem(name, parse_select(inner, depth + 1), alias, hint, is_inner))
            continue
        field_text, _, cast = rest.partition("::")
        if "::" in cast:
            raise _fail("select parameter", text, offset + 1, 'unexpected "::"')
        field = parse_field(field_text.strip(), "select parameter")
        cast_name = cast.strip() or None
        if cast_name is not None and not re.fullmatch(r"[A-Za-z_][\w ]*", cast_name):
            raise _fail("select parameter", text, offset + 1, "unexpected character in cast")
        items.append(ColumnItem(field, alias, cast_name))
    return tuple(items)


def _first_paren(text: str) -> int:
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "(" and not quoted:
            return i
    return -1


def _parse_list(text: str, open_: str, close: str, what: str) -> tuple[str, ...]:
    """`(a,"b,c",d)` or `{a,b}` -> ('a', 'b,c', 'd')."""
    if len(text) < 2 or text[0] != open_ or text[-1] != close:
        raise _fail(what, text, 1, f'unexpected {text[:1]!r} expecting "{open_}"')
    body = text[1:-1]
    if body == "":
        return ()
    values: list[str] = []
    for _, raw in _split_top_quotes(body):
        values.append(_unquote(raw) if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw)
    return tuple(values)


def _split_top_quotes(text: str) -> list[tuple[int, str]]:
    """Split a list body at commas outside double quotes (parentheses are plain characters here)."""
    parts, start, quoted, i = [], 0, False, 0
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append((start, text[start:i]))
            start = i + 1
        i += 1
    parts.append((start, text[start:]))
    return parts


def parse_operation(field: Field, text: str, *, in_logic: bool = False) -> Filter:
    """`[not.]op[(any|all|lang)].value` for one field."""
    what = "filter"
    negate = False
    rest = text
    if rest.startswith("not."):
        negate, rest = True, rest[4:]
    op_text, dot, value = rest.partition(".")
    m = _OPERATOR.fullmatch(op_text)
    if not dot or not m or m.group(1) not in ALL_OPS:
        raise _fail(
            what, text, (4 if negate else 0) + 1,
            f'unexpected "{op_text[:1]}" expecting "not" or operator (eq, gt, ...)',
        )
    op, quantifier, language = m.group(1), m.group(2), m.group(3)
    if quantifier and op not in SIMPLE_OPS and op not in TEXT_OPS:
        raise _fail(what, text, len(op) + 1, f'unexpected "(" after operator {op}')
    if language is not None and op not in FTS_OPS:
        raise _fail(what, text, len(op) + 1, f'unexpected "(" after operator {op}')
    if in_logic and len(value) >= 2 and value[0] == value[-1] == '"' and op not in ("in",):
        value = _unquote(value)
    if op == "in":
        values = _parse_list(value, "(", ")", what)
        return Filter(field, op, values, negate)
    if quantifier:
        values = _parse_list(value, "{", "}", what)
        if op in ("like", "ilike"):
            values = tuple(v.replace("*", "%") for v in values)
        return Filter(field, op, values, negate, quantifier)  # type: ignore[arg-type]
    if op == "is":
        if value.lower() not in IS_VALUES:
            raise _fail(what, text, len(text) - len(value) + 1, 'unexpected value expecting null, true, false or unknown')
        return Filter(field, op, value.lower(), negate)
    if op in ("like", "ilike"):
        value = value.replace("*", "%")
    return Filter(field, op, value, negate, None, language)


def parse_logic(op: str, negate: bool, text: str, depth: int = 0) -> Logic:
    """`(a.eq.1,or(b.gt.2,not.c.is.null),not.and(...))`."""
    what = "logic tree"
    _check_depth(depth, what, text)
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise _fail(what, f"{op}={text}", len(op) + 2, 'unexpected input expecting "("')
    try:
        parts = _split_top(text[1:-1])
    except ParseError:
        raise _fail(what, text, len(text), "unbalanced parentheses or quotes") from None
    children: list[Condition] = []
    for _, raw in parts:
        item = raw.strip()
        m = re.match(r"^(not\.)?(and|or)\((.*)\)$", item, re.S)
        if m:
            children.append(parse_logic(m.group(2), bool(m.group(1)), f"({m.group(3)})", depth + 1))
            continue
        m2 = re.match(r'^((?:"[^"]*")|[^.]+)\.(.*)$', item, re.S)
        if not m2:
            raise _fail(what, text, 2, f"unexpected {item!r} expecting filter")
        children.append(parse_operation(parse_field(m2.group(1), what), m2.group(2), in_logic=True))
    if not children or parts == [(0, "")]:
        raise _fail(what, text, 2, 'unexpected ")" expecting filter')
    return Logic(op, tuple(children), negate)  # type: ignore[arg-type]


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    terms: list[OrderTerm] = []
    for offset, raw in _split_top(text):
        term = raw.strip()
        relation = None
        related = re.match(r"^([^()]+)\(([^()]+)\)(.*)$", term, re.S)
        if related:
            relation = parse_name(related.group(1), "order")
            term = related.group(2) + related.group(3)
        pieces = term.split(".")
        if pieces == [""]:
            raise _fail("order", text, offset + 1, "unexpected end of input expecting field name")
        field = parse_field(pieces[0], "order")
        desc, nulls = False, None
        mods = pieces[1:]
        if mods and mods[0] in ("asc", "desc"):
            desc = mods.pop(0) == "desc"
        if mods and mods[0] in ("nullsfirst", "nullslast"):
            nulls = "first" if mods.pop(0) == "nullsfirst" else "last"
        if mods:
            raise _fail("order", text, offset + len(pieces[0]) + 2, f'unexpected "{mods[0]}" expecting "asc", "desc", "nullsfirst" or "nullslast"')
        terms.append(OrderTerm(field, desc, nulls, relation))  # type: ignore[arg-type]
    return tuple(terms)


def _parse_count(name: str, text: str) -> int:
    if not text.isdigit():
        raise _fail(f"{name} parameter", text, 1, "unexpected input expecting digit")
    if len(text) > MAX_COUNT_DIGITS:
        raise _fail(f"{name} parameter", text[:40], 1, f"more than {MAX_COUNT_DIGITS} digits")
    return int(text)


def parse_query(query_string: str) -> Query:
    """The whole query string of a table request."""
    query = Query()
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise ParseError("Invalid UTF-8 in the query string") from None
    if any("\x00" in key or "\x00" in value for key, value in pairs):
        raise ParseError("A NUL character in the query string")  # PostgreSQL's text cannot hold one
    for key, value in pairs:
        if key == "select":
            query.select = parse_select(value)
        elif key == "columns":
            query.columns = tuple(parse_name(c.strip(), "columns parameter") for c in value.split(","))
        elif key == "on_conflict":
            query.on_conflict = tuple(parse_name(c.strip(), "on_conflict parameter") for c in value.split(","))
        elif key == "apikey":
            continue  # Supabase's gateway credential, consumed by Kong before PostgREST sees the request
        else:
            _parse_keyed(query, key, value)
    return query


def _parse_keyed(query: Query, key: str, value: str) -> None:
    parts = key.split(".")
    last = parts[-1]
    if last in _RESERVED_PER_PATH:
        path: Path = tuple(parse_name(p, last) for p in parts[:-1])
        if last == "order":
            query.order[path] = parse_order(value)
        elif last == "limit":
            query.limit[path] = _parse_count("limit", value)
        else:
            query.offset[path] = _parse_count("offset", value)
        return
    if last in ("or", "and"):
        negate = len(parts) >= 2 and parts[-2] == "not"
        path = tuple(parse_name(p, "logic tree") for p in (parts[:-2] if negate else parts[:-1]))
        query.conditions.setdefault(path, []).append(parse_logic(last, negate, value))
        return
    # A JSON path may itself contain dots only inside quotes; PostgREST splits embed paths on dots.
    path = tuple(parse_name(p, "filter") for p in parts[:-1])
    field = parse_field(last, "filter")
    query.conditions.setdefault(path, []).append(parse_operation(field, value))
