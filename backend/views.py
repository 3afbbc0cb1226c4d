"""What the API answers about a run, built from the run's Redis hash.

Pydantic and the standard library only: the worker publishes these views in
the event stream too, so importing this module must stay cheap.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from backend.contract import (
    ActivationStatistics,
    BatchProgress,
    EpochMetrics,
    LrFinderResult,
    RunKind,
    RunStatus,
    RunSummary,
)


class RunView(BaseModel):
    """One run as the dashboard and scripts see it."""

    id: str
    name: str
    variant: str
    kind: RunKind
    status: RunStatus
    spec: dict[str, Any] = Field(description="The validated spec the run trains with.")
    created_at: float = Field(description="Unix time the run was launched.")
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = Field(None, description="The Celery worker that trains it.")
    device: str | None = Field(None, description='"GPU:0 <name>" or "CPU".')
    error: str | None = Field(None, description="Why a failed run failed, as a sentence.")
    max_epochs: int
    epochs_done: int = 0
    progress: BatchProgress | None = None
    initial_activations: ActivationStatistics | None = Field(
        None,
        description="Each hidden layer's activation statistics before the first weight update, "
        "the epoch-0 point of the self-normalization view.",
    )
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    seconds_per_epoch: float | None = Field(None, description="Median epoch time so far.")
    cancel_requested: bool = False
    resumes: int = Field(0, description="Times the run went back to the queue to resume.")
    worker_losses: int = Field(0, description="Times its worker stopped beating mid-run.")
    note: str | None = Field(
        None, description="Why the run is queued again or resumed, such as a lost worker."
    )
    summary: RunSummary | None = None
    lr_finder: LrFinderResult | None = None


class RunList(BaseModel):
    runs: list[RunView]


class RunMetrics(BaseModel):
    run_id: str
    epochs: list[EpochMetrics]


def _optional_float(fields: dict[str, str], name: str) -> float | None:
    value = fields.get(name)
    return float(value) if value not in (None, "") else None


def _optional_int(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name)
    return int(value) if value not in (None, "") else None


def _optional_json(fields: dict[str, str], name: str) -> Any:
    value = fields.get(name)
    return json.loads(value) if value else None


def run_view_from_hash(run_id: str, fields: dict[str, str]) -> RunView:
    """Turns the strings of a run hash into a RunView; absent fields read as unset."""
    return RunView(
        id=run_id,
        name=fields.get("name", ""),
        variant=fields["variant"],
        kind=RunKind(fields["kind"]),
        status=RunStatus(fields["status"]),
        spec=json.loads(fields["spec"]),
        created_at=float(fields["created_at"]),
        started_at=_optional_float(fields, "started_at"),
        finished_at=_optional_float(fields, "finished_at"),
        worker=fields.get("worker") or None,
        device=fields.get("device") or None,
        error=fields.get("error") or None,
        max_epochs=int(fields["max_epochs"]),
        epochs_done=int(fields.get("epochs_done", "0")),
        progress=_optional_json(fields, "progress"),
        initial_activations=_optional_json(fields, "initial_activations"),
        best_epoch=_optional_int(fields, "best_epoch"),
        best_val_accuracy=_optional_float(fields, "best_val_accuracy"),
        seconds_per_epoch=_optional_float(fields, "seconds_per_epoch"),
        cancel_requested=fields.get("cancel_requested") == "1",
        resumes=int(fields.get("resumes") or 0),
        worker_losses=int(fields.get("worker_losses") or 0),
        note=fields.get("note") or None,
        summary=_optional_json(fields, "summary"),
        lr_finder=_optional_json(fields, "lr_finder"),
    )
