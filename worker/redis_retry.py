"""Riding out a Redis restart: a write the worker must not lose is retried with backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

# Errors that mean "Redis is away for now" (stopped, restarting, replaying its AOF).
TRANSIENT_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
FIRST_DELAY_SECONDS = 0.2
LONGEST_DELAY_SECONDS = 5.0
# A run waits this long for Redis before its worker gives up on it; the reaper then takes over.
GIVE_UP_AFTER_SECONDS = 600.0


def retry_while_redis_is_away(
    action: Callable[[], Result],
    what: str,
    give_up_after_seconds: float = GIVE_UP_AFTER_SECONDS,
) -> Result:
    """Calls action until Redis answers; re-raises once Redis has been away too long.

    Only idempotent actions belong here: a write that reached Redis before the connection
    broke is sent again.
    """
    deadline = time.monotonic() + give_up_after_seconds
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return action()
        except TRANSIENT_ERRORS as error:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("Redis is away while %s (%s); retrying in %.1f s.", what, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, LONGEST_DELAY_SECONDS)
