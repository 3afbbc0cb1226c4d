"""Async reads of the global event stream, for Server-Sent Events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio

from backend.contract import EVENTS_KEY

_STREAM_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
# Both parts of a stream id are unsigned 64-bit integers.
_STREAM_ID_PART_MAX = 2**64 - 1


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    data: str

    def as_sse(self) -> str:
        """The event in the text/event-stream wire format; data is one line of JSON."""
        return f"id: {self.id}\nevent: {self.type}\ndata: {self.data}\n\n"


def is_stream_id(text: str) -> bool:
    """True for a Redis stream id such as "1700000000000-0" (or "0" for the beginning)."""
    match = _STREAM_ID.fullmatch(text)
    if match is None:
        return False
    return all(int(part) <= _STREAM_ID_PART_MAX for part in match.groups() if part is not None)


def stream_position(stream_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair: "1700000000000-3" -> (1700000000000, 3)."""
    milliseconds, _, sequence = stream_id.partition("-")
    return int(milliseconds), int(sequence or 0)


class EventLog:
    """Reads events after a given stream id, waiting for new ones when none are there."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client

    async def latest_id(self) -> str:
        """The id of the newest event, or "0-0" when the stream is empty."""
        newest = cast(list[Any], await self._redis.xrevrange(EVENTS_KEY, count=1))
        return str(newest[0][0]) if newest else "0-0"

    async def read_after(self, last_id: str, block_ms: int | None, count: int) -> list[StoredEvent]:
        """Events after last_id in order, waiting up to block_ms (None: not at all) for one."""
        reply = cast(
            list[Any],
            await self._redis.xread({EVENTS_KEY: last_id}, count=count, block=block_ms),
        )
        if not reply:
            return []
        _stream, entries = reply[0]
        return [
            StoredEvent(entry_id, fields.get("type", "message"), fields.get("data", "{}"))
            for entry_id, fields in entries
        ]

    async def close(self) -> None:
        await self._redis.aclose()
