"""Dependencies the routes declare; create_app puts the objects on app.state."""

from __future__ import annotations

import re
from typing import Annotated, Any, cast

from fastapi import Depends, HTTPException, Path, Request

from backend.event_hub import EventHub
from backend.event_log import EventLog
from backend.queue import TaskQueue
from backend.run_reader import RunReader
from backend.run_transactions import run_not_found
from backend.settings import Settings
from backend.store import RunStore


async def get_settings_of_app(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_store(request: Request) -> RunStore:
    return cast(RunStore, request.app.state.store)


async def get_task_queue(request: Request) -> TaskQueue:
    return cast(TaskQueue, request.app.state.task_queue)


def _started(request: Request, name: str) -> Any:
    # The async clients are made when the server starts (lifespan), in its event loop.
    value = getattr(request.app.state, name, None)
    if value is None:
        raise HTTPException(503, "The server is still starting; try again in a moment.")
    return value


async def get_event_log(request: Request) -> EventLog:
    return cast(EventLog, _started(request, "event_log"))


async def get_event_hub(request: Request) -> EventHub:
    return cast(EventHub, _started(request, "event_hub"))


async def get_reader(request: Request) -> RunReader:
    return cast(RunReader, _started(request, "reader"))


# Run ids are short tokens; anything else (a colon, a slash, a huge string) names no run
# and must never become part of a Redis key.
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def valid_run_id(run_id: Annotated[str, Path(description="The run's id.")]) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise run_not_found(run_id[:64])
    return run_id


SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]
StoreDep = Annotated[RunStore, Depends(get_store)]
TaskQueueDep = Annotated[TaskQueue, Depends(get_task_queue)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]
EventHubDep = Annotated[EventHub, Depends(get_event_hub)]
ReaderDep = Annotated[RunReader, Depends(get_reader)]
RunId = Annotated[str, Depends(valid_run_id)]
