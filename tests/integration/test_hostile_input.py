"""Hostile input against the real API and a real Valkey: refused with a sentence, nothing kept.

Each refusal is checked through the public API (GET /api/runs unchanged) and in
Redis (no task on the broker's queue, no event announced), with one valid run
launched first so that "unchanged" is measured against something.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from backend.contract import (
    EVENTS_KEY,
    TASK_QUEUE,
)
from backend.store import RunStore

VALID = {"variant": "selu", "dataset": "synthetic", "max_epochs": 2, "name": "the valid one"}
BODY_LIMIT_BYTES = 64 * 1024
HTML_NAMES = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "\"'><svg/onload=alert(1)>",
    "{{constructor.constructor('alert(1)')()}}",
    "javascript:alert(1)",
    "</script><!-- & &amp; \u202eevil \U0001f9ea",
    "<" * 200,
]


def queued_tasks(client: redis.Redis) -> int:
    """Messages waiting on the training queue (kombu: a list per queue and priority step)."""
    keys = [key for key in client.scan_iter(match=f"{TASK_QUEUE}*") if client.type(key) == "list"]
    return sum(int(client.llen(key)) for key in keys)


@dataclass(frozen=True)
class Snapshot:
    runs: list[dict[str, Any]]
    queued: int
    events: int


@pytest.fixture
def before(idle_client: TestClient, idle_store: RunStore) -> Snapshot:
    """The state after one valid launch, which every refused request must leave as it is."""
    assert idle_client.post("/api/runs", json=VALID).status_code == 201
    state = snapshot(idle_client, idle_store)
    assert len(state.runs) == 1 and state.queued == 1 and state.events >= 1, state
    return state


def snapshot(client: TestClient, store: RunStore) -> Snapshot:
    runs = client.get("/api/runs").json()["runs"]
    return Snapshot(runs, queued_tasks(store.redis), int(store.redis.xlen(EVENTS_KEY)))


def post_raw(client: TestClient, path: str, body: bytes, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    return client.post(path, content=body, headers={"content-type": content_type})


def spec(**fields: Any) -> bytes:
    return json.dumps({"variant": "selu", "dataset": "synthetic", **fields}).encode()


BAD_SPECS = [
    pytest.param(spec(max_epochs=10**12), "max_epochs", id="max_epochs-10**12"),
    pytest.param(spec(max_epochs=10**30), "max_epochs", id="max_epochs-beyond-int64"),
    pytest.param(spec(max_epochs=0), "max_epochs", id="max_epochs-0"),
    pytest.param(b'{"variant": "selu", "learning_rate": NaN}', "learning_rate", id="lr-NaN"),
    pytest.param(spec(learning_rate="NaN"), "learning_rate", id="lr-NaN-string"),
    pytest.param(b'{"variant": "selu", "learning_rate": Infinity}', "learning_rate", id="lr-inf"),
    pytest.param(b'{"variant": "selu", "learning_rate": -Infinity}', "learning_rate", id="lr--inf"),
    pytest.param(spec(learning_rate="Infinity"), "learning_rate", id="lr-inf-string"),
    pytest.param(b'{"variant": "selu", "learning_rate": 1e400}', "learning_rate", id="lr-1e400"),
    pytest.param(spec(learning_rate=-1), "learning_rate", id="lr--1"),
    pytest.param(spec(learning_rate=0), "learning_rate", id="lr-0"),
    pytest.param(spec(learning_rate=11), "learning_rate", id="lr-above-10"),
    pytest.param(spec(width=0), "width", id="width-0"),
    pytest.param(spec(depth=10**6), "depth", id="depth-10**6"),
    pytest.param(spec(batch_size=0), "batch_size", id="batch_size-0"),
    pytest.param(spec(seed=-1), "seed", id="seed--1"),
    pytest.param(spec(seed=2**31), "seed", id="seed-2**31"),
    pytest.param(spec(patience=0), "patience", id="patience-0"),
    pytest.param(spec(variant="alpha_dropout", dropout_rate=1.0), "dropout_rate", id="dropout-1"),
    pytest.param(spec(name="x" * 201), "name", id="name-201-chars"),
    pytest.param(spec(favourite_colour="red"), "favourite_colour", id="unknown-field"),
    pytest.param(spec(__proto__={"admin": True}), "__proto__", id="unknown-__proto__"),
    pytest.param(spec(max_epochs="three"), "max_epochs", id="type-int-as-word"),
    pytest.param(spec(max_epochs=[3]), "max_epochs", id="type-int-as-list"),
    pytest.param(spec(max_epochs={"n": 3}), "max_epochs", id="type-int-as-object"),
    pytest.param(spec(max_epochs=None), "max_epochs", id="type-int-as-null"),
    pytest.param(spec(max_epochs=3.5), "max_epochs", id="type-int-as-fraction"),
    pytest.param(spec(max_epochs=True), "max_epochs", id="type-int-as-bool"),
    pytest.param(spec(max_epochs="3"), "max_epochs", id="type-int-as-numeric-string"),
    pytest.param(spec(learning_rate=True), "learning_rate", id="type-float-as-bool"),
    pytest.param(spec(learning_rate="fast"), "learning_rate", id="type-float-as-word"),
    pytest.param(spec(name=5), "name", id="type-name-as-int"),
    pytest.param(spec(dataset="../../etc/passwd"), "dataset", id="dataset-path"),
    pytest.param(spec(peak_learning_rate=0.1), "peak_learning_rate", id="onecycle-field-on-selu"),
    pytest.param(spec(variant="onecycle", learning_rate=0.1), "learning_rate", id="lr-on-onecycle"),
    pytest.param(spec(variant="onecycle", patience=5), "patience", id="patience-on-onecycle"),
    pytest.param(spec(variant="baseline", dropout_rate=0.1), "dropout_rate", id="dropout-on-base"),
    pytest.param(spec(variant="batchnorm", mc_samples=10), "mc_samples", id="mc-on-batchnorm"),
    pytest.param(spec(variant="resnet50"), "variant", id="unknown-variant"),
    pytest.param(spec(variant="SELU"), "variant", id="variant-wrong-case"),
    pytest.param(spec(variant=None), "variant", id="variant-null"),
    pytest.param(b'{"dataset": "synthetic"}', "variant", id="variant-missing"),
    pytest.param(spec(name="\ud800"), "name", id="name-lone-surrogate"),
]
BAD_LR_FINDER_SPECS = [
    pytest.param(spec(start_learning_rate="NaN"), "start_learning_rate", id="start-NaN"),
    pytest.param(spec(end_learning_rate=0), "end_learning_rate", id="end-0"),
    pytest.param(spec(max_steps=10**12), "max_steps", id="max_steps-10**12"),
    pytest.param(spec(learning_rate=0.1), "learning_rate", id="train-only-field"),
    pytest.param(spec(variant="resnet50"), "variant", id="unknown-variant"),
]


def names_field(detail: list[dict[str, Any]], field: str) -> bool:
    """True when an error is located at the field, or its message names it (the variant tag)."""
    return any(error["loc"][-1] == field or f"'{field}'" in error["msg"] for error in detail)


@pytest.mark.parametrize(("body", "field"), BAD_SPECS)
def test_a_bad_run_spec_is_422_naming_the_field_and_nothing_is_kept(
    idle_client: TestClient, idle_store: RunStore, before: Snapshot, body: bytes, field: str
) -> None:
    response = post_raw(idle_client, "/api/runs", body)

    assert response.status_code == 422, response.text
    assert names_field(response.json()["detail"], field), response.text
    assert snapshot(idle_client, idle_store) == before


@pytest.mark.parametrize(("body", "field"), BAD_LR_FINDER_SPECS)
def test_a_bad_range_test_spec_is_422_naming_the_field_and_nothing_is_kept(
    idle_client: TestClient, idle_store: RunStore, before: Snapshot, body: bytes, field: str
) -> None:
    response = post_raw(idle_client, "/api/lr-finder", body)

    assert response.status_code == 422, response.text
    assert names_field(response.json()["detail"], field), response.text
    assert snapshot(idle_client, idle_store) == before


@pytest.mark.parametrize("path", ["/api/runs", "/api/lr-finder"])
@pytest.mark.parametrize(
    ("body", "content_type", "statuses"),
    [
        pytest.param(b"variant=selu", "application/json", {422}, id="not-json"),
        pytest.param(b"[]", "application/json", {422}, id="empty-array"),
        pytest.param(b'[{"variant": "selu"}]', "application/json", {422}, id="array-of-spec"),
        pytest.param(b'"selu"', "application/json", {422}, id="json-string"),
        pytest.param(b"null", "application/json", {422}, id="json-null"),
        pytest.param(b"", "application/json", {422}, id="empty"),
        pytest.param(b'{"variant": "selu"}', "text/plain", {422, 415}, id="text-plain"),
        pytest.param(b'{"name": "\xff\xfe"}', "application/json", {400, 422}, id="bad-utf8"),
        pytest.param(b"[" * 30000 + b"]" * 30000, "application/json", {400, 422}, id="deep"),
        pytest.param(b'{"seed": ' + b"9" * 5000 + b"}", "application/json", {400, 422}, id="huge"),
    ],
)
def test_a_body_that_is_no_spec_at_all_is_refused_and_nothing_is_kept(
    idle_client: TestClient,
    idle_store: RunStore,
    before: Snapshot,
    path: str,
    body: bytes,
    content_type: str,
    statuses: set[int],
) -> None:
    response = post_raw(idle_client, path, body, content_type)

    assert response.status_code in statuses, response.text
    assert response.json()["detail"], response.text
    assert snapshot(idle_client, idle_store) == before


@pytest.mark.parametrize("path", ["/api/runs", "/api/lr-finder"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_one_megabyte_body_is_413_with_a_sentence_and_nothing_is_kept(
    idle_client: TestClient, idle_store: RunStore, before: Snapshot, path: str, chunked: bool
) -> None:
    body = spec(name="x" * 1_000_000)
    # A generator is sent chunked, with no Content-Length to refuse it by.
    content = iter([body[i : i + 65_536] for i in range(0, len(body), 65_536)]) if chunked else body

    response = idle_client.post(path, content=content, headers={"content-type": "application/json"})

    assert response.status_code == 413, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".") and "KiB" in detail, detail
    assert snapshot(idle_client, idle_store) == before


@pytest.mark.parametrize("name", HTML_NAMES)
def test_a_name_with_html_is_stored_exactly_and_returned_as_a_json_string(
    idle_client: TestClient, idle_store: RunStore, name: str
) -> None:
    launched = idle_client.post("/api/runs", json={**VALID, "name": name})

    assert launched.status_code == 201, launched.text
    run_id = launched.json()["id"]
    for response in (launched, idle_client.get(f"/api/runs/{run_id}")):
        assert response.headers["content-type"] == "application/json"
        assert response.json()["name"] == name and response.json()["spec"]["name"] == name
    assert idle_client.get("/api/runs").json()["runs"][0]["name"] == name
    stored = idle_store.get_run(run_id)
    assert stored is not None and stored.name == name
