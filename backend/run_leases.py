"""Who trains a run: a lease per run that its worker's heartbeat renews, and the transactions
that start a run under a lease, hand it back to the queue, or reap it when its worker is lost.

A lease is a key holding its owner's token that expires unless renewed. Every write a worker
makes for a run checks the lease in the same transaction, so a worker that lost its lease
(it froze, its machine vanished, Redis was away longer than the limit) cannot overwrite
what the run's next worker does: its writes are refused and it stops.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis

from backend.contract import (
    ACTIVE_RUNS_KEY,
    REQUEUED_RUNS_KEY,
    RunStatus,
    run_key,
    run_lease_key,
)
from backend.run_transactions import (
    LeaseLostError,
    add_event,
    hash_mapping,
    text_hash,
)
from backend.views import RunView, run_view_from_hash

__all__ = ["Lease", "LeaseLostError", "Reaped", "RunLeases", "StartOutcome", "StartResult"]


@dataclass(frozen=True)
class Lease:
    """One worker's claim on one run, valid while renewed within ttl_seconds."""

    run_id: str
    owner: str
    ttl_seconds: float

    @classmethod
    def new(cls, run_id: str, worker_name: str, ttl_seconds: float) -> Lease:
        # A token per attempt: the same worker taking the run again is a different owner.
        return cls(run_id, f"{worker_name}#{secrets.token_hex(6)}", ttl_seconds)

    @property
    def key(self) -> str:
        return run_lease_key(self.run_id)

    @property
    def ttl_ms(self) -> int:
        return max(int(self.ttl_seconds * 1000), 1)

    @property
    def fence(self) -> tuple[str, str]:
        """The (key, owner) pair a transaction checks before a worker's write."""
        return self.key, self.owner


class StartOutcome(enum.StrEnum):
    started = "started"
    deleted = "deleted before it started"
    finished = "already finished"
    leased = "already being trained by a live worker"
    orphaned = "running without a live worker; the reaper puts it back in the queue"


@dataclass(frozen=True)
class StartResult:
    outcome: StartOutcome
    view: RunView | None = None


@dataclass(frozen=True)
class Reaped:
    run_id: str
    status: RunStatus


# Runs a transaction body against a pipeline that WATCHes keys, retrying on a conflict.
Body = Callable[[redis.client.Pipeline], object]


def _watched(client: redis.Redis, keys: tuple[str, ...], body: Body) -> object:
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(*keys)
                return body(pipe)
            except redis.WatchError:
                continue


def _announce(pipe: redis.client.Pipeline, run_id: str, updated: dict[str, str]) -> RunView:
    view = run_view_from_hash(run_id, updated)
    add_event(pipe, "run", view.model_dump_json())
    return view


def holds(pipe: redis.client.Pipeline, lease: Lease) -> bool:
    """Inside a WATCH: whether the lease key still names this owner."""
    return cast(str | None, pipe.get(lease.key)) == lease.owner


def _requeue_changes(current: dict[str, str], reason: str, note: str) -> dict[str, str]:
    return {
        "status": RunStatus.queued.value,
        "resumes": str(int(current.get("resumes") or 0) + 1),
        "resume_reason": reason,
        "note": note,
        "requeued_at": repr(time.time()),
    }


def _leave_running(
    pipe: redis.client.Pipeline, run_id: str, current: dict[str, str], changes: dict[str, str]
) -> RunView:
    """Queues (inside MULTI) the end of a run's time on its worker, announced as a run event."""
    key = run_key(run_id)
    pipe.hset(key, mapping=hash_mapping(changes))
    pipe.hdel(key, "progress", "worker")
    pipe.zrem(ACTIVE_RUNS_KEY, run_id)
    if changes["status"] == RunStatus.queued.value:
        # Until its task is known to be sent, any reaper may send it (a duplicate is harmless).
        pipe.zadd(REQUEUED_RUNS_KEY, {run_id: time.time()})
    kept = {name: value for name, value in current.items() if name not in ("progress", "worker")}
    return _announce(pipe, run_id, {**kept, **changes})


def next_epoch(current: dict[str, str]) -> int:
    return int(current.get("epochs_done") or 0) + 1


