"""The API under load: metrics reads by 50 concurrent clients, then 1,000 launches in a burst.

Valkey and uvicorn (one process, as `make run` starts it) are real; no worker consumes
the queue, so every launched run stays queued and can be counted. Ends with
``RESULT metrics_rps X``, ``RESULT metrics_p99_ms X`` and ``RESULT burst_runs_stored N``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from backend.contract import TASK_QUEUE, SeluSpec  # noqa: E402
from backend.settings import Settings  # noqa: E402
from backend.store import RunStore  # noqa: E402
from bench.common import say, stand_in_epoch  # noqa: E402
from tests.support.processes import service_env, start_api, start_redis  # noqa: E402

EPOCHS = 100
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "10"))
BURST = int(os.environ.get("BENCH_BURST", "1000"))
BURST_CONNECTIONS = 100



def hundred_epoch_run(store: RunStore) -> str:
    run_id = store.create_run(SeluSpec(dataset="synthetic", max_epochs=EPOCHS)).id
    store.mark_running(run_id, "bench@localhost", "CPU")
    for epoch in range(1, EPOCHS + 1):
        store.record_epoch(run_id, stand_in_epoch(epoch))
    return run_id


class RawHttpClient:
    """HTTP/1.1 on one keep-alive connection over asyncio streams.

    httpx's async client, measured here, spends more CPU per request than the API does,
    so it would measure itself; this client only writes a request and reads the answer.
    """

    def __init__(self, api_url: str) -> None:
        address = urlsplit(api_url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawHttpClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            raise RuntimeError("Open the client with `async with` before sending requests.")
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        answer_head = await self.reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in answer_head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return int(answer_head.split()[1]), await self.reader.readexactly(length)


async def metrics_load(api_url: str, run_id: str) -> tuple[int, list[float]]:
    """CLIENTS clients each GET the metrics back to back for LOAD_SECONDS."""
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + LOAD_SECONDS

    async def one_client() -> None:
        async with RawHttpClient(api_url) as client:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                status, body = await client.request("GET", f"/api/runs/{run_id}/metrics")
                if status != 200 or body.count(b'"epoch":') != EPOCHS:
                    raise RuntimeError(f"A metrics read answered {status}.")
                latencies.append((time.perf_counter() - sent) * 1000)

    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return round(len(latencies) / (time.perf_counter() - started)), latencies


async def launch_burst(api_url: str) -> tuple[list[str], float]:
    """BURST launches at once, spread over BURST_CONNECTIONS connections."""
    spec = {"variant": "selu", "dataset": "synthetic", "max_epochs": 3}
    run_ids: list[str] = []
    pending = iter(range(BURST))

    async def one_connection() -> None:
        async with RawHttpClient(api_url) as client:
            for number in pending:
                body = json.dumps({**spec, "name": f"burst {number}"}).encode()
                status, answer = await client.request("POST", "/api/runs", body)
                if status != 201:
                    raise RuntimeError(f"A launch answered {status}: {answer[:200]!r}.")
                run_ids.append(json.loads(answer)["id"])

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(BURST_CONNECTIONS)))
    return run_ids, time.perf_counter() - started


def stored_exactly_once(store: RunStore, run_ids: list[str], existing: set[str]) -> tuple[int, int]:
    """(runs stored exactly once with exactly one task, runs or tasks that nobody launched)."""
    answered = Counter(run_ids)
    # list_runs only returns indexed runs whose hash exists.
    stored = Counter(view.id for view in store.list_runs() if view.id not in existing)
    tasks: Counter[str] = Counter()
    for raw in store.redis.lrange(TASK_QUEUE, 0, -1):
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        tasks[args[0]] += 1
    exactly_once = sum(
        1 for run_id in answered if answered[run_id] == stored[run_id] == tasks[run_id] == 1
    )
    strays = sum((stored - answered).values()) + sum((tasks - answered).values())
    return exactly_once, strays


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="curvelab-bench-"))
    redis_server = start_redis(base / "redis", db=10)
    api = None
    try:
        api = start_api(service_env(redis_server.url, base / "var"), base / "api.log")
        settings = Settings(redis_url=redis_server.url, var_dir=base / "var")
        store = RunStore.from_settings(settings)
        run_id = hundred_epoch_run(store)

        rps, latencies = asyncio.run(metrics_load(api.url, run_id))
        latencies.sort()
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        say(f"metrics of a {EPOCHS}-epoch run, {CLIENTS} clients, {LOAD_SECONDS:.0f} s:")
        say(f"  {len(latencies)} reads, median {statistics.median(latencies):.1f} ms")
        say(f"RESULT metrics_rps {rps}")
        say(f"RESULT metrics_p99_ms {p99:.1f}")

        run_ids, elapsed = asyncio.run(launch_burst(api.url))
        stored, strays = stored_exactly_once(store, run_ids, {run_id})
        say(f"{BURST} launches in {elapsed:.1f} s ({BURST / elapsed:.0f}/s); {strays} strays")
        say(f"RESULT burst_runs_stored {stored}")
        return 0 if stored == BURST and strays == 0 else 1
    finally:
        if api is not None:
            api.stop()
        redis_server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
