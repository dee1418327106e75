"""The query-string grammar -> AST, without a server."""

from __future__ import annotations

import pytest

from harness.contract import SNAPSHOT_SELECT
from simcity_rest.errors import ParseError
from simcity_rest.nodes import ColumnItem, EmbedItem, Field, Filter, JsonStep, Logic, OrderTerm, StarItem
from simcity_rest.querystring import parse_logic, parse_operation, parse_order, parse_query, parse_select


def test_sc1_snapshot_select() -> None:
    items = parse_select(SNAPSHOT_SELECT)
    assert [i.label for i in items] == ["id", "vendor_id", "state", "bookings"]  # type: ignore[union-attr]
    embed = items[3]
    assert isinstance(embed, EmbedItem) and len(embed.items) == 7 and not embed.inner


def test_alias_cast_json_path_star() -> None:
    items = parse_select("*,x:id::text,data->a->>b,v:vendors!slots_vendor_id_fkey!inner(name)")
    assert items[0] == StarItem()
    assert items[1] == ColumnItem(Field("id"), "x", "text")
    assert items[2] == ColumnItem(Field("data", (JsonStep("->", "a"), JsonStep("->>", "b"))))
    assert items[2].label == "b"  # type: ignore[union-attr]
    assert items[3] == EmbedItem("vendors", (ColumnItem(Field("name")),), "v", "slots_vendor_id_fkey", True)


def test_quoted_names_and_spaces() -> None:
    assert parse_select('"my col", other') == (ColumnItem(Field("my col")), ColumnItem(Field("other")))


@pytest.mark.parametrize("bad", ["id;drop table x", "id)", "bookings(id", "a::text::int", "id,,x", "a:b:c(", "x::te;xt"])
def test_bad_select_is_pgrst100(bad: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_select(bad)
    assert err.value.code == "PGRST100" and "failed to parse select parameter" in err.value.message


def test_operations() -> None:
    f = Field("a")
    assert parse_operation(f, "eq.5") == Filter(f, "eq", "5")
    assert parse_operation(f, "not.eq.5") == Filter(f, "eq", "5", negate=True)
    assert parse_operation(f, "like.*ab*") == Filter(f, "like", "%ab%")
    assert parse_operation(f, 'in.(1,"a,b",c)') == Filter(f, "in", ("1", "a,b", "c"))
    assert parse_operation(f, "in.()") == Filter(f, "in", ())
    assert parse_operation(f, "is.NULL") == Filter(f, "is", "null")
    assert parse_operation(f, "like(any).{a*,b*}") == Filter(f, "like", ("a%", "b%"), quantifier="any")
    assert parse_operation(f, "fts(english).cat") == Filter(f, "fts", "cat", language="english")
    assert parse_operation(f, "eq.a.b.c") == Filter(f, "eq", "a.b.c")  # the value keeps its dots


@pytest.mark.parametrize("bad", ["5", "equals.5", "is.maybe", "in.1,2", "eq(some).{1}", "not.5", "in.(1"])
def test_bad_operations(bad: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_operation(Field("a"), bad)
    assert err.value.status == 400


def test_logic_trees_nest() -> None:
    tree = parse_logic("or", False, '(age.lt.18,and(a.eq."x,y",b.in.(1,2)),not.or(c.is.null,d.gt.1))')
    assert tree.op == "or" and len(tree.children) == 3
    inner = tree.children[1]
    assert isinstance(inner, Logic) and inner.children[0] == Filter(Field("a"), "eq", "x,y")
    assert isinstance(tree.children[2], Logic) and tree.children[2].negate


@pytest.mark.parametrize("bad", ["age.lt.18", "()", "(age.lt.18", "(age)", "(and(a.eq.1)"])
def test_bad_logic(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_logic("or", False, bad)


def test_order() -> None:
    assert parse_order("a.desc.nullslast,b,c.nullsfirst") == (
        OrderTerm(Field("a"), True, "last"), OrderTerm(Field("b")), OrderTerm(Field("c"), False, "first"),
    )
    assert parse_order("vendors(name).desc") == (OrderTerm(Field("name"), True, None, "vendors"),)
    with pytest.raises(ParseError):
        parse_order("a.sideways")


def test_query_keys_and_paths() -> None:
    q = parse_query(
        "select=id,bookings(status)&id=eq.1&bookings.status=eq.confirmed&bookings.order=created_at.desc"
        "&bookings.limit=1&limit=5&offset=2&not.or=(a.eq.1,b.eq.2)&apikey=whatever&columns=a,b"
    )
    assert q.conditions[()][0] == Filter(Field("id"), "eq", "1")
    assert isinstance(q.conditions[()][1], Logic) and q.conditions[()][1].negate
    assert q.conditions[("bookings",)] == [Filter(Field("status"), "eq", "confirmed")]
    assert q.order[("bookings",)] == (OrderTerm(Field("created_at"), True),)
    assert q.limit == {(): 5, ("bookings",): 1} and q.offset == {(): 2}
    assert q.columns == ("a", "b")


@pytest.mark.parametrize("bad", ["limit=-1", "limit=abc", "offset=1.5", "id=eq", "a;b=eq.1"])
def test_bad_query(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_query(bad)