class RunLeases:
    """The lease and recovery transactions of RunStore (store.leases)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def start(self, lease: Lease, worker: str, device: str) -> StartResult:
        """Moves a queued run to running under the lease, or says why the delivery is skipped."""
        run_id, key = lease.run_id, run_key(lease.run_id)

        def body(pipe: redis.client.Pipeline) -> StartResult:
            current = text_hash(pipe.hgetall(key))
            if not current:
                pipe.unwatch()
                return StartResult(StartOutcome.deleted)
            status = RunStatus(current["status"])
            if status.finished:
                pipe.unwatch()
                return StartResult(StartOutcome.finished)
            if pipe.exists(lease.key):
                # The broker's redelivery of a task that a live worker still trains.
                pipe.multi()
                pipe.hincrby(key, "skipped_deliveries", 1)
                pipe.execute()
                return StartResult(StartOutcome.leased)
            if status is not RunStatus.queued:
                pipe.unwatch()
                return StartResult(StartOutcome.orphaned)
            now = time.time()
            changes = {
                "status": RunStatus.running.value,
                "worker": worker,
                "device": device,
                "heartbeat_at": repr(now),
                "started_at": current.get("started_at") or repr(now),
            }
            if current.get("resume_reason"):
                changes["note"] = (
                    f"Resumed at epoch {next_epoch(current)} after {current['resume_reason']}."
                )
            pipe.multi()
            pipe.set(lease.key, lease.owner, px=lease.ttl_ms)
            pipe.hset(key, mapping=hash_mapping(changes))
            pipe.zadd(ACTIVE_RUNS_KEY, {run_id: now})
            pipe.zrem(REQUEUED_RUNS_KEY, run_id)
            view = _announce(pipe, run_id, {**current, **changes})
            pipe.execute()
            return StartResult(StartOutcome.started, view)

        return cast(StartResult, _watched(self._redis, (key, lease.key), body))

    def renew(self, lease: Lease) -> bool:
        """Extends the lease and stamps the heartbeat; False once the lease is lost."""

        def body(pipe: redis.client.Pipeline) -> bool:
            if not holds(pipe, lease):
                pipe.unwatch()
                return False
            now = time.time()
            pipe.multi()
            pipe.pexpire(lease.key, lease.ttl_ms)
            pipe.hset(run_key(lease.run_id), "heartbeat_at", repr(now))
            pipe.zadd(ACTIVE_RUNS_KEY, {lease.run_id: now}, xx=True)
            pipe.execute()
            return True

        return cast(bool, _watched(self._redis, (lease.key,), body))

    def hand_back(self, lease: Lease, reason: str) -> RunView | None:
        """Puts a running run back in the queue to resume (a worker shutting down); None if the
        lease was already lost. The caller then sends the task and confirm_requeued()."""
        run_id, key = lease.run_id, run_key(lease.run_id)

        def body(pipe: redis.client.Pipeline) -> RunView | None:
            current = text_hash(pipe.hgetall(key))
            if not holds(pipe, lease) or current.get("status") != RunStatus.running.value:
                pipe.unwatch()
                return None
            note = f"Resuming after {reason}; it continues at epoch {next_epoch(current)}."
            changes = _requeue_changes(current, reason, note)
            pipe.multi()
            pipe.delete(lease.key)
            view = _leave_running(pipe, run_id, current, changes)
            pipe.execute()
            return view

        return cast(RunView | None, _watched(self._redis, (key, lease.key), body))

    def reap_lost(self, limit_seconds: float, max_losses: int) -> list[Reaped]:
        """Runs whose lease expired: back in the queue, or failed after max_losses losses."""
        run_ids = cast(list[str], self._redis.zrange(ACTIVE_RUNS_KEY, 0, -1))
        with self._redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.exists(run_lease_key(run_id))
            alive = pipe.execute()
        reaped = []
        for run_id, has_lease in zip(run_ids, alive, strict=True):
            if not has_lease:
                status = self._reap(run_id, limit_seconds, max_losses)
                if status is not None:
                    reaped.append(Reaped(run_id, status))
        return reaped

    def _reap(self, run_id: str, limit_seconds: float, max_losses: int) -> RunStatus | None:
        key, lease_key = run_key(run_id), run_lease_key(run_id)

        def body(pipe: redis.client.Pipeline) -> RunStatus | None:
            current = text_hash(pipe.hgetall(key))
            if pipe.exists(lease_key):
                pipe.unwatch()
                return None
            if current.get("status") != RunStatus.running.value:
                pipe.multi()
                pipe.zrem(ACTIVE_RUNS_KEY, run_id)
                pipe.execute()
                return None
            changes = lost_worker_changes(current, limit_seconds, max_losses)
            pipe.multi()
            _leave_running(pipe, run_id, current, changes)
            pipe.execute()
            return RunStatus(changes["status"])

        return cast(RunStatus | None, _watched(self._redis, (key, lease_key), body))

    def requeued_unsent(self, older_than_seconds: float) -> list[str]:
        """Runs put back in the queue that long ago whose task was never confirmed sent."""
        deadline = time.time() - older_than_seconds
        return cast(list[str], self._redis.zrangebyscore(REQUEUED_RUNS_KEY, "-inf", deadline))

    def confirm_requeued(self, run_id: str) -> None:
        self._redis.zrem(REQUEUED_RUNS_KEY, run_id)


def lost_worker_changes(
    current: dict[str, str], limit_seconds: float, max_losses: int
) -> dict[str, str]:
    """What a lost worker does to a running run: queued to resume, cancelled or failed."""
    losses = int(current.get("worker_losses") or 0) + 1
    now = repr(time.time())
    base = {"worker_losses": str(losses)}
    if current.get("cancel_requested") == "1":
        return {**base, "status": RunStatus.cancelled.value, "finished_at": now}
    silent = f"no heartbeat for {limit_seconds:g} s"
    if losses >= max_losses:
        epochs = int(current.get("epochs_done") or 0)
        error = (
            f"Worker lost: the run's worker stopped beating ({silent}) {losses} times, so it is "
            f"not resumed again; its {epochs} finished epochs are kept. Launch it again to "
            "train it to the end."
        )
        return {**base, "status": RunStatus.failed.value, "finished_at": now, "error": error}
    reason = f"worker loss {losses} of {max_losses} allowed ({silent})"
    note = f"Resuming after {reason}; it continues at epoch {next_epoch(current)}."
    return {**base, **_requeue_changes(current, reason, note)}
