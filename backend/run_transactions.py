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

from backend.contract import EVENTS_KEY, EVENTS_MAXLEN, EpochMetrics, run_key
from backend.views import RunView, run_view_from_hash

# A decision looks at the current hash and returns the fields to set and those to remove.
Decision = Callable[[dict[str, str]], tuple[dict[str, str], tuple[str, ...]]]


class RunNotFoundError(LookupError):
    """The run id names no stored run."""


class RunStateError(RuntimeError):
    """The run's status does not allow the requested change."""


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
    client: redis.Redis, run_id: str, decide: Decision, publish: tuple[str, str] | None = None
) -> RunView:
    """Applies decide's changes to the run hash and announces the new view, atomically.

    decide may raise RunStateError to refuse the change; publish is an optional
    (channel, message) sent in the same transaction.
    """
    key = run_key(run_id)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                current = text_hash(pipe.hgetall(key))
                if not current:
                    pipe.unwatch()
                    raise run_not_found(run_id)
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
