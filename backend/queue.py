"""Sends training tasks by name, so the API never imports worker code or TensorFlow."""

from __future__ import annotations

from celery import Celery

from backend.contract import TASK_NAME, TASK_QUEUE


class TaskQueue:
    """The producer side of the Celery app that the workers run."""

    def __init__(self, broker_url: str) -> None:
        self._app = Celery("curvelab-api", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            task_ignore_result=True,
            task_default_queue=TASK_QUEUE,
            # A request must not hang for long on a broker that is down: fail and answer 503.
            broker_connection_timeout=3,
            task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2},
        )

    def enqueue(self, run_id: str) -> None:
        """Queues the training of a stored run for the next free worker."""
        self._app.send_task(TASK_NAME, args=[run_id], queue=TASK_QUEUE)

    def close(self) -> None:
        self._app.close()
