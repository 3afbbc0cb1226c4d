"""The Celery task: run id in, engine run, results and status out. Thin like a web view.

A delivery trains only under the run's lease: a copy of a task that a live worker still
trains (the broker redelivers after its visibility timeout), or a task of a finished run,
is skipped. A run resumes from its checkpoint when it was handed back or reaped earlier.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from backend.contract import TASK_NAME, LrFinderSpec, RunKind, RunStatus
from backend.reaper import send_requeued
from backend.run_files import checkpoint_dir, remove_checkpoint
from backend.settings import Settings, get_settings
from backend.store import Lease, RunStore
from backend.views import RunView
from worker import train as engine
from worker.celery_app import app
from worker.checkpoints import latest_epoch
from worker.data_sources import DatasetError
from worker.leases import LeaseKeeper
from worker.presence import worker_stopping
from worker.redis_reporter import RedisReporter
from worker.redis_retry import retry_while_redis_is_away

logger = logging.getLogger(__name__)

LEASE_LOST = "lost its lease; the worker that holds it now carries on"
HANDED_BACK = "handed back to the queue to resume on another worker"
SHUTDOWN_REASON = "its worker shut down"


@lru_cache(maxsize=1)
def _store() -> RunStore:
    return RunStore.from_settings(get_settings())


@lru_cache(maxsize=1)
def _device() -> str:
    return engine.describe_device()


def warm_up() -> None:
    """Loads TensorFlow and finds the device once, before the first run arrives."""
    _device()


@app.task(name=TASK_NAME, bind=True, ignore_result=True)
def train(self: Any, run_id: str) -> str:
    """Trains one stored run; returns the status it ended with (or why it was skipped)."""
    return execute_run(run_id, self.request.hostname or "worker")


def execute_run(run_id: str, worker_name: str) -> str:
    store, settings = _store(), get_settings()
    loaded = store.load_spec(run_id)
    if loaded is None:
        return "deleted before it started"
    _kind, spec = loaded
    lease = Lease.new(run_id, worker_name, settings.worker_lost_after_seconds)
    started = store.leases.start(lease, worker_name, _device())
    if started.view is None:
        logger.info("Skipping a delivery of run %s: %s.", run_id, started.outcome.value)
        return started.outcome.value
    with (
        LeaseKeeper(store, lease, settings.heartbeat_seconds) as keeper,
        RedisReporter(store, run_id, worker_stopping, keeper) as reporter,
    ):
        attempt = Attempt(store, settings, keeper, reporter)
        return attempt.train(spec, started.view)


class Attempt:
    """One worker's turn at a run: train, then finish, hand back, or step aside."""

    def __init__(
        self, store: RunStore, settings: Settings, keeper: LeaseKeeper, reporter: RedisReporter
    ) -> None:
        self.store = store
        self.settings = settings
        self.keeper = keeper
        self.lease = keeper.lease
        self.reporter = reporter
        self.run_id = keeper.lease.run_id

    def train(self, spec: Any, view: RunView) -> str:
        try:
            missing = self._missing_checkpoint(view)
            if missing:
                return self._finish(RunStatus.failed, error=missing)
            if isinstance(spec, LrFinderSpec):
                result = engine.find_learning_rate(spec, self.reporter, self.settings)
                return self._end(result.cancelled, lr_finder=result)
            summary = engine.run(
                spec, self.reporter, self.settings, self.run_id, keep_checkpoint=True
            )
            return self._end(summary.cancelled, summary=summary)
        except DatasetError as error:
            return self._finish(RunStatus.failed, error=str(error))
        except Exception as error:
            if self.reporter.lease_lost:
                return LEASE_LOST
            logger.exception("Run %s failed.", self.run_id)
            reason = (
                f"Training stopped with {type(error).__name__}: {error}. "
                "The worker's log has the traceback."
            )
            return self._finish(RunStatus.failed, error=reason)

    def _missing_checkpoint(self, view: RunView) -> str | None:
        """Why a run with stored epochs cannot resume here, or None when it can."""
        if view.kind is not RunKind.train or view.epochs_done == 0:
            return None
        saved = latest_epoch(checkpoint_dir(self.settings.var_dir, self.run_id))
        if saved >= view.epochs_done:
            return None
        return (
            f"The run cannot resume: it has {view.epochs_done} finished epochs, but the newest "
            f"checkpoint this worker finds under {self.settings.checkpoints_dir} holds {saved}. "
            "Give all workers the same CURVELAB_VAR_DIR storage, then launch the run again."
        )

    def _end(self, stopped: bool, **results: Any) -> str:
        if self.reporter.lease_lost:
            return LEASE_LOST
        if stopped and not self.reporter.cancelled_by_user and self.reporter.worker_stopping:
            return self._hand_back()
        status = RunStatus.cancelled if stopped else RunStatus.succeeded
        return self._finish(status, **results)

    def _finish(self, status: RunStatus, **fields: Any) -> str:
        # The final write releases the lease; no renewal may run after it.
        self.keeper.stop()

        def finish() -> RunView | None:
            return self.store.finish_run(self.run_id, status, lease=self.lease, **fields)

        if retry_while_redis_is_away(finish, f"finishing run {self.run_id}") is None:
            return LEASE_LOST
        remove_checkpoint(self.settings.var_dir, self.run_id)
        return status.value

    def _hand_back(self) -> str:
        self.keeper.stop()

        def hand_back() -> RunView | None:
            return self.store.leases.hand_back(self.lease, SHUTDOWN_REASON)

        if retry_while_redis_is_away(hand_back, f"handing run {self.run_id} back") is None:
            return LEASE_LOST
        try:
            send_requeued(self.store, self.settings, self.run_id)
        except Exception as error:  # the broker's errors are kombu's; any worker resends later
            logger.warning("Run %s is queued but its task is not sent yet: %s", self.run_id, error)
        return HANDED_BACK
