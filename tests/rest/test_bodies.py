"""Request bodies and tokens a hostile client sends: authentication comes before the body, a body
is read in linear time up to a limit (413), and a token's time claims must be numbers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

from simcity_rest.app import MAX_BODY_BYTES
from tests.rest.conftest import Rest, service_headers, token

ERROR_KEYS = {"code", "message", "details", "hint"}


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def test_an_unauthenticated_huge_post_is_refused_before_its_body_is_read(rest: Rest) -> None:
    started = time.monotonic()
    with rest.client({"Authorization": "Bearer not.a.token", "Content-Type": "application/json"}) as client:
        try:
            r = client.post("/bookings", content=_chunks(200 << 20))
            status = r.status_code
        except httpx.HTTPError:  # the server answered and closed while the client was still sending
            status = None
    took = time.monotonic() - started
    assert status in (401, None)
    assert took < 10, f"{took:.1f} s: the server read the body before refusing the token"
    with rest.client(service_headers()) as client:  # and it still serves
        assert client.get("/slots?limit=1").status_code == 200


def test_a_body_past_the_limit_is_413_in_postgrests_shape(rest: Rest) -> None:
    with rest.client({**service_headers(), "Content-Type": "application/json"}) as client:
        r = client.post("/bookings", content=b"[" + b" " * (MAX_BODY_BYTES + 10) + b"]")
        assert r.status_code == 413 and set(r.json()) == ERROR_KEYS, r.text
        chunked = client.post("/bookings", content=_chunks(MAX_BODY_BYTES + 10))
        assert chunked.status_code == 413, chunked.text


def test_time_claims_must_be_numbers(rest: Rest) -> None:
    # Each value as a string that the decoder would take as valid: a far exp, a past nbf and iat.
    for claim, value in (("exp", "9999999999"), ("nbf", "1"), ("iat", "1")):
        bad = token("service_role", **{claim: value})
        with rest.client({"apikey": bad, "Authorization": f"Bearer {bad}"}) as client:
            first, again = client.get("/slots?limit=1"), client.get("/slots?limit=1")
        assert first.status_code == again.status_code == 401, (claim, first.text)
        assert claim in first.json()["message"]


def test_a_counted_offset_past_the_end_is_416_with_the_total(rest: Rest) -> None:
    with rest.client({**service_headers(), "Prefer": "count=exact"}) as client:
        total = int(client.get("/slots?limit=1").headers["content-range"].rpartition("/")[2])
        r = client.get(f"/slots?offset={total + 5}")
    assert r.status_code == 416 and r.json()["code"] == "PGRST103"
    assert r.headers["content-range"] == f"*/{total}"

