"""A real run through the real service, watched live over Server-Sent Events."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx
import pytest

from backend.contract import run_metrics_key
from backend.store import RunStore
from tests.support.specs import SMALL_NET
from tests.support.sse import SseEvent, open_event_stream, read_until, run_finished
from tests.support.stack import Stack

EPOCHS = 3
WATCH_SECONDS = 180.0


@dataclass
class WatchedRun:
    run_id: str
    events: list[SseEvent]
    view: dict


@pytest.fixture(scope="module")
def watched_run(stack: Stack, api: httpx.Client) -> WatchedRun:
    """An alpha-dropout run launched while a client watches the event stream."""
    spec = {**SMALL_NET, "variant": "alpha_dropout", "max_epochs": EPOCHS, "mc_samples": 10}
    timeout = httpx.Timeout(30, read=60)
    with httpx.Client(base_url=stack.url, timeout=timeout) as watcher:
        with open_event_stream(watcher) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            assert next(lines).startswith("retry:")
            run_id = api.post("/api/runs", json={**spec, "name": "watched"}).json()["id"]
            events = read_until(lines, run_finished(run_id), WATCH_SECONDS)
    return WatchedRun(run_id, events, api.get(f"/api/runs/{run_id}").json())


def of_run(events: list[SseEvent], run_id: str, event_type: str) -> list[dict]:
    payloads = [event.json() for event in events if event.type == event_type]
    if event_type == "run":
        return [payload for payload in payloads if payload["id"] == run_id]
    return [payload for payload in payloads if payload["run_id"] == run_id]


def test_a_synthetic_run_succeeds_with_one_stream_entry_per_epoch(
    watched_run: WatchedRun, api: httpx.Client, stack: Stack, stack_store: RunStore
) -> None:
    view, run_id = watched_run.view, watched_run.run_id

    assert view["status"] == "succeeded", view["error"]
    assert view["epochs_done"] == EPOCHS and view["device"] == "CPU"
    assert stack.worker is not None and view["worker"] == stack.worker.name
    assert view["summary"]["epochs_run"] == EPOCHS and view["seconds_per_epoch"] > 0
    assert stack_store.redis.xlen(run_metrics_key(run_id)) == EPOCHS
    epochs = api.get(f"/api/runs/{run_id}/metrics").json()["epochs"]
    assert [metrics["epoch"] for metrics in epochs] == [1, 2, 3]
    assert len(epochs[0]["activation_means"]) == SMALL_NET["depth"]
    assert (stack.var_dir / view["summary"]["model_path"]).is_file()


def test_the_metrics_come_as_csv_with_a_header_row(
    watched_run: WatchedRun, api: httpx.Client
) -> None:
    response = api.get(f"/api/runs/{watched_run.run_id}/metrics", params={"format": "csv"})

    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert len(rows[0]["activation_means"].split()) == SMALL_NET["depth"]


def test_a_dropout_run_has_its_mc_dropout_report(
    watched_run: WatchedRun, api: httpx.Client
) -> None:
    report = api.get(f"/api/runs/{watched_run.run_id}/mc-dropout").json()

    assert report["samples"] == 10 and report["evaluated_images"] > 0


def test_the_event_stream_delivers_the_runs_life_in_order(watched_run: WatchedRun) -> None:
    events, run_id = watched_run.events, watched_run.run_id

    views = of_run(events, run_id, "run")
    # The second running view brings the untrained network's activation statistics.
    assert [view["status"] for view in views] == ["queued", "running", "running", "succeeded"]
    assert views[1]["initial_activations"] is None
    assert len(views[2]["initial_activations"]["stds"]) == SMALL_NET["depth"]
    assert [entry["metrics"]["epoch"] for entry in of_run(events, run_id, "epoch")] == [1, 2, 3]
    assert of_run(events, run_id, "run")[-1] == watched_run.view
    progress = [entry["progress"]["epoch"] for entry in of_run(events, run_id, "progress")]
    assert progress == sorted(progress)
    stream_ids = [tuple(map(int, event.id.split("-"))) for event in events]
    assert stream_ids == sorted(stream_ids) and len(set(stream_ids)) == len(stream_ids)


@pytest.mark.parametrize("use_query", [False, True], ids=["header", "query"])
def test_reconnecting_with_last_event_id_continues_exactly(
    watched_run: WatchedRun, stack: Stack, use_query: bool
) -> None:
    events = watched_run.events
    first_epoch = next(index for index, event in enumerate(events) if event.type == "epoch")
    resume_after = events[first_epoch].id
    last_id = events[-1].id

    def is_last(event: SseEvent) -> bool:
        return event.id == last_id

    with httpx.Client(base_url=stack.url, timeout=30) as client:
        with open_event_stream(client, resume_after, use_query=use_query) as response:
            replayed = read_until(
                response.iter_lines(), lambda event: event.id == events[-1].id, 30
            )

    assert replayed == events[first_epoch + 1 :]


def test_last_event_id_zero_replays_everything_retained(
    watched_run: WatchedRun, stack: Stack
) -> None:
    events = watched_run.events
    last_id = events[-1].id

    def is_last(event: SseEvent) -> bool:
        return event.id == last_id

    with httpx.Client(base_url=stack.url, timeout=30) as client:
        with open_event_stream(client, "0") as response:
            replayed = read_until(
                response.iter_lines(), lambda event: event.id == events[-1].id, 30
            )

    assert replayed[-len(events) :] == events
    assert replayed[0].type == "run" and replayed[0].json()["status"] == "queued"
