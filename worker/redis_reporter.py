"""The reporter a Celery task hands the engine: live facts go to Redis, cancels come back."""

from __future__ import annotations

import logging
import threading

import redis

from backend.contract import ActivationStatistics, BatchProgress, EpochMetrics
from backend.store import LeaseLostError, RunStateError, RunStore
from worker.leases import LeaseKeeper
from worker.redis_retry import retry_while_redis_is_away

logger = logging.getLogger(__name__)

# How long the listener waits for a message before checking whether it should stop.
LISTEN_POLL_SECONDS = 0.5
RECONNECT_DELAY_SECONDS = 1.0


class RedisReporter:
    """Stores epochs and progress through RunStore and hears the run's cancel request.

    cancel_requested() is called after every batch, so it only reads threading.Events:
    a background thread subscribed to the run's cancel channel sets one, a worker shutdown
    another, and the lease keeper a third when the run was given to another worker.
    With a lease keeper every write is fenced by the lease, and an epoch report rides out
    a Redis restart (it is idempotent, so retrying it is safe); progress is dropped instead.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        worker_stopping: threading.Event | None = None,
        lease_keeper: LeaseKeeper | None = None,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._lease = lease_keeper.lease if lease_keeper is not None else None
        self._lease_lost = lease_keeper.lost if lease_keeper is not None else threading.Event()
        self._cancelled = threading.Event()
        self._worker_stopping = worker_stopping or threading.Event()
        self._closed = threading.Event()
        self._listening = threading.Event()
        self._listener = threading.Thread(
            target=self._listen, name=f"cancel-listener-{run_id}", daemon=True
        )
        self._listener.start()
        # A cancel made before the first batch must not be missed, so wait for the first read.
        self._listening.wait(timeout=5.0)

    def on_initial_activations(self, statistics: ActivationStatistics) -> None:
        if self._lease_lost.is_set():
            return
        try:
            retry_while_redis_is_away(
                lambda: self._store.record_initial_activations(
                    self._run_id, statistics, self._lease
                ),
                f"storing the initial activations of run {self._run_id}",
            )
        except LeaseLostError as error:
            logger.warning("%s", error)
            self._lease_lost.set()
        except RunStateError as error:
            # Cancelled before its first batch: the run is over, and so is this figure.
            logger.info("%s", error)

    def on_epoch(self, metrics: EpochMetrics) -> None:
        if self._lease_lost.is_set():
            return
        try:
            retry_while_redis_is_away(
                lambda: self._store.record_epoch(self._run_id, metrics, self._lease),
                f"storing epoch {metrics.epoch} of run {self._run_id}",
            )
        except LeaseLostError as error:
            logger.warning("%s", error)
            self._lease_lost.set()

    def on_progress(self, progress: BatchProgress) -> None:
        if self._lease_lost.is_set():
            return
        try:
            stored = self._store.record_progress(self._run_id, progress, self._lease)
        except redis.RedisError as error:
            # Progress is superseded within half a second; training must not wait for it.
            logger.debug("Progress of run %s not stored: %s", self._run_id, error)
            return
        if not stored:
            self._lease_lost.set()

    def cancel_requested(self) -> bool:
        return (
            self._cancelled.is_set() or self._worker_stopping.is_set() or self._lease_lost.is_set()
        )

    @property
    def lease_lost(self) -> bool:
        """True when the run was given to another worker; nothing more may be written."""
        return self._lease_lost.is_set()

    @property
    def worker_stopping(self) -> bool:
        return self._worker_stopping.is_set()

    @property
    def cancelled_by_user(self) -> bool:
        """True when the stop came from a cancel request rather than a worker shutdown."""
        return self._cancelled.is_set()

    def close(self) -> None:
        self._closed.set()
        self._listener.join(timeout=LISTEN_POLL_SECONDS + 1)

    def __enter__(self) -> RedisReporter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _listen(self) -> None:
        while not (self._closed.is_set() or self._cancelled.is_set()):
            try:
                self._listen_once()
            except redis.RedisError as error:
                logger.warning("Cancel listener of run %s lost Redis: %s", self._run_id, error)
                self._closed.wait(RECONNECT_DELAY_SECONDS)

    def _listen_once(self) -> None:
        pubsub = self._store.cancel_subscription(self._run_id)
        try:
            # Subscribed first, then read: a cancel lands in the flag or in the channel.
            if self._store.is_cancel_requested(self._run_id):
                self._cancelled.set()
            self._listening.set()
            while not (self._closed.is_set() or self._cancelled.is_set()):
                message = pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                if message is not None and message.get("type") == "message":
                    self._cancelled.set()
        finally:
            pubsub.close()
