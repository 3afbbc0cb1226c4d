"""Issue 6's load: 200 concurrent launches, then 100 SSE clients watching a run's events.

Valkey and uvicorn (one process, as `make run` starts it) are real, and the API runs with
an API token as it would beyond localhost: launches send the bearer header, and the SSE
clients hold the session cookie, as browsers do. No worker consumes the queue, so every
launched task can be counted there; the queue is emptied afterwards.

Part 1 opens LAUNCHES connections and sends one POST /api/runs on each at the same moment,
then checks every answered run is stored exactly once with exactly one task queued.
Part 2 connects SSE_CLIENTS streams, then plays a run through the RunStore (what a worker
writes: running, progress twice per epoch, each epoch, the end) and checks that every client
received every event written meanwhile, in order, nothing twice.
Ends with ``RESULT concurrent_launch_runs_stored N``, ``RESULT concurrent_launch_tasks_queued
N``, ``RESULT sse_clients_served N`` and ``RESULT sse_epoch_latency_p95_ms X``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import httpx  # noqa: E402

from backend.contract import (  # noqa: E402
    EVENTS_KEY,
    TASK_QUEUE,
    BatchProgress,
    RunStatus,
    SeluSpec,
)
from backend.settings import Settings  # noqa: E402
from backend.store import RunStore  # noqa: E402
from bench.common import say, stand_in_epoch  # noqa: E402
from tests.support.processes import service_env, start_api, start_redis  # noqa: E402
from tests.support.sse import parse_events  # noqa: E402

LAUNCHES = int(os.environ.get("BENCH_LAUNCHES", "200"))
SSE_CLIENTS = int(os.environ.get("BENCH_SSE_CLIENTS", "100"))
EPOCHS = int(os.environ.get("BENCH_EPOCHS", "30"))
# A fast run: an epoch every 0.2 s, with a progress report in between.
PACE_SECONDS = 0.1



async def launch_all_at_once(api_url: str, headers: dict[str, str]) -> tuple[list[str], float]:
    """LAUNCHES POST /api/runs, each on its own connection, released together."""
    limits = httpx.Limits(max_connections=LAUNCHES, max_keepalive_connections=LAUNCHES)
    timeout = httpx.Timeout(60)
    async with httpx.AsyncClient(base_url=api_url, headers=headers, limits=limits,
                                 timeout=timeout) as client:  # fmt: skip
        go = asyncio.Event()

        async def one(number: int) -> str:
            body = {"variant": "selu", "dataset": "synthetic", "max_epochs": 3,
                    "name": f"concurrent {number}"}  # fmt: skip
            await go.wait()
            response = await client.post("/api/runs", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"A launch answered {response.status_code}: {response.text}")
            return str(response.json()["id"])

        tasks = [asyncio.create_task(one(number)) for number in range(LAUNCHES)]
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        go.set()
        run_ids = await asyncio.gather(*tasks)
        return list(run_ids), time.perf_counter() - started


def count_exactly_once(store: RunStore, run_ids: list[str]) -> tuple[int, int, int]:
    """(runs stored exactly once, runs with exactly one queued task, runs or tasks not launched)."""
    answered = Counter(run_ids)
    stored = Counter(view.id for view in store.list_runs())
    tasks: Counter[str] = Counter()
    for raw in store.redis.lrange(TASK_QUEUE, 0, -1):
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        tasks[args[0]] += 1
    runs_once = sum(1 for run_id in answered if answered[run_id] == stored[run_id] == 1)
    tasks_once = sum(1 for run_id in answered if answered[run_id] == tasks[run_id] == 1)
    strays = sum((stored - answered).values()) + sum((tasks - answered).values())
    return runs_once, tasks_once, strays



def play_run(store: RunStore, run_id: str, written: dict[int, float]) -> None:
    """What a worker writes for one run, paced like a fast one."""
    store.mark_running(run_id, "bench@localhost", "CPU")
    for epoch in range(1, EPOCHS + 1):
        for batches_done in (1, 2):
            store.record_progress(
                run_id, BatchProgress(epoch=epoch, batches_done=batches_done, batches_total=3)
            )
            time.sleep(PACE_SECONDS / 2)
        written[epoch] = time.perf_counter()
        store.record_epoch(run_id, stand_in_epoch(epoch, PACE_SECONDS * 2))
        time.sleep(PACE_SECONDS / 2)
    store.finish_run(run_id, RunStatus.succeeded)


class Watcher:
    """One SSE client: every event id it receives, and when each epoch of the run arrived."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.ids: list[str] = []
        self.epoch_arrivals: dict[int, float] = {}
        self.connected = asyncio.Event()

    async def watch(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/api/events") as response:
            if response.status_code != 200:
                raise RuntimeError(f"An SSE client was answered {response.status_code}.")
            lines = response.aiter_lines()
            # The first line ("retry: ...") comes once the server has subscribed this client.
            pending: list[str] = [await anext(lines)]
            self.connected.set()
            async for line in lines:
                pending.append(line)
                if line != "":
                    continue
                for event in parse_events(iter(pending)):
                    if event is not None and self.note(event.id, event.type, event.json()):
                        return
                pending = []

    def note(self, event_id: str, event_type: str, payload: dict) -> bool:
        """Records one event; True once the run's final status has arrived."""
        self.ids.append(event_id)
        if event_type == "epoch" and payload["run_id"] == self.run_id:
            self.epoch_arrivals[payload["metrics"]["epoch"]] = time.perf_counter()
        finished = event_type == "run" and payload["id"] == self.run_id
        return finished and payload["status"] == RunStatus.succeeded


async def watch_a_run(api_url: str, token: str, store: RunStore, run_id: str) -> tuple[
    list[Watcher], list[str], dict[int, float]
]:  # fmt: skip
    limits = httpx.Limits(max_connections=SSE_CLIENTS + 1)
    timeout = httpx.Timeout(30, read=120)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=timeout) as client:
        # Like the dashboard: trade the token for the session cookie EventSource sends.
        opened = await client.post("/api/session", headers={"Authorization": f"Bearer {token}"})
        opened.raise_for_status()
        watchers = [Watcher(run_id) for _ in range(SSE_CLIENTS)]
        streams = [asyncio.create_task(watcher.watch(client)) for watcher in watchers]
        await asyncio.wait_for(
            asyncio.gather(*(watcher.connected.wait() for watcher in watchers)), 60
        )
        latest: Any = store.redis.xrevrange(EVENTS_KEY, count=1)
        start_id = latest[0][0] if latest else "0-0"
        written: dict[int, float] = {}
        await asyncio.to_thread(play_run, store, run_id, written)
        await asyncio.wait_for(asyncio.gather(*streams), 60)
    entries: Any = store.redis.xrange(EVENTS_KEY, f"({start_id}", "+")
    expected = [str(entry_id) for entry_id, _ in entries]
    return watchers, expected, written


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="curvelab-bench-"))
    redis_server = start_redis(base / "redis", db=9)
    token = secrets.token_urlsafe(24)
    api = None
    try:
        env = service_env(redis_server.url, base / "var", CURVELAB_API_TOKEN=token)
        api = start_api(env, base / "api.log")
        store = RunStore.from_settings(Settings(redis_url=redis_server.url, var_dir=base / "var"))

        bearer = {"Authorization": f"Bearer {token}"}
        run_ids, elapsed = asyncio.run(launch_all_at_once(api.url, bearer))
        runs_once, tasks_once, strays = count_exactly_once(store, run_ids)
        say(f"{LAUNCHES} concurrent launches answered in {elapsed:.2f} s; {strays} strays")
        say(f"RESULT concurrent_launch_runs_stored {runs_once}")
        say(f"RESULT concurrent_launch_tasks_queued {tasks_once}")
        store.redis.delete(TASK_QUEUE)

        run_id = store.create_run(SeluSpec(dataset="synthetic", max_epochs=EPOCHS)).id
        watchers, expected, written = asyncio.run(watch_a_run(api.url, token, store, run_id))
        served = sum(1 for watcher in watchers if watcher.ids == expected)
        latencies = sorted(
            (watcher.epoch_arrivals[epoch] - written[epoch]) * 1000
            for watcher in watchers
            for epoch in watcher.epoch_arrivals
        )
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        say(f"{SSE_CLIENTS} SSE clients, {len(expected)} events each expected "
            f"({EPOCHS} epochs); epoch latency median {statistics.median(latencies):.1f} ms, "
            f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms")  # fmt: skip
        say(f"RESULT sse_clients_served {served}")
        say(f"RESULT sse_epoch_latency_p95_ms {p95:.1f}")
        perfect = runs_once == tasks_once == LAUNCHES and strays == 0 and served == SSE_CLIENTS
        return 0 if perfect else 1
    finally:
        if api is not None:
            api.stop()
        redis_server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
