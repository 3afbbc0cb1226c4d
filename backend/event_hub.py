"""One reader of the event stream per API process, fanned out to every SSE client.

A hundred watching browsers then cost one blocking XREAD, and each event is
formatted once. A client subscribes before it catches up from Redis, so any
event added while it catches up is waiting in its queue; stream ids, which
only grow, let it skip what it has already sent. Nothing is missed, nothing
is sent twice.
"""

from __future__ import annotations

import asyncio
import logging

import redis

from backend.event_log import EventLog, StoredEvent, stream_position

logger = logging.getLogger(__name__)

HUB_BLOCK_MS = 1000
HUB_BATCH = 500
# A client this far behind is dropped; its browser reconnects and catches up from Redis.
SUBSCRIBER_BACKLOG = 10_000


class SubscriptionClosed(Exception):
    """The hub stopped feeding this subscription (Redis failed, or the client fell behind)."""


class Subscription:
    """A queue of formatted events for one SSE client."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[tuple[int, int], str] | None] = asyncio.Queue(
            SUBSCRIBER_BACKLOG
        )
        self.closed = False

    def offer(self, position: tuple[int, int], wire: str) -> bool:
        """Queues one event; False (and closed) when the client has fallen too far behind."""
        try:
            self._queue.put_nowait((position, wire))
        except asyncio.QueueFull:
            self.close()
            return False
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # The end marker needs a free slot; the backlog is dropped anyway.
            while self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def next_events(
        self, after: tuple[int, int], timeout: float
    ) -> tuple[list[str], tuple[int, int]]:
        """Formatted events later than `after`, waiting up to timeout for the first one.

        Returns them with the position of the last one sent (or `after` if none was).
        """
        getter = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait({getter}, timeout=timeout)
        finally:
            # cancel() fails once the get has completed, and then its item must be kept.
            waited_in_vain = getter.cancel()
        if waited_in_vain:
            return [], after
        items = [getter.result()]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        wires: list[str] = []
        for item in items:
            if item is None:
                raise SubscriptionClosed("The event hub closed this subscription.")
            position, wire = item
            if position > after:
                wires.append(wire)
                after = position
        return wires, after


class EventHub:
    """Reads the stream while anyone listens and hands every event to every subscription."""

    def __init__(self, event_log: EventLog) -> None:
        self._event_log = event_log
        self._subscriptions: set[Subscription] = set()
        self._position = "0-0"
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def reading(self) -> bool:
        return self._task is not None and not self._task.done()

    async def subscribe(self) -> Subscription:
        """A new subscription; from now on it receives every event the stream gets."""
        subscription = Subscription()
        async with self._starting:
            self._subscriptions.add(subscription)
            if not self.reading:
                try:
                    self._position = await self._event_log.latest_id()
                except BaseException:
                    self._subscriptions.discard(subscription)
                    raise
                self._task = asyncio.create_task(self._read_loop(), name="event-hub")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()
        self._subscriptions.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _read_loop(self) -> None:
        # With nobody listening the loop ends, and with it the blocking read on Redis.
        while self._subscriptions:
            try:
                events = await self._event_log.read_after(self._position, HUB_BLOCK_MS, HUB_BATCH)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                logger.warning("The event hub lost Redis: %s", error)
                for subscription in list(self._subscriptions):
                    subscription.close()
                self._subscriptions.clear()
                return
            for event in events:
                self._publish(event)
                self._position = event.id

    def _publish(self, event: StoredEvent) -> None:
        position, wire = stream_position(event.id), event.as_sse()
        for subscription in list(self._subscriptions):
            if not subscription.offer(position, wire):
                self._subscriptions.discard(subscription)
