"""Access control of real processes: uvicorn with a token, start-up rules, JSON-only workers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from celery import Celery

from backend.access import NO_TOKEN_NOTICE, SESSION_COOKIE, session_value
from backend.contract import TASK_NAME, TASK_QUEUE, RunStatus, SeluSpec
from backend.store import RunStore
from scripts.redis_server import free_port
from tests.support.processes import REPO_ROOT, RedisServer, service_env, start_api
from tests.support.sse import SseEvent, open_event_stream, parse_events
from tests.support.stack import Stack, running_stack

TOKEN = "s3cret-for-the-served-api"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TOKEN_REDIS_DB = 6


@pytest.fixture(scope="module")
def token_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Valkey and uvicorn with CURVELAB_API_TOKEN set; no worker, so runs stay queued."""
    base = tmp_path_factory.mktemp("token-stack")
    extra = {"CURVELAB_API_TOKEN": TOKEN}
    with running_stack(base, with_worker=False, redis_db=TOKEN_REDIS_DB, extra_env=extra) as stack:
        yield stack


def first_event(lines: Iterator[str], wanted: str) -> SseEvent:
    for event in parse_events(lines):
        if event is not None and event.type == wanted:
            return event
    raise AssertionError(f"The stream ended before a {wanted!r} event.")


def test_the_session_cookie_authorizes_the_event_stream(token_stack: Stack) -> None:
    with httpx.Client(base_url=token_stack.url, timeout=httpx.Timeout(10, read=30)) as browser:
        assert browser.get("/api/events").status_code == 401
        assert browser.post("/api/session", headers=BEARER).status_code == 200
        assert SESSION_COOKIE in browser.cookies

        # Like EventSource: no Authorization header, only the cookie the browser keeps.
        with open_event_stream(browser) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            launched = httpx.post(f"{token_stack.url}/api/runs", headers=BEARER,
                                  json={"variant": "selu", "dataset": "synthetic"})  # fmt: skip
            assert launched.status_code == 201
            event = first_event(lines, "run")
    assert event.json()["id"] == launched.json()["id"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer guessed"},
        {"Cookie": f"{SESSION_COOKIE}={session_value(TOKEN, int(time.time()) - 5)}"},
        {"Cookie": f"{SESSION_COOKIE}={session_value('guessed', int(time.time()) + 600)}"},
    ],
    ids=["nothing", "wrong-token", "expired-session", "forged-session"],
)
def test_the_event_stream_refuses_without_token_or_valid_session(
    token_stack: Stack, headers: dict
) -> None:
    with httpx.Client(base_url=token_stack.url, timeout=10) as client:
        with client.stream("GET", "/api/events", headers=headers) as response:
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/json"


def uvicorn_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
        "--host", host, "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


def test_a_tokenless_uvicorn_refuses_to_start_on_a_public_address(
    idle_redis: RedisServer, tmp_path: Path
) -> None:
    env = service_env(idle_redis.url, tmp_path / "var", CURVELAB_HOST="0.0.0.0")
    env.pop("CURVELAB_API_TOKEN", None)

    finished = subprocess.run(
        uvicorn_command("0.0.0.0", free_port()), cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert finished.returncode != 0
    assert NO_TOKEN_NOTICE in finished.stderr


def test_a_tokenless_server_says_at_start_up_that_it_serves_loopback_only(
    idle_redis: RedisServer, tmp_path: Path
) -> None:
    env = service_env(idle_redis.url, tmp_path / "var")
    env.pop("CURVELAB_API_TOKEN", None)
    api = start_api(env, tmp_path / "api.log")
    try:
        assert NO_TOKEN_NOTICE in api.log_tail()
    finally:
        api.stop()


def test_a_worker_refuses_a_pickled_task(stack: Stack, stack_store: RunStore) -> None:
    """Celery accepts JSON only: a pickle could run any code in the worker."""
    run_id = stack_store.create_run(SeluSpec(dataset="synthetic", max_epochs=1)).id
    producer = Celery("pickle-sender", broker=stack.redis.url, set_as_current=False)
    producer.conf.update(task_serializer="pickle", accept_content=["pickle", "json"])
    assert stack.worker is not None
    log_size = stack.worker.log_path.stat().st_size
    try:
        producer.send_task(TASK_NAME, args=[run_id], queue=TASK_QUEUE, serializer="pickle")
        deadline = time.monotonic() + 180
        refusal = ""
        while "pickle" not in refusal and time.monotonic() < deadline:
            time.sleep(0.2)
            with stack.worker.log_path.open("rb") as log:
                log.seek(log_size)
                refusal = log.read().decode(errors="replace")
        assert "untrusted content of type pickle" in refusal
        assert stack_store.redis.llen(TASK_QUEUE) == 0
        assert stack_store.require_run(run_id).status == RunStatus.queued
    finally:
        producer.close()
        stack_store.delete_run(run_id)
