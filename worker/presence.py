"""A worker's life signs: a heartbeat in Redis while it lives, a flag when told to stop.

The same heartbeat thread sweeps for runs of lost workers (backend/reaper.py), so as long as
one worker lives, no run stays `running` after its worker is gone.
"""

from __future__ import annotations

import logging
import threading

import redis

from backend.reaper import Reaper
from backend.settings import Settings
from backend.store import RunStore

logger = logging.getLogger(__name__)

# Set when the worker begins a shutdown, so the training in progress stops within one batch.
worker_stopping = threading.Event()


class Heartbeat:
    """Stamps the worker's name in the worker registry every heartbeat_seconds, then sweeps."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self._interval = settings.heartbeat_seconds
        self._store = RunStore.from_settings(settings)
        self._reaper = Reaper(self._store, settings)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="curvelab-heartbeat", daemon=True)

    def start(self) -> None:
        self._store.workers.beat(self.name)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self._interval + 1)
        try:
            self._store.workers.remove(self.name)
        except redis.RedisError:
            logger.warning(
                "Could not remove worker %s from the registry; it will age out.", self.name
            )
        self._store.close()

    def _beat(self) -> None:
        # The first sweep comes at once: a worker started after a crash picks up its runs.
        while True:
            try:
                self._store.workers.beat(self.name)
                self._reaper.sweep()
            except redis.RedisError as error:
                # Redis may be restarting; the next beat tries again.
                logger.warning("Heartbeat of %s failed: %s", self.name, error)
            if self._stopped.wait(self._interval):
                return
