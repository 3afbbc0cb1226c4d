"""Serves the single-page frontend and the Plotly bundle of the installed plotly package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"

router = APIRouter(include_in_schema=False)


def plotly_bundle_path() -> Path:
    """plotly.min.js inside the plotly Python package, found without importing plotly."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise HTTPException(404, "The plotly package is not installed; run `make install`.")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


@router.get("/")
def index() -> FileResponse:
    """The dashboard page."""
    page = FRONTEND_DIR / "index.html"
    if not page.is_file():
        raise HTTPException(404, f"The frontend page {page} is missing; restore frontend/.")
    return FileResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/vendor/plotly.min.js")
def plotly_bundle() -> FileResponse:
    """Plotly.js, served locally so the dashboard works offline."""
    return FileResponse(plotly_bundle_path(), media_type="text/javascript")


def mount_static(app: FastAPI) -> None:
    """Serves the files under frontend/ at /static/."""
    app.mount("/static", StaticFiles(directory=FRONTEND_DIR, check_dir=False), name="static")
