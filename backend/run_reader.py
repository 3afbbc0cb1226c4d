"""The API's async reads of run state: what GET requests answer, without a thread per request.

RunStore stays the one writer (and the worker's reader); these reads use the same keys
and the same hash decoding, on the redis.asyncio client of the API's event loop.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any, cast

import redis.asyncio

from backend.contract import RUN_INDEX_KEY, WORKERS_KEY, run_key, run_metrics_key
from backend.run_transactions import run_not_found
from backend.views import RunView, run_view_from_hash

# Metrics documents kept in memory; a document is valid while its run's epoch count holds.
METRICS_CACHE_RUNS = 256


class RunReader:
    """Reads runs, metrics and live workers for GET requests."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client
        self._metrics_documents: OrderedDict[str, tuple[str, str]] = OrderedDict()

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def require_run(self, run_id: str) -> RunView:
        fields = cast(dict[str, str], await self._redis.hgetall(run_key(run_id)))
        if not fields:
            raise run_not_found(run_id)
        return run_view_from_hash(run_id, fields)

    async def list_runs(self, limit: int | None = None) -> list[RunView]:
        """Runs newest first; a run deleted while listing is left out."""
        stop = -1 if limit is None else max(limit, 1) - 1
        run_ids = cast(list[str], await self._redis.zrevrange(RUN_INDEX_KEY, 0, stop))
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id in run_ids:
                pipe.hgetall(run_key(run_id))
            hashes = cast(list[dict[str, str]], await pipe.execute())
        return [
            run_view_from_hash(run_id, fields)
            for run_id, fields in zip(run_ids, hashes, strict=True)
            if fields
        ]

    async def metrics_json(self, run_id: str) -> list[str]:
        """Each finished epoch's EpochMetrics as stored JSON, in epoch order."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(run_key(run_id))
            pipe.xrange(run_metrics_key(run_id))
            exists, entries = cast(list[Any], await pipe.execute())
        if not exists:
            raise run_not_found(run_id)
        return [fields["data"] for _entry_id, fields in entries]

    async def metrics_document(self, run_id: str) -> str:
        """The JSON answer of GET /api/runs/{id}/metrics: {"run_id": ..., "epochs": [...]}.

        Epochs are only ever appended, each in the same transaction that raises the run's
        epochs_done, so a document built for one count stays right until the count moves.
        Checking the count is one small read instead of a hundred parsed stream entries.
        """
        epochs_done = cast(str | None, await self._redis.hget(run_key(run_id), "epochs_done"))
        if epochs_done is None:
            raise run_not_found(run_id)
        cached = self._metrics_documents.get(run_id)
        if cached is not None and cached[0] == epochs_done:
            self._metrics_documents.move_to_end(run_id)
            return cached[1]
        entries = cast(list[Any], await self._redis.xrange(run_metrics_key(run_id)))
        epochs = ",".join(fields["data"] for _entry_id, fields in entries)
        # The entries were validated when the worker stored them; they are sent as stored.
        document = f'{{"run_id":{json.dumps(run_id)},"epochs":[{epochs}]}}'
        if len(entries) == int(epochs_done):
            self._metrics_documents[run_id] = (epochs_done, document)
            if len(self._metrics_documents) > METRICS_CACHE_RUNS:
                self._metrics_documents.popitem(last=False)
        return document

    async def workers_seen_within(self, seconds: float) -> list[str]:
        names = await self._redis.zrangebyscore(WORKERS_KEY, time.time() - seconds, "+inf")
        return sorted(cast(list[str], names))
