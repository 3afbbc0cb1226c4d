"""A small Server-Sent Events reader over httpx, for tests and benchmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseEvent:
    id: str
    type: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_events(lines: Iterator[str]) -> Iterator[SseEvent | None]:
    """Events of a text/event-stream in order; None for each comment (such as a ping)."""
    event_id = event_type = ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(event_id, event_type or "message", "\n".join(data))
            event_type, data = "", []
            continue
        if line.startswith(":"):
            yield None
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event_type = value
        elif name == "data":
            data.append(value)


def open_event_stream(
    client: httpx.Client, last_event_id: str | None = None, use_query: bool = False
) -> Any:
    """A streaming GET /api/events, to be used as a context manager."""
    headers, params = {}, {}
    if last_event_id is not None and use_query:
        params["last_event_id"] = last_event_id
    elif last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return client.stream("GET", "/api/events", headers=headers, params=params)


def read_until(
    lines: Iterator[str], stop: Callable[[SseEvent], bool], seconds: float
) -> list[SseEvent]:
    """Events of an open stream until stop(event) holds for one; comments are skipped."""
    received: list[SseEvent] = []
    deadline = time.monotonic() + seconds
    for event in parse_events(lines):
        if event is not None:
            received.append(event)
            if stop(event):
                return received
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"The stream ended or stalled after {len(received)} events.")


def run_finished(run_id: str) -> Callable[[SseEvent], bool]:
    """A stop condition: the run event that announces the run's final status."""

    def is_final(event: SseEvent) -> bool:
        if event.type != "run":
            return False
        view = event.json()
        return view["id"] == run_id and view["status"] in ("succeeded", "failed", "cancelled")

    return is_final
