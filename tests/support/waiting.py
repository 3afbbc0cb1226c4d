"""Waiting for a run to reach a state, through the public API."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from backend.contract import RunStatus


def wait_for_run(
    api: httpx.Client,
    run_id: str,
    condition: Callable[[dict], bool] = lambda view: RunStatus(view["status"]).finished,
    timeout: float = 120.0,
) -> dict:
    """Polls GET /api/runs/{id} until condition holds; fails with the last view otherwise."""
    deadline = time.monotonic() + timeout
    view: dict = {}
    while time.monotonic() < deadline:
        view = api.get(f"/api/runs/{run_id}").json()
        if condition(view):
            return view
        time.sleep(0.1)
    raise AssertionError(f"Run {run_id} did not reach the expected state in time: {view}")
