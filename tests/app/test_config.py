"""Settings from the environment: the only way the app is configured."""

from __future__ import annotations

import pytest

from booking_app.config import Settings


def test_defaults_are_atomic_two_workers_no_e2e_on_loopback() -> None:
    settings = Settings.from_env({})
    assert (settings.strategy, settings.workers, settings.e2e, settings.host) == ("atomic", 2, False, "127.0.0.1")
    assert settings.window_ms is None


@pytest.mark.parametrize(("env", "workers"), [
    ({"WEB_CONCURRENCY": "3"}, 3),
    ({"APP_WORKERS": "4", "WEB_CONCURRENCY": "3"}, 4),
    ({"APP_WORKERS": "", "WEB_CONCURRENCY": ""}, 2),
    ({"APP_WORKERS": "0"}, 2),
])
def test_worker_count(env: dict[str, str], workers: int) -> None:
    assert Settings.from_env(env).workers == workers


@pytest.mark.parametrize(("raw", "on"), [("true", True), ("TRUE", True), ("1", True), ("yes", True),
                                         ("false", False), ("", False), ("0", False)])
def test_e2e_flag(raw: str, on: bool) -> None:
    assert Settings.from_env({"E2E": raw}).e2e is on


def test_mutant_window_and_strategy() -> None:
    settings = Settings.from_env({"BOOKING_STRATEGY": "racy", "MUTANT_WINDOW_MS": "0", "PORT": "3000"})
    assert (settings.strategy, settings.window_ms, settings.port) == ("racy", 0, 3000)


def test_a_bad_integer_names_the_variable() -> None:
    with pytest.raises(ValueError, match="PORT"):
        Settings.from_env({"PORT": "eighty"})
