"""Shared fixtures: a real PostgreSQL with compose/db applied, once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.postgres import LocalPostgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres() as cluster:
        yield cluster
