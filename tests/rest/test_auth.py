"""Authentication and row-level security, exactly as PostgREST v12 + Supabase's roles."""

from __future__ import annotations

import time

import httpx
import jwt

from tests.rest.conftest import ANON_KEY, JWT_SECRET, Rest, World, token


def _get(rest: Rest, path: str, bearer: str | None = None, **headers: str) -> httpx.Response:
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    with rest.client(headers) as client:
        return client.get(path)


def test_service_role_sees_everything(rest: Rest, world: World) -> None:
    r = _get(rest, f"/bookings?slot_id=eq.{world.slot_id}&select=id", token("service_role"))
    assert sorted(b["id"] for b in r.json()) == sorted(world.booking_ids)


def test_authenticated_sees_only_own_bookings(rest: Rest, world: World) -> None:
    mine = token("authenticated", sub=world.customer_ids[1], aud="authenticated")
    r = _get(rest, f"/bookings?slot_id=eq.{world.slot_id}&select=id,customer_id", mine)
    assert r.status_code == 200 and r.json() == [{"id": world.booking_ids[1], "customer_id": world.customer_ids[1]}]
    # No `sub`: auth.uid() is null, RLS filters every row silently (200 []), as PostgREST + RLS do.
    r = _get(rest, f"/bookings?slot_id=eq.{world.slot_id}", token("authenticated"))
    assert (r.status_code, r.json()) == (200, [])


def test_missing_grant_is_42501_401_for_anon_403_with_jwt(rest: Rest, world: World) -> None:
    r = _get(rest, "/slots?select=id")  # no token -> anon role
    assert r.status_code == 401 and r.json()["code"] == "42501"
    assert r.headers["www-authenticate"] == "Bearer"
    assert set(r.json()) == {"code", "message", "details", "hint"}
    r = _get(rest, "/slots?select=id", ANON_KEY)  # Supabase clients send the anon key as the bearer
    assert r.status_code == 403 and r.json()["code"] == "42501"
    r = _get(rest, "/slots?select=id", token("authenticated", sub=world.customer_ids[0]))
    assert r.status_code == 403
    # The apikey header alone grants nothing: the role comes from the bearer only.
    r = _get(rest, "/slots?select=id", apikey=token("service_role"))
    assert r.status_code == 401


def test_token_without_role_claim_uses_anon(rest: Rest) -> None:
    # PostgREST's `authed` is "the claims contain a role": without one a 42501 is 401 with a
    # Bearer challenge, as for no token at all (shared/reference/postgrest.md).
    r = _get(rest, "/slots?select=id", token(None, sub="x"))
    assert r.status_code == 401 and r.json()["code"] == "42501"
    assert r.headers.get("www-authenticate", "").startswith("Bearer")


def test_bad_tokens_are_pgrst301_with_challenge(rest: Rest) -> None:
    now = int(time.time())
    expired = jwt.encode({"role": "service_role", "exp": now - 60}, JWT_SECRET, algorithm="HS256")
    r = _get(rest, "/slots", expired)
    assert r.status_code == 401 and r.json()["code"] == "PGRST301" and r.json()["message"] == "JWT expired"
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token", error_description="JWT expired"'
    wrong = jwt.encode({"role": "service_role"}, "another-secret-another-secret-1234567", algorithm="HS256")
    r = _get(rest, "/slots", wrong)
    assert r.status_code == 401 and r.json()["message"] == "JWSError JWSInvalidSignature"
    r = _get(rest, "/slots", "abc.def")
    assert r.status_code == 401
    assert r.json()["message"] == "JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)"
    r = _get(rest, "/slots", "a.b.c")
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"


def test_clock_skew_of_30s(rest: Rest, world: World) -> None:
    now = int(time.time())
    just_expired = jwt.encode({"role": "service_role", "exp": now - 5}, JWT_SECRET, algorithm="HS256")
    assert _get(rest, f"/slots?id=eq.{world.slot_id}", just_expired).status_code == 200
    not_yet = jwt.encode({"role": "service_role", "nbf": now + 300}, JWT_SECRET, algorithm="HS256")
    r = _get(rest, "/slots", not_yet)
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"


def test_no_anon_role_means_pgrst302(rest_no_anon: Rest, world: World) -> None:
    r = _get(rest_no_anon, "/slots")
    assert r.status_code == 401 and r.json() == {
        "code": "PGRST302", "message": "Anonymous access is disabled", "details": None, "hint": None,
    }
    r = _get(rest_no_anon, f"/slots?id=eq.{world.slot_id}&select=id", token("service_role"))
    assert r.json() == [{"id": world.slot_id}]


def test_unknown_role_claim_fails(rest: Rest) -> None:
    r = _get(rest, "/slots", token("no_such_role_anywhere"))
    assert r.status_code == 400 and set(r.json()) == {"code", "message", "details", "hint"}


def test_claims_reach_the_database(rest: Rest, world: World) -> None:
    """request.jwt.claims carries `sub`, so Supabase's auth.uid() sees the caller."""
    mine = token("authenticated", sub=world.customer_ids[0])
    r = _get(rest, f"/bookings?select=id&id=eq.{world.booking_ids[0]}", mine)
    assert r.json() == [{"id": world.booking_ids[0]}]
