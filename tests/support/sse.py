"""A small Server-Sent Events reader over httpx, for tests and benchmarks."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
