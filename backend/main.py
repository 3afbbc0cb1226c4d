"""The Curvelab API: create_app() builds the FastAPI application.

Run it with `uvicorn backend.main:create_app --factory`; `make run` does so.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from backend.access import announce_access, check_bind_address, install_access
from backend.body_limit import BodySizeLimit
from backend.event_hub import EventHub
from backend.event_log import EventLog
from backend.queue import TaskQueue
from backend.reaper import PeriodicSweep, Reaper
from backend.routes import events, frontend, meta, runs, session
from backend.run_reader import RunReader
from backend.settings import Settings, get_settings
from backend.store import RunNotFoundError, RunStateError, RunStore

# Every valid spec is a few hundred bytes; anything this large is not a spec.
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application, wired to the Redis and broker that settings name.

    Raises ValueError, before anything starts, when no API token is set and settings.host
    is not a loopback address: the run data would be open to the network.
    """
    settings = settings or get_settings()
    check_bind_address(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The async client belongs to the server's event loop, so it is made inside it.
        async_client = redis.asyncio.Redis.from_url(
            settings.effective_redis_url, decode_responses=True, health_check_interval=30
        )
        app.state.event_log = EventLog(async_client)
        app.state.event_hub = EventHub(app.state.event_log)
        app.state.reader = RunReader(async_client)
        sweep = PeriodicSweep(Reaper(app.state.store, settings), settings.heartbeat_seconds)
        sweep.start()
        announce_access(settings)
        try:
            yield
        finally:
            await sweep.stop()
            await app.state.event_hub.close()
            await app.state.event_log.close()
            app.state.store.close()
            app.state.task_queue.close()

    app = FastAPI(
        title="Curvelab",
        summary="Train the deep-network chapter's CIFAR-10 variants and watch their curves live.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = RunStore.from_settings(settings)
    app.state.task_queue = TaskQueue(settings.effective_redis_url)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    install_access(app, settings)
    _add_error_handlers(app)
    for module in (meta, session, runs, events, frontend):
        app.include_router(module.router)
    frontend.mount_static(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler fails on a NaN or a lone surrogate echoed back: JSON has neither.
        detail = _json_safe(jsonable_encoder(error.errors()))
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(RunNotFoundError)
    async def run_not_found(_request: Request, error: RunNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(RunStateError)
    async def run_state_conflict(_request: Request, error: RunStateError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    async def redis_unavailable(_request: Request, _error: Exception) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "Redis is not reachable, so runs cannot be read or changed right now; "
                "start Redis (or `make run`) and try again."
            },
            status_code=503,
        )


def _json_safe(value: Any) -> Any:
    """The value with NaN, infinities and lone surrogates written as text JSON can carry."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {_json_safe(key): _json_safe(item) for key, item in value.items()}
    return value
