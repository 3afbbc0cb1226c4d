"""Health and the variant catalogue the frontend builds its launch form from."""

from __future__ import annotations

from typing import Any, Literal

import redis
from fastapi import APIRouter
from pydantic import BaseModel

from backend.contract import SPEC_CLASSES
from backend.deps import ReaderDep, SettingsDep

router = APIRouter(prefix="/api", tags=["meta"])

VARIANT_TITLES = {
    "baseline": "baseline",
    "batchnorm": "BatchNorm",
    "selu": "SELU",
    "alpha_dropout": "alpha dropout",
    "onecycle": "1cycle",
}
# The form reads best with what users change most first; other fields follow in spec order.
PARAMETER_ORDER = [
    "name", "dataset", "learning_rate", "peak_learning_rate", "max_epochs", "batch_size",
    "depth", "width", "patience", "dropout_rate", "mc_samples", "seed",
]  # fmt: skip


class Health(BaseModel):
    redis: bool
    workers: list[str]
    status: Literal["ok", "degraded"]


class Parameter(BaseModel):
    name: str
    type: Literal["number", "integer", "string"]
    default: Any
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    exclusive_maximum: bool = False
    max_length: int | None = None
    choices: list[str] | None = None
    description: str = ""


class Variant(BaseModel):
    name: str
    title: str
    description: str
    parameters: list[Parameter]


class VariantCatalogue(BaseModel):
    variants: list[Variant]


@router.get("/health")
async def health(reader: ReaderDep, settings: SettingsDep) -> Health:
    """Whether Redis answers and which workers beat recently."""
    try:
        await reader.ping()
        # Three missed beats in a row mean the worker is gone.
        workers = await reader.workers_seen_within(3 * settings.heartbeat_seconds)
    except (redis.ConnectionError, redis.TimeoutError):
        return Health(redis=False, workers=[], status="degraded")
    return Health(redis=True, workers=workers, status="ok" if workers else "degraded")


@router.get("/variants")
async def variants() -> VariantCatalogue:
    """Each variant with its parameters, defaults and bounds, read from the run specs."""
    return VariantCatalogue(variants=[_describe(name) for name in SPEC_CLASSES])


def _describe(variant: str) -> Variant:
    schema = SPEC_CLASSES[variant].model_json_schema()
    properties: dict[str, dict[str, Any]] = schema["properties"]
    names = [name for name in properties if name != "variant"]
    names.sort(key=lambda name: PARAMETER_ORDER.index(name) if name in PARAMETER_ORDER else 99)
    return Variant(
        name=variant,
        title=VARIANT_TITLES.get(variant, variant),
        description=schema.get("description", ""),
        parameters=[_parameter(name, properties[name]) for name in names],
    )


def _parameter(name: str, field: dict[str, Any]) -> Parameter:
    lower = field.get("minimum", field.get("exclusiveMinimum"))
    upper = field.get("maximum", field.get("exclusiveMaximum"))
    return Parameter(
        name=name,
        type=field.get("type", "string"),
        default=field.get("default"),
        minimum=lower,
        exclusive_minimum="exclusiveMinimum" in field,
        maximum=upper,
        exclusive_maximum="exclusiveMaximum" in field,
        max_length=field.get("maxLength"),
        choices=field.get("enum"),
        description=field.get("description", ""),
    )
