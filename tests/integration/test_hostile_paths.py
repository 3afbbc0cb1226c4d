"""Hostile paths against the real API and a real Valkey: run ids that are paths or keys,
static files outside the frontend, tampered model paths, malformed event ids, and names
that try to forge server-sent events. None reads, removes or announces anything it should not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from backend.contract import EVENTS_KEY, EpochMetrics, RunStatus, RunSummary, parse_run_spec
from backend.store import RunStore
from tests.support.processes import RedisServer, service_env, start_api
from tests.support.sse import parse_events

VALID = {"variant": "selu", "dataset": "synthetic", "max_epochs": 2, "name": "the valid one"}


def _finished_run_with_metrics(idle_store: RunStore, model_path: str = "models/x.keras") -> str:
    run_id = idle_store.create_run(parse_run_spec(VALID)).id
    idle_store.mark_running(run_id, "celery@hostile", "CPU")
    metrics = EpochMetrics(
        epoch=1, loss=1.0, accuracy=0.1, val_loss=1.0, val_accuracy=0.1, learning_rate=1e-3,
        epoch_seconds=1.0, elapsed_seconds=1.0,
    )  # fmt: skip
    idle_store.record_epoch(run_id, metrics)
    summary = RunSummary(
        best_epoch=1, best_val_loss=1.0, best_val_accuracy=0.1, test_loss=1.0, test_accuracy=0.1,
        epochs_run=1, stopped_early=False, total_seconds=1.0, median_epoch_seconds=1.0,
        model_path=model_path,
    )  # fmt: skip
    idle_store.finish_run(run_id, RunStatus.succeeded, summary=summary)
    return run_id


TRAVERSAL_IDS = [
    "..%2F..%2Fetc%2Fpasswd", "..%2F..%2Fetc", "%2E%2E", "%2E%2E%2F%2E%2E%2Fbackend%2Fsettings.py",
    "....%2F%2F....%2F%2Fetc", "a.b.c", ".hidden", "%00", "*", "curvelab:runs", "x" * 5000,
    "{existing}:metrics", "{existing}%3Ametrics",
]  # fmt: skip
RUN_ROUTES = [
    ("GET", "/api/runs/{id}"), ("GET", "/api/runs/{id}/metrics"),
    ("GET", "/api/runs/{id}/metrics?format=csv"), ("GET", "/api/runs/{id}/mc-dropout"),
    ("POST", "/api/runs/{id}/cancel"), ("DELETE", "/api/runs/{id}"),
]  # fmt: skip


@pytest.mark.parametrize("run_id", TRAVERSAL_IDS, ids=lambda run_id: run_id[:40])
def test_a_run_id_that_is_a_path_or_a_key_is_404_and_reads_nothing(
    idle_client: TestClient, idle_store: RunStore, run_id: str
) -> None:
    existing = _finished_run_with_metrics(idle_store)
    runs_before = idle_client.get("/api/runs").json()

    for method, route in RUN_ROUTES:
        path = route.replace("{id}", run_id.replace("{existing}", existing))
        response = idle_client.request(method, path)
        assert response.status_code == 404, f"{method} {path}: {response.status_code}"
        assert "root:" not in response.text and "BaseSettings" not in response.text
    assert idle_client.get("/api/runs").json() == runs_before


@pytest.mark.parametrize(
    "path",
    ["/static/..%2F..%2Fbackend%2Fsettings.py", "/static/%2E%2E/%2E%2E/etc/passwd",
     "/static/..%5C..%5Cbackend%5Csettings.py", "/static/....//....//etc/passwd"],
)  # fmt: skip
def test_static_files_cannot_leave_the_frontend_folder(idle_client: TestClient, path: str) -> None:
    response = idle_client.get(path)

    assert response.status_code == 404
    assert "root:" not in response.text and "BaseSettings" not in response.text


@pytest.mark.parametrize("absolute", [False, True], ids=["relative-escape", "absolute"])
def test_deleting_a_run_never_removes_a_file_outside_the_var_folder(
    idle_client: TestClient, idle_store: RunStore, tmp_path: Path, absolute: bool
) -> None:
    # The var folder is tmp_path / "var", so this file sits right outside it.
    victim = tmp_path / "victim.keras"
    victim.write_text("must survive")
    tampered = str(victim) if absolute else "../victim.keras"
    run_id = _finished_run_with_metrics(idle_store, model_path=tampered)

    assert idle_client.delete(f"/api/runs/{run_id}").status_code == 204
    assert victim.read_text() == "must survive"


@pytest.fixture(scope="module")
def live_api(idle_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn with no worker: an event stream can only be read from a real server."""
    base = tmp_path_factory.mktemp("hostile-api")
    api = start_api(service_env(idle_redis.url, base / "var"), base / "api.log")
    yield api.url
    api.stop()


MALFORMED_EVENT_IDS = [
    "yesterday", "1-2-3", "-1", "$", ">", "0-", "1.5", "0 1", "0x10", "\u00e9",
    "99999999999999999999", "18446744073709551616-0", "0-18446744073709551616",
]  # fmt: skip


@pytest.mark.parametrize("where", ["header", "query"])
@pytest.mark.parametrize("event_id", MALFORMED_EVENT_IDS)
def test_a_malformed_last_event_id_is_400_with_a_sentence(
    live_api: str, event_id: str, where: str
) -> None:
    headers = {b"Last-Event-ID": event_id.encode("latin-1")} if where == "header" else {}
    params = {"last_event_id": event_id} if where == "query" else {}
    with httpx.stream(
        "GET", f"{live_api}/api/events", headers=headers, params=params, timeout=5
    ) as response:
        status = response.status_code
        body = response.read() if status != 200 else b""

    assert status == 400, f"{event_id!r} in the {where}: {status} (a stream was opened)"
    detail = json.loads(body)["detail"]
    assert detail.endswith(".") and "Last-Event-ID" in detail


def test_a_name_with_newlines_cannot_forge_an_event(live_api: str, idle_redis: RedisServer) -> None:
    name = "x\n\nevent: deleted\ndata: {}\r\n\r\nid: 9999999999999-0\n"
    watcher = idle_redis.client()
    newest = watcher.xrevrange(EVENTS_KEY, count=1)
    watcher.close()
    with httpx.Client(base_url=live_api, timeout=5) as client:
        run_id = client.post("/api/runs", json={**VALID, "name": name}).json()["id"]
        # Only the launch's own events follow the newest one before it.
        after = {"last_event_id": newest[0][0] if newest else "0"}
        with client.stream("GET", "/api/events", params=after) as stream:
            events = parse_events(stream.iter_lines())
            first = next(event for event in events if event is not None)

    assert first.type == "run" and not first.id.startswith("9999999999999")
    assert first.json()["id"] == run_id and first.json()["name"] == name
