"""Launching, reading, cancelling and deleting runs: HTTP translation of RunStore calls."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Response

from backend.contract import (
    EpochMetrics,
    LrFinderSpec,
    McDropoutReport,
    RunKind,
    RunSpec,
    RunStatus,
)
from backend.deps import ReaderDep, RunId, StoreDep, TaskQueueDep
from backend.queue import TaskQueue
from backend.store import AnySpec, RunStore
from backend.views import RunList, RunMetrics, RunView

router = APIRouter(prefix="/api", tags=["runs"])

CSV_COLUMNS = [name for name in EpochMetrics.model_fields]


def _launch(spec: AnySpec, kind: RunKind, store: RunStore, task_queue: TaskQueue) -> RunView:
    view = store.create_run(spec, kind)
    try:
        task_queue.enqueue(view.id)
    except Exception as error:
        reason = "The broker did not accept the run, so it was not queued; launch it again."
        store.finish_run(view.id, RunStatus.failed, error=reason)
        raise HTTPException(503, reason) from error
    return view


@router.post("/runs", status_code=201)
def launch_run(
    spec: Annotated[RunSpec, Body()], store: StoreDep, task_queue: TaskQueueDep
) -> RunView:
    """Stores a training run and queues it for the next free worker."""
    return _launch(spec, RunKind.train, store, task_queue)


@router.post("/lr-finder", status_code=201)
def launch_lr_finder(spec: LrFinderSpec, store: StoreDep, task_queue: TaskQueueDep) -> RunView:
    """Queues a learning-rate range test; its result arrives in RunView.lr_finder."""
    return _launch(spec, RunKind.lr_finder, store, task_queue)


@router.get("/runs")
async def list_runs(
    reader: ReaderDep,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="At most this many.")] = None,
) -> RunList:
    """All runs, newest first, with their status, progress and best figures."""
    return RunList(runs=await reader.list_runs(limit))


@router.get("/runs/{run_id}")
async def get_run(run_id: RunId, reader: ReaderDep) -> RunView:
    """One run."""
    return await reader.require_run(run_id)


@router.get(
    "/runs/{run_id}/metrics",
    response_model=RunMetrics,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_metrics(
    run_id: RunId,
    reader: ReaderDep,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv.")] = "json",
) -> Response:
    """Every finished epoch's metrics, as JSON or as a CSV file."""
    if format == "csv":
        return Response(
            _metrics_csv(await reader.metrics_json(run_id)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{run_id}-metrics.csv"'},
        )
    return Response(await reader.metrics_document(run_id), media_type="application/json")


def _metrics_csv(stored: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for data in stored:
        row = json.loads(data)
        # Per-layer statistics fit one cell each, layers separated by spaces.
        for column in ("activation_means", "activation_stds"):
            row[column] = " ".join(repr(value) for value in row.get(column, []))
        writer.writerow({column: row.get(column, "") for column in CSV_COLUMNS})
    return buffer.getvalue()


@router.get("/runs/{run_id}/mc-dropout")
async def get_mc_dropout(run_id: RunId, reader: ReaderDep) -> McDropoutReport:
    """The MC-dropout confidence report of a finished dropout run."""
    view = await reader.require_run(run_id)
    if view.summary is None or view.summary.mc_dropout is None:
        raise HTTPException(
            404,
            f"Run {run_id} has no MC-dropout report; only a finished alpha_dropout or onecycle "
            "run has one.",
        )
    return view.summary.mc_dropout


@router.post("/runs/{run_id}/cancel")
def cancel_run(run_id: RunId, store: StoreDep) -> RunView:
    """Cancels a queued run at once, or stops a running one after its current batch."""
    return store.request_cancel(run_id)


@router.delete("/runs/{run_id}", status_code=204)
def delete_run(run_id: RunId, store: StoreDep) -> Response:
    """Deletes a run that is not running, with its metrics and model file."""
    store.delete_run(run_id)
    return Response(status_code=204)
