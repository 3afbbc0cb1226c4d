"""The atomic building blocks RunStore composes: events, guarded hash updates, epoch figures.

Redis MULTI/EXEC never rolls back, so every change that depends on the current
status WATCHes the run hash, decides from what it read, and retries if anyone
else wrote the hash in between.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping
from typing import Any, cast

import redis
from redis.typing import EncodableT, FieldT

from backend.contract import (
    ACTIVE_RUNS_KEY,
    EVENTS_KEY,
    EVENTS_MAXLEN,
    REQUEUED_RUNS_KEY,
    RUN_INDEX_KEY,
    ActivationStatistics,
    BatchProgress,
    EpochMetrics,
    RunStatus,
    run_key,
    run_lease_key,
    run_metrics_key,
)
from backend.views import RunView, run_view_from_hash

# A decision looks at the current hash and returns the fields to set and those to remove.
Decision = Callable[[dict[str, str]], tuple[dict[str, str], tuple[str, ...]]]


class RunNotFoundError(LookupError):
    """The run id names no stored run."""


class RunStateError(RuntimeError):
    """The run's status does not allow the requested change."""


class LeaseLostError(RunStateError):
    """The worker no longer holds the run's lease; another worker may be training it."""


# A lease to check inside a transaction: its key and the owner it must still name.
Fence = tuple[str, str]
# Extra commands queued inside the transaction's MULTI, given the run's updated fields.
AlsoQueue = Callable[[redis.client.Pipeline, dict[str, str]], None]


def lease_lost(run_id: str) -> LeaseLostError:
    return LeaseLostError(
        f"This worker lost its lease on run {run_id}: it was silent too long and the run went "
        "back to the queue, so it stops without writing."
    )


def run_not_found(run_id: str) -> RunNotFoundError:
    return RunNotFoundError(f"No run has the id {run_id!r}; list the runs to find its id.")


def text_hash(reply: object) -> dict[str, str]:
    """Types a hash reply of a client made with decode_responses=True."""
    return cast(dict[str, str], reply)


def hash_mapping(fields: Mapping[str, str]) -> Mapping[FieldT, EncodableT]:
    """Types a str-to-str dict as the mapping HSET accepts."""
    return cast(Mapping[FieldT, EncodableT], fields)


def add_event(pipe: redis.client.Pipeline, event_type: str, payload: str) -> None:
    """Queues an XADD to the global event stream, trimmed near EVENTS_MAXLEN entries."""
    pipe.xadd(
        EVENTS_KEY, {"type": event_type, "data": payload}, maxlen=EVENTS_MAXLEN, approximate=True
    )


def update_run(
    client: redis.Redis,
    run_id: str,
    decide: Decision,
    publish: tuple[str, str] | None = None,
    fence: Fence | None = None,
    also: AlsoQueue | None = None,
) -> RunView:
    """Applies decide's changes to the run hash and announces the new view, atomically.

    decide may raise RunStateError to refuse the change; publish is an optional
    (channel, message) sent in the same transaction; with a fence the change is refused
    (LeaseLostError) unless the lease key still names the owner; also queues more commands.
    """
    key = run_key(run_id)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key, *(fence[:1] if fence else ()))
                current = text_hash(pipe.hgetall(key))
                if not current:
                    pipe.unwatch()
                    raise run_not_found(run_id)
                if fence is not None and pipe.get(fence[0]) != fence[1]:
                    pipe.unwatch()
                    raise lease_lost(run_id)
                try:
                    changes, removals = decide(current)
                except RunStateError:
                    pipe.unwatch()
                    raise
                updated = {name: value for name, value in current.items() if name not in removals}
                updated.update(changes)
                view = run_view_from_hash(run_id, updated)
                pipe.multi()
                pipe.hset(key, mapping=hash_mapping(changes))
                if removals:
                    pipe.hdel(key, *removals)
                add_event(pipe, "run", view.model_dump_json())
                if publish is not None:
                    pipe.publish(*publish)
                if also is not None:
                    also(pipe, updated)
                pipe.execute()
                return view
            except redis.WatchError:
                continue


