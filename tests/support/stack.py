"""The whole service for a test session: Valkey, one worker and the API, stopped together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import (
    RedisServer,
    ServiceProcess,
    service_env,
    start_api,
    start_redis,
    start_worker,
)


@dataclass
class Stack:
    redis: RedisServer
    var_dir: Path
    api: ServiceProcess
    worker: ServiceProcess | None
    env: dict[str, str]

    @property
    def url(self) -> str:
        """The API's base URL, such as http://127.0.0.1:41234."""
        return self.api.url


@contextmanager
def running_stack(
    base_dir: Path,
    with_worker: bool = True,
    redis_db: int = 15,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Starts Valkey, a worker (unless with_worker is False) and uvicorn under base_dir.

    redis_db is the database used when CURVELAB_REDIS_URL names an existing server;
    extra_env adds CURVELAB_* settings for the worker and the API.
    """
    var_dir = base_dir / "var"
    logs = base_dir / "logs"
    with ExitStack() as cleanup:
        redis_server = start_redis(base_dir / "redis", db=redis_db)
        cleanup.callback(redis_server.stop)
        env = service_env(redis_server.url, var_dir, **(extra_env or {}))
        worker = None
        if with_worker:
            worker = start_worker(env, logs / "worker.log")
            cleanup.callback(worker.stop)
        api = start_api(env, logs / "api.log")
        cleanup.callback(api.stop)
        yield Stack(redis_server, var_dir, api, worker, env)
