"""Run specs small enough for a busy CPU: the service tests are about the service, not depth."""

from __future__ import annotations

SMALL_NET = {"dataset": "synthetic", "depth": 2, "width": 16, "batch_size": 64}