def epoch_fields(metrics: EpochMetrics, current: dict[str, Any]) -> dict[str, str]:
    """The hash fields an epoch updates, given the current epoch_seconds and best_val_loss."""
    seconds = json.loads(current.get("epoch_seconds") or "[]") + [metrics.epoch_seconds]
    fields = {
        "epochs_done": str(metrics.epoch),
        "epoch_seconds": json.dumps(seconds),
        "seconds_per_epoch": repr(statistics.median(seconds)),
    }
    best_val_loss = current.get("best_val_loss")
    # The best epoch is the one early stopping keeps: the lowest validation loss.
    if best_val_loss in (None, "") or metrics.val_loss < float(best_val_loss):
        fields.update(
            best_epoch=str(metrics.epoch),
            best_val_loss=repr(metrics.val_loss),
            best_val_accuracy=repr(metrics.val_accuracy),
        )
    return fields


def append_epoch(
    client: redis.Redis, run_id: str, metrics: EpochMetrics, fence: Fence | None = None
) -> bool:
    """Appends one finished epoch to the run's stream and hash; False if already stored, or
    if the run has finished or is gone (its record is closed).

    With a fence the epoch is stored only while the lease holds, else LeaseLostError.
    """
    key, metrics_key = run_key(run_id), run_metrics_key(run_id)
    names = ("epochs_done", "best_val_loss", "epoch_seconds", "status")
    metrics_json = metrics.model_dump_json()
    payload = f'{{"run_id":{json.dumps(run_id)},"metrics":{metrics_json}}}'
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key, *(fence[:1] if fence else ()))
                if fence is not None and pipe.get(fence[0]) != fence[1]:
                    pipe.unwatch()
                    raise lease_lost(run_id)
                values = cast(list[str | None], pipe.hmget(key, names))
                current = dict(zip(names, values, strict=True))
                status = current["status"]
                closed = status is None or RunStatus(status).finished
                if closed or metrics.epoch <= int(current["epochs_done"] or 0):
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.hset(key, mapping=hash_mapping(epoch_fields(metrics, current)))
                # The epoch number is the entry id, so the stream cannot hold an epoch twice.
                pipe.xadd(metrics_key, {"data": metrics_json}, id=f"{metrics.epoch}-1")
                add_event(pipe, "epoch", payload)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def set_progress(
    client: redis.Redis, run_id: str, progress: BatchProgress, fence: Fence | None = None
) -> bool:
    """Stores and announces the epoch's progress; with a fence, only while the lease holds."""
    data = progress.model_dump_json()
    payload = f'{{"run_id":{json.dumps(run_id)},"progress":{data}}}'
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                if fence is not None:
                    pipe.watch(fence[0])
                    if pipe.get(fence[0]) != fence[1]:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                pipe.hset(run_key(run_id), "progress", data)
                add_event(pipe, "progress", payload)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def set_initial_activations(
    client: redis.Redis, run_id: str, activations: ActivationStatistics, fence: Fence | None = None
) -> RunView:
    """Stores and announces the hidden layers' statistics before the first weight update,
    only while the run is running; with a fence, only while the lease holds."""

    def decide(current: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
        if current.get("status") != RunStatus.running.value:
            raise RunStateError(f"Run {run_id} is {current.get('status')}, not running.")
        return {"initial_activations": activations.model_dump_json()}, ()

    return update_run(client, run_id, decide, fence=fence)


def remove_run(client: redis.Redis, run_id: str) -> dict[str, str]:
    """Deletes a run that is not running, with its metrics and index entries, and announces
    it; returns the hash it had, whose summary names the files to remove."""
    key = run_key(run_id)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                current = text_hash(pipe.hgetall(key))
                if not current:
                    pipe.unwatch()
                    raise run_not_found(run_id)
                if current["status"] == RunStatus.running.value:
                    pipe.unwatch()
                    raise RunStateError(
                        f"Run {run_id} is running; cancel it and delete it once it has stopped."
                    )
                pipe.multi()
                pipe.delete(key, run_metrics_key(run_id), run_lease_key(run_id))
                pipe.zrem(RUN_INDEX_KEY, run_id)
                pipe.zrem(ACTIVE_RUNS_KEY, run_id)
                pipe.zrem(REQUEUED_RUNS_KEY, run_id)
                add_event(pipe, "deleted", json.dumps({"run_id": run_id}))
                pipe.execute()
                return current
            except redis.WatchError:
                continue
