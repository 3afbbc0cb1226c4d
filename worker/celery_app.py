"""The Celery app the workers run: JSON only, late acknowledgement, one task at a time.

Start a worker with `celery -A worker.celery_app worker -Q training -c 1 --pool solo`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready, worker_shutdown, worker_shutting_down

from backend.contract import TASK_QUEUE
from backend.settings import get_settings
from worker import presence
from worker.gpu_slot import pin_to_free_gpu

# kombu's default: abandoned tasks are looked for every 10 s, scanning on every 10th look.
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 3600


def transport_options(visibility_timeout: float) -> dict[str, float]:
    """Redis redelivers an unacknowledged task after visibility_timeout even while it still
    runs (celery#5935, kombu#337); the run's lease makes the worker that gets the copy skip it.
    A shortened timeout (tests, quick recovery) also has abandoned tasks looked for sooner."""
    options: dict[str, float] = {"visibility_timeout": visibility_timeout}
    if visibility_timeout < DEFAULT_VISIBILITY_TIMEOUT_SECONDS:
        options["unacked_restore_interval"] = max(1, int(visibility_timeout // 2))
        options["unacked_restore_throttle"] = 1
    return options


_settings = get_settings()
app = Celery("curvelab", broker=_settings.effective_redis_url, include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_default_queue=TASK_QUEUE,
    # A task is acknowledged only once it ends, and a worker holds one task at a time.
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    broker_transport_options=transport_options(_settings.broker_visibility_timeout_seconds),
    # A training rides out a broker restart (Celery 6 would cancel it); its lease keeps the
    # redelivered copy from training it twice.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    worker_hijack_root_logger=False,
)
_heartbeat: presence.Heartbeat | None = None


@worker_init.connect
def _claim_gpu(**_: Any) -> None:
    # Before TensorFlow loads (at worker_ready): each worker of a multi-GPU host takes its own GPU.
    settings = get_settings()
    pin_to_free_gpu(settings.effective_redis_url, settings.node_name)


@worker_ready.connect
def _announce(sender: Any = None, **_: Any) -> None:
    global _heartbeat
    from worker.tasks import warm_up

    # TensorFlow loads here, before the worker says it is ready, not in the first run.
    warm_up()
    _heartbeat = presence.Heartbeat(sender.hostname, get_settings())
    _heartbeat.start()


@worker_shutting_down.connect
def _stop_training(**_: Any) -> None:
    presence.worker_stopping.set()


@worker_shutdown.connect
def _withdraw(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
