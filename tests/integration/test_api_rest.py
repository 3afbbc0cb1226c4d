"""The REST API in-process against a real Valkey that no worker consumes from."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.contract import SPEC_CLASSES, TASK_NAME, TASK_QUEUE, RunStatus
from backend.main import create_app
from backend.settings import Settings
from backend.store import RunStore
from scripts.redis_server import free_port

SYNTHETIC = {"variant": "selu", "dataset": "synthetic", "max_epochs": 3, "name": "my SELU"}


def queued_messages(store: RunStore) -> list[dict]:
    return [json.loads(raw) for raw in store.redis.lrange(TASK_QUEUE, 0, -1)]


def test_launch_stores_a_queued_run_and_sends_its_id_by_task_name(
    idle_client: TestClient, idle_settings: Settings
) -> None:
    response = idle_client.post("/api/runs", json=SYNTHETIC)

    assert response.status_code == 201
    view = response.json()
    assert view["status"] == "queued" and view["name"] == "my SELU" and view["kind"] == "train"
    assert view["spec"]["learning_rate"] == pytest.approx(7e-4) and view["max_epochs"] == 3
    store = RunStore.from_settings(idle_settings)
    [message] = queued_messages(store)
    assert message["headers"]["task"] == TASK_NAME
    args, _kwargs, _options = json.loads(base64.b64decode(message["body"]))
    assert args == [view["id"]]
    assert idle_client.get("/api/runs").json()["runs"] == [view]
    assert idle_client.get(f"/api/runs/{view['id']}").json() == view


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variant": "resnet50"}, None),
        ({"variant": "selu", "learning_rate": 0}, "learning_rate"),
        ({"variant": "selu", "batch_size": 0}, "batch_size"),
        ({"variant": "selu", "favourite_colour": "red"}, "favourite_colour"),
        ({"variant": "selu", "max_epochs": 10**12}, "max_epochs"),
        ({"variant": "selu", "width": 0}, "width"),
        ({"variant": "selu", "dataset": "imagenet"}, "dataset"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_nothing_is_stored_or_queued(
    idle_client: TestClient, idle_settings: Settings, body: dict, field: str | None
) -> None:
    response = idle_client.post("/api/runs", json=body)

    assert response.status_code == 422
    if field is not None:
        assert [error["loc"][-1] for error in response.json()["detail"]] == [field]
    store = RunStore.from_settings(idle_settings)
    assert store.count_runs() == 0 and queued_messages(store) == []


def test_a_nan_learning_rate_is_422_and_the_answer_is_valid_json(
    idle_client: TestClient, idle_settings: Settings
) -> None:
    for number in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"variant": "selu", "learning_rate": ' + number + b"}"
        response = idle_client.post(
            "/api/runs", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "selu", "learning_rate"]
    assert RunStore.from_settings(idle_settings).count_runs() == 0


def test_an_oversized_body_is_413_with_a_sentence(
    idle_client: TestClient, idle_settings: Settings
) -> None:
    body = json.dumps({"variant": "selu", "name": "x" * 100_000})

    response = idle_client.post(
        "/api/runs", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert "larger than 64 KiB" in response.json()["detail"]
    assert RunStore.from_settings(idle_settings).count_runs() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/runs/unknown"),
        ("GET", "/api/runs/unknown/metrics"),
        ("GET", "/api/runs/unknown/mc-dropout"),
        ("POST", "/api/runs/unknown/cancel"),
        ("DELETE", "/api/runs/unknown"),
        ("GET", "/api/runs/unknown:metrics"),
        ("GET", "/api/runs/" + "x" * 500),
    ],
)
def test_an_unknown_run_is_404_with_a_sentence(
    idle_client: TestClient, method: str, path: str
) -> None:
    response = idle_client.request(method, path)

    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith("No run has the id ") and detail.endswith("find its id.")


def test_cancelling_a_finished_run_and_deleting_a_running_one_are_409(
    idle_client: TestClient, idle_settings: Settings
) -> None:
    store = RunStore.from_settings(idle_settings)
    running = idle_client.post("/api/runs", json=SYNTHETIC).json()["id"]
    store.mark_running(running, "celery@test", "CPU")
    finished = idle_client.post("/api/runs", json=SYNTHETIC).json()["id"]
    store.mark_running(finished, "celery@test", "CPU")
    store.finish_run(finished, RunStatus.failed, error="The test stopped it.")

    deleting = idle_client.delete(f"/api/runs/{running}")
    cancelling = idle_client.post(f"/api/runs/{finished}/cancel")

    assert deleting.status_code == 409 and "cancel it" in deleting.json()["detail"]
    assert cancelling.status_code == 409 and "already finished" in cancelling.json()["detail"]
    no_report = idle_client.get(f"/api/runs/{finished}/mc-dropout")
    assert no_report.status_code == 404 and "no MC-dropout report" in no_report.json()["detail"]


def test_cancelling_a_queued_run_cancels_it_at_once_and_it_can_be_deleted(
    idle_client: TestClient,
) -> None:
    run_id = idle_client.post("/api/runs", json=SYNTHETIC).json()["id"]

    cancelled = idle_client.post(f"/api/runs/{run_id}/cancel")
    deleted = idle_client.delete(f"/api/runs/{run_id}")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert deleted.status_code == 204
    assert idle_client.get(f"/api/runs/{run_id}").status_code == 404
    assert idle_client.get("/api/runs").json() == {"runs": []}


def test_the_lr_finder_endpoint_launches_a_range_test_run(idle_client: TestClient) -> None:
    response = idle_client.post("/api/lr-finder", json={"dataset": "synthetic", "max_steps": 50})

    assert response.status_code == 201
    view = response.json()
    assert view["kind"] == "lr_finder" and view["variant"] == "selu" and view["max_epochs"] == 1
    bad = idle_client.post("/api/lr-finder", json={"start_learning_rate": 0})
    assert bad.status_code == 422


def test_variants_are_read_from_the_specs(idle_client: TestClient) -> None:
    catalogue = idle_client.get("/api/variants").json()["variants"]

    assert [variant["name"] for variant in catalogue] == list(SPEC_CLASSES)
    titles = {variant["name"]: variant["title"] for variant in catalogue}
    assert titles == {
        "baseline": "baseline",
        "batchnorm": "BatchNorm",
        "selu": "SELU",
        "alpha_dropout": "alpha dropout",
        "onecycle": "1cycle",
    }
    selu = {parameter["name"]: parameter for parameter in catalogue[2]["parameters"]}
    assert "variant" not in selu and {"name", "dataset", "learning_rate"} <= set(selu)
    assert selu["learning_rate"]["default"] == pytest.approx(7e-4)
    assert selu["learning_rate"]["minimum"] == 0 and selu["learning_rate"]["exclusive_minimum"]
    assert selu["max_epochs"]["type"] == "integer" and selu["max_epochs"]["maximum"] == 1000
    assert selu["dataset"]["choices"] == ["cifar10", "synthetic"]
    onecycle = {parameter["name"] for parameter in catalogue[4]["parameters"]}
    assert "peak_learning_rate" in onecycle and "learning_rate" not in onecycle


def test_openapi_documents_every_route_with_a_summary(idle_client: TestClient) -> None:
    schema = idle_client.get("/openapi.json").json()

    assert idle_client.get("/docs").status_code == 200
    expected = {
        "/api/health", "/api/variants", "/api/runs", "/api/runs/{run_id}",
        "/api/runs/{run_id}/metrics", "/api/runs/{run_id}/mc-dropout",
        "/api/runs/{run_id}/cancel", "/api/lr-finder", "/api/events",
    }  # fmt: skip
    assert expected <= set(schema["paths"])
    for path in expected:
        for operation in schema["paths"][path].values():
            assert operation.get("description"), f"{path} has no docstring"


def test_the_plotly_bundle_is_served_from_the_installed_package(idle_client: TestClient) -> None:
    response = idle_client.get("/vendor/plotly.min.js")

    assert response.status_code == 200 and "javascript" in response.headers["content-type"]
    assert len(response.content) > 1_000_000


def test_with_redis_down_the_api_answers_503_with_a_sentence(tmp_path: Path) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", var_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        listing = client.get("/api/runs")
        launch = client.post("/api/runs", json=SYNTHETIC)
        health = client.get("/api/health")

    assert listing.status_code == 503 and "Redis is not reachable" in listing.json()["detail"]
    assert launch.status_code == 503
    assert health.json() == {"redis": False, "workers": [], "status": "degraded"}
