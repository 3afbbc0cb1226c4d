"""Fixtures shared by the test folders: a real Redis-protocol server and a RunStore on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.settings import Settings
from backend.store import RunStore
from tests.support.processes import RedisServer, start_redis

# With CURVELAB_REDIS_URL set, each suite flushes its own database and no other.
UNIT_REDIS_DB = 13


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Valkey server for the whole session (or a dedicated database of CURVELAB_REDIS_URL)."""
    server = start_redis(tmp_path_factory.mktemp("redis"), db=UNIT_REDIS_DB)
    yield server
    server.stop()


@pytest.fixture
def store_settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    """Settings on an empty database, with a var dir of the test's own."""
    return redis_server.fresh_settings(tmp_path / "var")


@pytest.fixture
def store(store_settings: Settings) -> Iterator[RunStore]:
    run_store = RunStore.from_settings(store_settings)
    yield run_store
    run_store.close()
