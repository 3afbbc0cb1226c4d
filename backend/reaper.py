"""Puts runs whose worker went silent back in the queue, from every live worker and the API.

A run whose lease expired (its worker was killed, froze, or its machine vanished) is queued
again to resume from its checkpoint, or failed with "worker lost" after
settings.max_worker_losses losses. Each worker's heartbeat calls sweep(), and so does the API
on the same period, so such a run does not show `running` while no worker is alive to sweep.
Each run is decided in one WATCH/MULTI transaction, so when several sweep at once only one
of them wins. The task is sent again by name right away: the broker's own redelivery of the
dead worker's message waits for its visibility timeout (an hour by default), and when it
finally comes the run's lease or status makes the worker skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import lru_cache

import redis

from backend.contract import RunStatus
from backend.queue import TaskQueue
from backend.run_files import remove_checkpoint
from backend.settings import Settings
from backend.store import RunStore

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def task_queue(broker_url: str) -> TaskQueue:
    """One producer per process for sending runs back to the queue."""
    return TaskQueue(broker_url)


def send_requeued(store: RunStore, settings: Settings, run_id: str) -> None:
    """Sends the task of a run that was put back in the queue, then marks it sent."""
    task_queue(settings.effective_redis_url).enqueue(run_id)
    store.leases.confirm_requeued(run_id)


class Reaper:
    """One worker's share of watching over every running run."""

    def __init__(self, store: RunStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def sweep(self) -> dict[str, RunStatus]:
        """Reaps the runs of lost workers and resends unsent requeues; returns what it did."""
        settings = self.settings
        reaped = self.store.leases.reap_lost(
            settings.worker_lost_after_seconds, settings.max_worker_losses
        )
        outcome = {entry.run_id: entry.status for entry in reaped}
        for run_id, status in outcome.items():
            logger.warning("Run %s lost its worker; it is now %s.", run_id, status.value)
            if status.finished:
                remove_checkpoint(settings.var_dir, run_id)
        # A requeue whose sender died before sending; the limit gives the sender time to send.
        requeued = {run_id for run_id, status in outcome.items() if not status.finished}
        for run_id in requeued | set(
            self.store.leases.requeued_unsent(settings.worker_lost_after_seconds)
        ):
            try:
                send_requeued(self.store, settings, run_id)
            except Exception as error:  # the broker's errors are kombu's, not redis-py's
                logger.warning("Could not send run %s back to the queue yet: %s", run_id, error)
        return outcome


class PeriodicSweep:
    """The API's sweeping: reaper.sweep() in a thread every interval, until stopped."""

    def __init__(self, reaper: Reaper, interval_seconds: float) -> None:
        self._reaper = reaper
        self._interval = interval_seconds
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_until_stopped(), name="curvelab-reaper")

    async def stop(self) -> None:
        """Lets a sweep in progress finish, so that it never outlives the store it uses."""
        self._stopped.set()
        if self._task is not None:
            await self._task

    async def _sweep_until_stopped(self) -> None:
        while not self._stopped.is_set():
            try:
                await asyncio.to_thread(self._reaper.sweep)
            except redis.RedisError as error:
                # Redis may be restarting; the next sweep tries again.
                logger.warning("Sweep for runs of lost workers failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._interval)
