"""The API process never loads TensorFlow or worker code, even after serving requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.settings import Settings
from tests.support.processes import REPO_ROOT
from tests.support.stack import Stack

API_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from backend.main import create_app
from backend.settings import Settings

settings = Settings(redis_url=sys.argv[1], var_dir=sys.argv[2])
with TestClient(create_app(settings)) as client:
    launched = client.post("/api/runs", json={"variant": "selu", "dataset": "synthetic"})
    answers = [
        launched.status_code,
        client.get("/api/runs").status_code,
        client.get("/api/variants").status_code,
        client.get("/api/health").status_code,
        client.get(f"/api/runs/{launched.json()['id']}/metrics").status_code,
    ]
heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("tensorflow", "keras", "worker", "numpy")
)
print(json.dumps({"answers": answers, "heavy": heavy}))
"""


def test_the_api_never_imports_tensorflow_keras_or_worker_code(idle_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-c", API_PROBE, idle_settings.effective_redis_url,
         str(idle_settings.var_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip

    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["answers"] == [201, 200, 200, 200, 200]
    assert probe["heavy"] == []


def test_the_running_api_process_has_no_tensorflow_library_mapped(stack: Stack) -> None:
    maps = Path(f"/proc/{stack.api.process.pid}/maps")
    if not maps.exists():
        pytest.skip("This system has no /proc to read a process's mapped libraries from.")

    assert "tensorflow" not in maps.read_text()
