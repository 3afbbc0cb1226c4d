"""The running service for the integration tests: Valkey, a real worker, a real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from backend.main import create_app
from backend.settings import Settings
from backend.store import RunStore
from tests.support.markers import mark_items_under
from tests.support.processes import RedisServer, start_redis
from tests.support.stack import Stack, running_stack

# Distinct databases, so that a CURVELAB_REDIS_URL server is shared without interference.
STACK_REDIS_DB = 14
IDLE_REDIS_DB = 12


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_items_under(items, Path(__file__).parent, pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    # A CIFAR-10 path that does not exist makes a cifar10 run fail at once, never download.
    missing_cifar = {"CURVELAB_CIFAR10_PATH": str(base / "no-cifar10-here")}
    with running_stack(base, redis_db=STACK_REDIS_DB, extra_env=missing_cifar) as service:
        yield service


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def stack_store(stack: Stack) -> Iterator[RunStore]:
    run_store = RunStore(stack.redis.client(), stack.var_dir)
    yield run_store
    run_store.close()


@pytest.fixture(scope="session")
def idle_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A server no worker consumes from, so queued tasks stay visible."""
    server = start_redis(tmp_path_factory.mktemp("idle-redis"), db=IDLE_REDIS_DB)
    yield server
    server.stop()


@pytest.fixture
def idle_settings(idle_redis: RedisServer, tmp_path: Path) -> Settings:
    return idle_redis.fresh_settings(tmp_path / "var")


@pytest.fixture
def idle_client(idle_settings: Settings) -> Iterator[TestClient]:
    """The API in-process against the idle server: REST behaviour without training."""
    with TestClient(create_app(idle_settings)) as client:
        yield client


@pytest.fixture
def idle_store(idle_settings: Settings) -> Iterator[RunStore]:
    """The RunStore on the idle server, for setting up and checking state behind the API."""
    run_store = RunStore.from_settings(idle_settings)
    yield run_store
    run_store.close()
