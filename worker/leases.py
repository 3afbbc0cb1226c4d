"""The lease a worker holds on the run it trains, renewed by a heartbeat thread."""

from __future__ import annotations

import logging
import threading

import redis

from backend.store import Lease, RunStore

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the run's lease every interval; sets `lost` once the lease is gone.

    A lost lease means the run was given to another worker (this one was silent longer than
    the limit), so the training here must stop without writing anything more.
    """

    def __init__(self, store: RunStore, lease: Lease, interval_seconds: float) -> None:
        if interval_seconds >= lease.ttl_seconds:
            raise ValueError(
                f"The heartbeat ({interval_seconds:g} s) must be shorter than the time after "
                f"which a silent worker counts as lost ({lease.ttl_seconds:g} s); lower "
                "CURVELAB_HEARTBEAT_SECONDS or raise CURVELAB_WORKER_LOST_AFTER_SECONDS."
            )
        self.store = store
        self.lease = lease
        self.lost = threading.Event()
        self._interval = interval_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{lease.run_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the renewals; safe to call more than once."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 2)

    def __enter__(self) -> LeaseKeeper:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def renew_now(self) -> bool:
        """One renewal; False (and `lost` set) when the lease is no longer this worker's."""
        if self.lost.is_set():
            return False
        if not self.store.leases.renew(self.lease):
            logger.warning(
                "Run %s: this worker lost its lease; it stops and leaves the run to the worker "
                "that has it now.",
                self.lease.run_id,
            )
            self.lost.set()
        return not self.lost.is_set()

    def _beat(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                if not self.renew_now():
                    return
            except redis.RedisError as error:
                # Redis may be restarting: the lease outlives a short outage, so try again.
                logger.warning("Run %s: lease renewal failed: %s", self.lease.run_id, error)
