"""One settings object for the API and the worker, read from CURVELAB_* variables."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.contract import CHECKPOINTS_FOLDER


class Settings(BaseSettings):
    # An empty variable (as docker compose writes for an unset optional one) means "not set".
    model_config = SettingsConfigDict(env_prefix="CURVELAB_", extra="ignore", env_ignore_empty=True)

    redis_url: str | None = Field(
        None, description="Redis or Valkey URL; unset, `make run` starts an embedded Valkey."
    )
    host: str = Field("127.0.0.1", description="Address the API binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    var_dir: Path = Field(Path("var"), description="Models, dataset cache and embedded Redis data.")
    cifar10_path: Path | None = Field(
        None,
        description="Local CIFAR-10 copy (class-folder or python-format archive or folder); "
        "unset, Keras downloads the official dataset.",
    )
    api_token: SecretStr | None = Field(
        None, description="When set, mutating endpoints and the event stream require it."
    )
    cors_origins: list[str] = Field(default_factory=list, description="Allowed browser origins.")
    heartbeat_seconds: float = Field(5.0, gt=0, description="How often a worker renews its lease.")
    node_name: str = Field(
        default_factory=socket.gethostname,
        description="Names the machine whose GPUs workers share; one per GPU host.",
    )
    worker_lost_after_seconds: float = Field(
        60.0, gt=0, description="A run whose worker is silent this long goes back to the queue."
    )
    max_worker_losses: int = Field(
        2, ge=1, le=100, description="Worker losses after which a run fails instead of resuming."
    )
    broker_visibility_timeout_seconds: float = Field(
        3600.0,
        gt=0,
        description="Seconds before the broker hands an unacknowledged task to another worker; "
        "the run lease makes that duplicate harmless.",
    )

    @property
    def models_dir(self) -> Path:
        return self.var_dir / "models"

    @property
    def checkpoints_dir(self) -> Path:
        return self.var_dir / CHECKPOINTS_FOLDER

    @property
    def dataset_cache_dir(self) -> Path:
        return self.var_dir / "datasets"

    @property
    def effective_redis_url(self) -> str:
        """The configured URL; the default matches the embedded server that `make run` starts."""
        return self.redis_url or "redis://127.0.0.1:6399/0"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
