"""The service-role key from the environment (harness.auth): refused before anything starts when
it cannot travel in a header as it is."""

from __future__ import annotations

import jwt
import pytest

from harness.auth import JWT_SECRET_ENV, SERVICE_KEY_ENV, service_key_from_env
from harness.errors import UsageError


def test_a_given_key_is_used_as_it_is_and_a_secret_mints_one() -> None:
    assert service_key_from_env({SERVICE_KEY_ENV: "a.b.c"}) == "a.b.c"
    minted = service_key_from_env({JWT_SECRET_ENV: "s" * 40})
    assert jwt.decode(minted, "s" * 40, algorithms=["HS256"])["role"] == "service_role"


@pytest.mark.parametrize("key", ["a.b.c\n", " a.b.c", "a.b\r\nX-Injected: 1", "a.b\0c"])
def test_a_key_with_a_space_or_line_break_is_a_usage_error_that_does_not_show_it(key: str) -> None:
    with pytest.raises(UsageError, match=f"^{SERVICE_KEY_ENV} holds a space, line break or control character") as caught:
        service_key_from_env({SERVICE_KEY_ENV: key})
    assert "a.b" not in str(caught.value)


def test_no_key_and_no_secret_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=SERVICE_KEY_ENV):
        service_key_from_env({})
