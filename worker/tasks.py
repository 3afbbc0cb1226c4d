"""The Celery task: run id in, engine run, results and status out. Thin like a web view."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from backend.contract import TASK_NAME, LrFinderSpec, RunStatus
from backend.settings import get_settings
from backend.store import RunStore
from worker import train as engine
from worker.celery_app import app
from worker.data_sources import DatasetError
from worker.presence import worker_stopping
from worker.redis_reporter import RedisReporter

logger = logging.getLogger(__name__)

WORKER_STOPPED = (
    "The worker was stopped before the run finished; its epochs so far are kept, launch the "
    "run again to train it to the end."
)


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
    store = _store()
    loaded = store.load_spec(run_id)
    if loaded is None:
        return "deleted before it started"
    _kind, spec = loaded
    if store.mark_running(run_id, worker_name, _device()) is None:
        return "cancelled before it started"
    with RedisReporter(store, run_id, worker_stopping) as reporter:
        try:
            status = _train(store, run_id, spec, reporter)
        except DatasetError as error:
            store.finish_run(run_id, RunStatus.failed, error=str(error))
            return RunStatus.failed.value
        except Exception as error:
            logger.exception("Run %s failed.", run_id)
            reason = (
                f"Training stopped with {type(error).__name__}: {error}. "
                "The worker's log has the traceback."
            )
            store.finish_run(run_id, RunStatus.failed, error=reason)
            return RunStatus.failed.value
    return status.value


def _train(store: RunStore, run_id: str, spec: Any, reporter: RedisReporter) -> RunStatus:
    settings = get_settings()
    if isinstance(spec, LrFinderSpec):
        result = engine.find_learning_rate(spec, reporter, settings)
        status = _final_status(result.cancelled, reporter)
        store.finish_run(run_id, status, lr_finder=result, error=_stop_reason(status, reporter))
        return status
    summary = engine.run(spec, reporter, settings, run_id)
    status = _final_status(summary.cancelled, reporter)
    store.finish_run(run_id, status, summary=summary, error=_stop_reason(status, reporter))
    return status


def _final_status(stopped: bool, reporter: RedisReporter) -> RunStatus:
    if not stopped:
        return RunStatus.succeeded
    return RunStatus.cancelled if reporter.cancelled_by_user else RunStatus.failed


def _stop_reason(status: RunStatus, reporter: RedisReporter) -> str | None:
    if status is RunStatus.failed and not reporter.cancelled_by_user:
        return WORKER_STOPPED
    return None
