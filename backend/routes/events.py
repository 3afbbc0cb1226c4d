"""GET /api/events: the global event stream as Server-Sent Events.

Each event's id is its Redis stream id, so a browser that reconnects with
Last-Event-ID resumes exactly where it stopped: nothing missed, nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import redis
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from backend.deps import EventHubDep, EventLogDep
from backend.event_hub import EventHub, Subscription, SubscriptionClosed
from backend.event_log import EventLog, is_stream_id, stream_position

router = APIRouter(prefix="/api", tags=["events"])

# Short waits, so that a client that went away is noticed within a second.
WAIT_SECONDS = 1.0
CATCH_UP_BATCH = 500
PING_SECONDS = 15.0
RECONNECT_DELAY_MS = 2000


@router.get("/events", response_class=StreamingResponse)
async def stream_events(
    request: Request,
    event_log: EventLogDep,
    event_hub: EventHubDep,
    last_event_id_query: Annotated[
        str | None,
        Query(alias="last_event_id", description='Resume after this id; "0" replays all.'),
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events: run, epoch, progress and deleted, each with its stream id."""
    # The header wins: a browser reconnecting sends it together with the page's first query.
    resume_after = last_event_id_header or last_event_id_query
    if resume_after is not None and not is_stream_id(resume_after):
        raise HTTPException(
            400, f"Last-Event-ID {resume_after!r} is not a stream id; use an id you received or 0."
        )
    # Subscribed before catching up, so that nothing added meanwhile can slip between the two.
    subscription = await event_hub.subscribe()
    try:
        start_id = resume_after if resume_after is not None else await event_log.latest_id()
    except BaseException:
        event_hub.unsubscribe(subscription)
        raise
    return StreamingResponse(
        _event_source(request, event_log, event_hub, subscription, start_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _event_source(
    request: Request,
    event_log: EventLog,
    event_hub: EventHub,
    subscription: Subscription,
    start_id: str,
) -> AsyncIterator[str]:
    try:
        yield f"retry: {RECONNECT_DELAY_MS}\n: connected\n\n"
        last_id = start_id
        # Catch up from Redis: everything after start_id that exists now.
        while events := await event_log.read_after(last_id, None, CATCH_UP_BATCH):
            yield "".join(event.as_sse() for event in events)
            last_id = events[-1].id
        sent_up_to = stream_position(last_id)
        last_sent = time.monotonic()
        while not await request.is_disconnected():
            wires, sent_up_to = await subscription.next_events(sent_up_to, WAIT_SECONDS)
            if wires:
                yield "".join(wires)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= PING_SECONDS:
                yield ": ping\n\n"
                last_sent = time.monotonic()
    except (SubscriptionClosed, redis.ConnectionError, redis.TimeoutError):
        # The browser reconnects by itself and resumes from the last id it received.
        return
    finally:
        event_hub.unsubscribe(subscription)
