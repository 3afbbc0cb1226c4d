"""RunStore: every Redis read and write of run state, shared by the API and the worker.

Each state change happens in one MULTI/EXEC together with the event that
announces it, so a reader of the event stream never sees a change the hash
does not hold, and the hash never holds a change nobody was told about.
Transitions that depend on the current status WATCH the run hash and retry,
so a cancel racing a worker's start, finish or an epoch end cannot half-apply.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import cast

import redis
from redis.client import PubSub

from backend.contract import (
    ACTIVE_RUNS_KEY,
    REQUEUED_RUNS_KEY,
    RUN_INDEX_KEY,
    ActivationStatistics,
    BatchProgress,
    EpochMetrics,
    LrFinderResult,
    LrFinderSpec,
    RunKind,
    RunSpec,
    RunStatus,
    RunSummary,
    parse_stored_spec,
    run_cancel_channel,
    run_key,
    run_lease_key,
    run_metrics_key,
)
from backend.run_files import remove_run_files
from backend.run_leases import Lease, RunLeases
from backend.run_transactions import (
    LeaseLostError,
    RunNotFoundError,
    RunStateError,
    add_event,
    append_epoch,
    hash_mapping,
    remove_run,
    run_not_found,
    set_initial_activations,
    set_progress,
    text_hash,
    update_run,
)
from backend.settings import Settings
from backend.views import RunView, run_view_from_hash
from backend.worker_registry import WorkerRegistry

__all__ = ["Lease", "LeaseLostError", "RunNotFoundError", "RunStateError", "RunStore"]

AnySpec = RunSpec | LrFinderSpec


class RunStore:
    """Reads and writes runs, their metrics and the global event stream."""

    def __init__(self, client: redis.Redis, var_dir: Path) -> None:
        self._redis = client
        self._var_dir = var_dir
        self.workers = WorkerRegistry(client)
        self.leases = RunLeases(client)

    @classmethod
    def from_settings(cls, settings: Settings) -> RunStore:
        client = redis.Redis.from_url(
            settings.effective_redis_url, decode_responses=True, health_check_interval=30
        )
        return cls(client, settings.var_dir)

    @property
    def redis(self) -> redis.Redis:
        return self._redis

    def close(self) -> None:
        self._redis.close()

    def ping(self) -> bool:
        return bool(self._redis.ping())

    # Creating and reading runs.

    def create_run(self, spec: AnySpec, kind: RunKind = RunKind.train) -> RunView:
        """Stores a new queued run and announces it; the caller then queues the task."""
        run_id = secrets.token_hex(8)
        # A range test sweeps at most one epoch.
        max_epochs = 1 if isinstance(spec, LrFinderSpec) else spec.max_epochs
        fields = {
            "name": spec.name,
            "variant": spec.variant,
            "kind": kind.value,
            "status": RunStatus.queued.value,
            "spec": spec.model_dump_json(),
            "created_at": repr(time.time()),
            "max_epochs": str(max_epochs),
            "epochs_done": "0",
            "cancel_requested": "0",
        }
        view = run_view_from_hash(run_id, fields)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(run_key(run_id), mapping=hash_mapping(fields))
            pipe.zadd(RUN_INDEX_KEY, {run_id: view.created_at})
            add_event(pipe, "run", view.model_dump_json())
            pipe.execute()
        return view

    def get_run(self, run_id: str) -> RunView | None:
        fields = text_hash(self._redis.hgetall(run_key(run_id)))
        return run_view_from_hash(run_id, fields) if fields else None

    def require_run(self, run_id: str) -> RunView:
        view = self.get_run(run_id)
        if view is None:
            raise run_not_found(run_id)
        return view

    def list_runs(self, limit: int | None = None) -> list[RunView]:
        """Runs newest first; a run deleted while listing is left out."""
        stop = -1 if limit is None else max(limit, 1) - 1
        run_ids = cast(list[str], self._redis.zrevrange(RUN_INDEX_KEY, 0, stop))
        with self._redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.hgetall(run_key(run_id))
            hashes: list[dict[str, str]] = pipe.execute()
        return [
            run_view_from_hash(run_id, fields)
            for run_id, fields in zip(run_ids, hashes, strict=True)
            if fields
        ]

    def count_runs(self) -> int:
        return int(self._redis.zcard(RUN_INDEX_KEY))

    def load_spec(self, run_id: str) -> tuple[RunKind, AnySpec] | None:
        """The kind and validated spec of a stored run, or None once it is deleted."""
        kind_text, spec_text = cast(
            list[str | None], self._redis.hmget(run_key(run_id), ["kind", "spec"])
        )
        if kind_text is None or spec_text is None:
            return None
        kind = RunKind(kind_text)
        return kind, parse_stored_spec(kind, json.loads(spec_text))

    def metrics_json(self, run_id: str) -> list[str] | None:
        """Each finished epoch's EpochMetrics as stored JSON in epoch order; None if no such run."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(run_key(run_id))
            pipe.xrange(run_metrics_key(run_id))
            exists, entries = pipe.execute()
        if not exists:
            return None
        return [fields["data"] for _entry_id, fields in entries]

    def get_metrics(self, run_id: str) -> list[EpochMetrics]:
        """The run's finished epochs in order; empty for an unknown run."""
        stored = self.metrics_json(run_id) or []
        return [EpochMetrics.model_validate_json(data) for data in stored]

    # What the worker reports.

    def mark_running(self, run_id: str, worker: str, device: str) -> RunView | None:
        """Moves a queued run to running; None when it was cancelled or deleted meanwhile."""

        def decide(current: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
            if current.get("status") != RunStatus.queued.value:
                raise RunStateError(f"Run {run_id} is {current.get('status')}, not queued.")
            started = {"status": RunStatus.running.value, "started_at": repr(time.time())}
            return {**started, "worker": worker, "device": device}, ()

        try:
            return update_run(self._redis, run_id, decide)
        except (RunNotFoundError, RunStateError):
            return None

    def record_epoch(self, run_id: str, metrics: EpochMetrics, lease: Lease | None = None) -> bool:
        """Appends one finished epoch; an epoch already stored is ignored (returns False).

        With a lease, the epoch is stored only while the lease holds (else LeaseLostError).
        """
        return append_epoch(self._redis, run_id, metrics, lease.fence if lease else None)

    def record_initial_activations(
        self, run_id: str, statistics: ActivationStatistics, lease: Lease | None = None
    ) -> RunView:
        """Stores the hidden layers' statistics before training (see set_initial_activations)."""
        fence = lease.fence if lease else None
        return set_initial_activations(self._redis, run_id, statistics, fence)

    def record_progress(
        self, run_id: str, progress: BatchProgress, lease: Lease | None = None
    ) -> bool:
        """Stores the epoch's progress; with a lease, only while it holds (else False)."""
        return set_progress(self._redis, run_id, progress, lease.fence if lease else None)

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        summary: RunSummary | None = None,
        lr_finder: LrFinderResult | None = None,
        error: str | None = None,
        lease: Lease | None = None,
    ) -> RunView | None:
        """Records the end of a run; None if it was already finished or deleted, or (with a
        lease) if the lease was lost to another worker."""
        if not status.finished:
            raise ValueError(f"finish_run needs a finished status, not {status.value}.")
        changes = {"status": status.value, "finished_at": repr(time.time())}
        if summary is not None:
            changes["summary"] = summary.model_dump_json()
        # A run cancelled in its first epoch has no best epoch (0); keep the live figures then.
        if summary is not None and summary.best_epoch >= 1:
            changes["best_epoch"] = str(summary.best_epoch)
            changes["best_val_accuracy"] = repr(summary.best_val_accuracy)
        if lr_finder is not None:
            changes["lr_finder"] = lr_finder.model_dump_json()
        if error is not None:
            changes["error"] = error

        def decide(current: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
            if RunStatus(current["status"]).finished:
                raise RunStateError(f"Run {run_id} has already finished.")
            return changes, ("progress",)

        def release(pipe: redis.client.Pipeline, _updated: dict[str, str]) -> None:
            pipe.delete(run_lease_key(run_id))
            pipe.zrem(ACTIVE_RUNS_KEY, run_id)
            pipe.zrem(REQUEUED_RUNS_KEY, run_id)

        fence = lease.fence if lease is not None else None
        try:
            return update_run(self._redis, run_id, decide, fence=fence, also=release)
        except (RunNotFoundError, RunStateError):
            return None

    # What users ask for.

    def request_cancel(self, run_id: str) -> RunView:
        """Cancels a queued run at once; asks a running one to stop after its current batch."""

        def decide(current: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
            status = RunStatus(current["status"])
            if status.finished:
                raise RunStateError(
                    f"Run {run_id} has already finished ({status.value}); there is nothing to "
                    "cancel."
                )
            if status is RunStatus.queued:
                cancelled = {"status": RunStatus.cancelled.value, "finished_at": repr(time.time())}
                return {**cancelled, "cancel_requested": "1"}, ()
            return {"cancel_requested": "1"}, ()

        def forget_requeue(pipe: redis.client.Pipeline, updated: dict[str, str]) -> None:
            if updated["status"] == RunStatus.cancelled.value:
                pipe.zrem(REQUEUED_RUNS_KEY, run_id)

        wake_worker = (run_cancel_channel(run_id), "cancel")
        return update_run(self._redis, run_id, decide, publish=wake_worker, also=forget_requeue)

    def is_cancel_requested(self, run_id: str) -> bool:
        return self._redis.hget(run_key(run_id), "cancel_requested") == "1"

    def cancel_subscription(self, run_id: str) -> PubSub:
        """A pub/sub connection that hears the run's cancel request the moment it is made."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(run_cancel_channel(run_id))
        return pubsub

    def delete_run(self, run_id: str) -> None:
        """Removes a run that is not running: its hash, metrics, index entry and model file."""
        removed = remove_run(self._redis, run_id)
        summary = json.loads(removed["summary"]) if removed.get("summary") else {}
        remove_run_files(self._var_dir, run_id, summary.get("model_path", ""))
