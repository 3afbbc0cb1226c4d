"""Which workers are alive: each one stamps its name with the time every few seconds."""

from __future__ import annotations

import time
from typing import cast

import redis

from backend.contract import WORKERS_KEY


class WorkerRegistry:
    """A sorted set of worker names scored by the last time each one was seen."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def beat(self, name: str) -> None:
        self._redis.zadd(WORKERS_KEY, {name: time.time()})

    def remove(self, name: str) -> None:
        self._redis.zrem(WORKERS_KEY, name)

    def seen_within(self, seconds: float) -> list[str]:
        """Names of the workers that beat in the last `seconds`, sorted."""
        names = self._redis.zrangebyscore(WORKERS_KEY, time.time() - seconds, "+inf")
        return sorted(cast(list[str], names))
