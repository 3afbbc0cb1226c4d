"""From a worker's epoch end to the event's arrival at an SSE client, over a real uvicorn.

A RedisReporter (the worker's reporter) calls on_epoch EVENTS times, PACE_SECONDS apart,
with a progress report between epochs as a real run sends; CLIENTS browsers-like SSE
clients in threads of this process note when each epoch event arrives. Both clocks are
this process's perf_counter. Valkey and the API are real processes started here.
Ends with ``RESULT live_latency_p95_ms X`` (the issue asks for under 100).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import httpx  # noqa: E402

from backend.contract import BatchProgress, SeluSpec  # noqa: E402
from backend.settings import Settings  # noqa: E402
from backend.store import RunStore  # noqa: E402
from bench.common import say, stand_in_epoch  # noqa: E402
from tests.support.processes import service_env, start_api, start_redis  # noqa: E402
from tests.support.sse import open_event_stream, parse_events  # noqa: E402
from worker.redis_reporter import RedisReporter  # noqa: E402

EVENTS = int(os.environ.get("BENCH_EVENTS", "300"))
CLIENTS = int(os.environ.get("BENCH_SSE_CLIENTS", "5"))
PACE_SECONDS = 0.02




class Watcher(threading.Thread):
    """One SSE client that records the arrival time of each epoch of one run."""

    def __init__(self, api_url: str, run_id: str) -> None:
        super().__init__(daemon=True)
        self.api_url, self.run_id = api_url, run_id
        self.arrivals: dict[int, float] = {}
        self.connected = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=httpx.Timeout(10, read=60)) as client:
            with open_event_stream(client) as response:
                lines = response.iter_lines()
                self.connected.set()
                for event in parse_events(lines):
                    if event is None or event.type != "epoch":
                        continue
                    payload = event.json()
                    if payload["run_id"] != self.run_id:
                        continue
                    self.arrivals[payload["metrics"]["epoch"]] = time.perf_counter()
                    if len(self.arrivals) == EVENTS:
                        return


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="curvelab-bench-"))
    redis_server = start_redis(base / "redis", db=11)
    api = None
    try:
        env = service_env(redis_server.url, base / "var")
        api = start_api(env, base / "api.log")
        store = RunStore.from_settings(Settings(redis_url=redis_server.url, var_dir=base / "var"))
        spec = SeluSpec(dataset="synthetic", max_epochs=EVENTS)
        run_id = store.create_run(spec).id
        store.mark_running(run_id, "bench@localhost", "CPU")
        watchers = [Watcher(api.url, run_id) for _ in range(CLIENTS)]
        for watcher in watchers:
            watcher.start()
            watcher.connected.wait(10)
        time.sleep(0.5)

        sent: dict[int, float] = {}
        with RedisReporter(store, run_id) as reporter:
            for epoch in range(1, EVENTS + 1):
                reporter.on_progress(BatchProgress(epoch=epoch, batches_done=1, batches_total=2))
                time.sleep(PACE_SECONDS / 2)
                sent[epoch] = time.perf_counter()
                reporter.on_epoch(stand_in_epoch(epoch))
                time.sleep(PACE_SECONDS / 2)
        for watcher in watchers:
            watcher.join(30)

        latencies = sorted(
            (watcher.arrivals[epoch] - sent[epoch]) * 1000
            for watcher in watchers
            for epoch in watcher.arrivals
        )
        missing = EVENTS * CLIENTS - len(latencies)
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        say(f"events {EVENTS} x clients {CLIENTS}; missing {missing}")
        say(
            f"latency ms: median {statistics.median(latencies):.2f}, p95 {p95:.2f}, "
            f"p99 {latencies[int(0.99 * (len(latencies) - 1))]:.2f}, max {latencies[-1]:.2f}"
        )
        say(f"RESULT live_latency_p95_ms {p95:.2f}")
        return 0 if missing == 0 else 1
    finally:
        if api is not None:
            api.stop()
        redis_server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
