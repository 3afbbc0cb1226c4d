"""The compose file agrees with the code: modules exist, settings are real, workers get GPUs.

No Docker engine runs on the machines that test this project, so the stack itself
is checked by reading its definition rather than by starting it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from backend.settings import Settings
from docker.requirements_for import requirements_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _module_of(command: list[str]) -> tuple[str, str | None]:
    """The Python module (and attribute) a uvicorn or celery command line starts."""
    if command[0] == "uvicorn":
        module, _, attribute = command[1].partition(":")
        return module, attribute
    if command[0] == "celery":
        return command[command.index("-A") + 1], "app"
    raise AssertionError(f"Unexpected command {command!r}")


@pytest.mark.parametrize("service", ["api", "worker"])
def test_every_command_names_a_module_of_this_repository(service):
    module, attribute = _module_of(SERVICES[service]["command"])
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve().is_relative_to(ROOT)
    source = Path(spec.origin).read_text()
    assert re.search(rf"^(def {attribute}\b|{attribute}\s*=)", source, re.MULTILINE)


@pytest.mark.parametrize("service", ["api", "worker"])
def test_every_variable_set_is_one_the_settings_read(service):
    environment = SERVICES[service]["environment"]
    read = {f"CURVELAB_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= read, set(environment) - read


def test_the_worker_reserves_gpus_and_restarts():
    worker = SERVICES["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert worker["restart"] in ("always", "unless-stopped", "on-failure")
    assert "healthcheck" in worker


def test_redis_is_private_persistent_and_password_protected():
    redis = SERVICES["redis"]
    assert "ports" not in redis
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "${CURVELAB_REDIS_PASSWORD:?" in command[command.index("--requirepass") + 1]
    assert any(volume.startswith("redis-data:") for volume in redis["volumes"])
    url = SERVICES["api"]["environment"]["CURVELAB_REDIS_URL"]
    assert url.startswith("redis://:${CURVELAB_REDIS_PASSWORD:?")


def test_the_api_listening_beyond_localhost_demands_a_token():
    environment = SERVICES["api"]["environment"]
    assert environment["CURVELAB_HOST"] == "0.0.0.0"
    assert environment["CURVELAB_API_TOKEN"].startswith("${CURVELAB_API_TOKEN:?")


def test_the_api_image_carries_no_tensorflow_and_the_worker_takes_cuda():
    api = requirements_for("api", ROOT / "pyproject.toml")
    worker = requirements_for("worker", ROOT / "pyproject.toml")
    assert not [r for r in api if r.startswith(("tensorflow", "keras"))]
    assert any(r.startswith("fastapi") for r in api)
    assert any(r.startswith("tensorflow[and-cuda]") for r in worker)
    assert not [r for r in worker if r.startswith(("fastapi", "uvicorn"))]
