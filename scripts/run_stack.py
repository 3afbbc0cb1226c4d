"""`make run`: Valkey (unless CURVELAB_REDIS_URL is set), one Celery worker and the API.

Ctrl-C (or SIGTERM) stops all three: the API first, then the worker, which hands the run
in progress back to the queue after its current batch (the next start resumes it from its
last finished epoch), then Valkey, which flushes its append-only file. A worker that dies
is started again, and its run resumes once its lease runs out. Runs survive a restart
because Valkey keeps an append-only file under CURVELAB_VAR_DIR/redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO
from urllib.parse import urlsplit

import httpx

from backend.contract import TASK_QUEUE
from backend.settings import Settings, get_settings
from scripts.redis_server import (
    die_with_parent,
    port_is_free,
    start_valkey,
    stop_process,
    wait_for_redis,
)

API_READY_SECONDS = 60.0
# The worker finishes its current batch, saves the model and hands its run back, then exits.
WORKER_STOP_SECONDS = 60.0
WORKER_RESTART_DELAY_SECONDS = 2.0


def say(line: str, stream: TextIO = sys.stdout) -> None:
    """The launcher's messages to the terminal, one line each."""
    stream.write(line + "\n")
    stream.flush()


def worker_command(name: str) -> list[str]:
    """One Celery worker process training one run at a time from the training queue."""
    return [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "-Q", TASK_QUEUE, "-c", "1", "--pool", "solo", "-n", name, "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


def api_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
        "--host", settings.host, "--port", str(settings.port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


class Launcher:
    """Starts the processes, restarts a dead worker and stops everything on a signal."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logs_dir = settings.var_dir / "logs"
        self.env = dict(os.environ, CURVELAB_REDIS_URL=settings.effective_redis_url)
        self.stopping = threading.Event()
        self.valkey: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None

    def spawn(self, command: list[str], log_name: str | None) -> subprocess.Popen[bytes]:
        log = (self.logs_dir / log_name).open("ab") if log_name else None
        try:
            return subprocess.Popen(
                command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            if log is not None:
                log.close()

    def start(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.redis_url is None:
            port = urlsplit(self.settings.effective_redis_url).port or 6379
            self.valkey = start_valkey(
                port,
                self.settings.var_dir / "redis",
                log_path=self.logs_dir / "valkey.log",
                supervised=True,
            )
        else:
            wait_for_redis(self.settings.effective_redis_url, timeout=10)
        self.worker = self.spawn(worker_command("curvelab@%h"), "worker.log")
        self.api = self.spawn(api_command(self.settings), None)
        self.wait_for_api()

    def wait_for_api(self) -> None:
        url = f"http://{self.settings.host}:{self.settings.port}/api/health"
        deadline = time.monotonic() + API_READY_SECONDS
        while not self.stopping.is_set():
            if self.api is None or self.api.poll() is not None:
                raise RuntimeError("The API process exited during start-up; read its output above.")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"The API did not answer at {url} within a minute.")
            time.sleep(0.2)

    def supervise(self) -> int:
        """Watches the processes until a signal arrives or one that cannot be restarted dies."""
        while not self.stopping.wait(1.0):
            if self.valkey is not None and self.valkey.poll() is not None:
                say(f"Valkey stopped unexpectedly; see {self.logs_dir / 'valkey.log'}.", sys.stderr)
                return 1
            if self.api is not None and self.api.poll() is not None:
                say("The API stopped unexpectedly; see its output above.", sys.stderr)
                return 1
            if self.worker is not None and self.worker.poll() is not None:
                say(
                    f"The worker exited with code {self.worker.returncode}; starting it again "
                    f"(its log is {self.logs_dir / 'worker.log'}).",
                    sys.stderr,
                )
                self.stopping.wait(WORKER_RESTART_DELAY_SECONDS)
                self.worker = self.spawn(worker_command("curvelab@%h"), "worker.log")
        return 0

    def stop(self) -> None:
        for process, grace in (
            (self.api, 10.0),
            (self.worker, WORKER_STOP_SECONDS),
            (self.valkey, 10.0),
        ):
            if process is not None:
                stop_process(process, grace)


def main() -> int:
    settings = get_settings()
    if not port_is_free(settings.host, settings.port):
        say(
            f"Port {settings.port} on {settings.host} is already in use; stop what listens "
            "there or choose another port with CURVELAB_PORT.",
            sys.stderr,
        )
        return 1
    launcher = Launcher(settings)

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        launcher.stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        launcher.start()
        where = "embedded Valkey" if settings.redis_url is None else settings.redis_url
        say(f"Curvelab is running at http://{settings.host}:{settings.port}")
        say(f"Redis: {where}; logs in {Path(launcher.logs_dir)}. Press Ctrl-C to stop.")
        return launcher.supervise()
    except RuntimeError as error:
        say(str(error), sys.stderr)
        return 1
    finally:
        say("Stopping Curvelab...", sys.stderr)
        launcher.stop()


if __name__ == "__main__":
    raise SystemExit(main())
