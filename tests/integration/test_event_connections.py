"""The event stream shares one Redis read among its clients and stops it when they leave."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import redis

from backend.contract import EVENTS_KEY, BatchProgress, SeluSpec
from backend.store import RunStore
from tests.support.sse import SseEvent, open_event_stream, parse_events
from tests.support.stack import Stack

CLIENTS = 5


def blocked_stream_reads(client: redis.Redis) -> int:
    """Connections currently blocked in XREAD, the API's reads of the event stream."""
    return sum(
        1
        for connection in client.client_list()
        if connection["cmd"] == "xread" and "b" in connection["flags"]
    )


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_clients_share_one_stream_read_which_stops_promptly_when_they_disconnect(
    stack: Stack, stack_store: RunStore
) -> None:
    watching = stack_store.redis
    assert wait_for(lambda: blocked_stream_reads(watching) == 0, 5)

    with httpx.Client(base_url=stack.url, timeout=30) as client, ExitStack() as streams:
        # Each line iterator is kept: dropping one closes its response.
        line_readers = [
            streams.enter_context(open_event_stream(client)).iter_lines() for _ in range(CLIENTS)
        ]
        assert all(next(lines).startswith("retry:") for lines in line_readers)
        assert wait_for(lambda: blocked_stream_reads(watching) == 1, 5)
        closed = time.monotonic()

    assert wait_for(lambda: blocked_stream_reads(watching) == 0, 5)
    assert time.monotonic() - closed < 3.0


def test_a_malformed_last_event_id_is_refused_with_a_sentence(api: httpx.Client) -> None:
    response = api.get("/api/events", headers={"Last-Event-ID": "yesterday"})

    assert response.status_code == 400
    assert "is not a stream id" in response.json()["detail"]


def test_clients_joining_during_a_flood_of_events_get_each_one_exactly_once(
    stack: Stack, stack_store: RunStore
) -> None:
    run_id = stack_store.create_run(SeluSpec(name="flood")).id
    [(before_flood, _fields)] = stack_store.redis.xrevrange(EVENTS_KEY, count=1)
    flood = 1500
    joined = threading.Barrier(3, timeout=30)
    received: dict[str, list[SseEvent]] = {}
    last_progress = {"epoch": 1, "batches_done": flood, "batches_total": flood}

    def produce() -> None:
        for done in range(1, flood + 1):
            progress = BatchProgress(epoch=1, batches_done=done, batches_total=flood)
            stack_store.record_progress(run_id, progress)
            # Both clients join mid-flood: events go out before, while and after they connect.
            if done == flood // 2:
                joined.wait()

    def watch(name: str, resume_after: str | None) -> None:
        timeout = httpx.Timeout(10, read=10)
        with httpx.Client(base_url=stack.url, timeout=timeout) as client:
            with open_event_stream(client, resume_after) as response:
                lines = response.iter_lines()
                next(lines)
                joined.wait()
                events = received.setdefault(name, [])
                for event in parse_events(lines):
                    if event is None:
                        continue
                    events.append(event)
                    if event.type == "progress" and event.json()["progress"] == last_progress:
                        return

    threads = [
        threading.Thread(target=produce),
        threading.Thread(target=watch, args=("resuming", before_flood)),
        threading.Thread(target=watch, args=("new", None)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    stored = [entry_id for entry_id, _ in stack_store.redis.xrange(EVENTS_KEY, f"({before_flood}")]
    resumed_ids = [event.id for event in received["resuming"]]
    new_ids = [event.id for event in received["new"]]
    assert resumed_ids == stored[: len(resumed_ids)] and len(resumed_ids) >= flood
    assert new_ids and new_ids[-1] == resumed_ids[-1]
    first_new = stored.index(new_ids[0])
    assert new_ids == stored[first_new : first_new + len(new_ids)]
    stack_store.delete_run(run_id)
