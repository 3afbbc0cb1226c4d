"""`make results`: trains the five variants on real CIFAR-10 through the service, writes docs/.

The service is the one at CURVELAB_HOST:CURVELAB_PORT; when nothing answers
there, this script starts `make run`'s stack itself and stops it at the end.
Progress is printed while the runs train, since the whole set takes hours on a CPU.
A run already stored with the same spec is reused, so an interrupted `make results` resumes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from backend.contract import (
    SPEC_CLASSES,
    VARIANT_NAMES,
    ActivationStatistics,
    EpochMetrics,
    RunSummary,
)
from backend.settings import get_settings
from scripts.results_plots import plot_mc_dropout, plot_overlay
from scripts.results_report import FinishedRun, render_markdown
from scripts.results_screenshot import screenshot_dashboard

DOCS = Path(__file__).resolve().parent.parent / "docs"
REUSABLE_STATUSES = ("queued", "running", "succeeded")
DASHBOARD_PICTURE = "results-dashboard.png"


def _service_up(client: httpx.Client) -> bool:
    try:
        return client.get("/api/health").status_code == 200
    except httpx.HTTPError:
        return False


def _start_stack(client: httpx.Client) -> subprocess.Popen[bytes]:
    stack = subprocess.Popen([sys.executable, "-m", "scripts.run_stack"])
    deadline = time.monotonic() + 120
    while not _service_up(client):
        if stack.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("The service did not start: run `make run` and read its messages.")
        time.sleep(1)
    return stack


def results_run_spec(variant: str, dataset: str) -> dict[str, Any]:
    """The spec `make results` trains a variant with: its defaults, on the chosen dataset."""
    spec = SPEC_CLASSES[variant](dataset=dataset, name=f"results: {variant}")
    return spec.model_dump(mode="json")


def reusable_run(runs: list[dict[str, Any]], spec: dict[str, Any]) -> str | None:
    """The newest stored run with exactly this spec that finished well or is still under way.

    Reusing it means an interrupted `make results` picks up where it was instead of
    training hours again; a failed or cancelled run is trained again.
    """
    for run in runs:  # the API lists the newest first
        if run["kind"] == "train" and run["spec"] == spec and run["status"] in REUSABLE_STATUSES:
            return str(run["id"])
    return None


def _launch(
    client: httpx.Client, variants: list[str], dataset: str, fresh: bool
) -> dict[str, str]:
    stored = [] if fresh else client.get("/api/runs").json()["runs"]
    run_ids = {}
    for variant in variants:
        spec = results_run_spec(variant, dataset)
        run_id = reusable_run(stored, spec)
        if run_id is None:
            response = client.post("/api/runs", json=spec)
            response.raise_for_status()
            run_id = response.json()["id"]
            sys.stdout.write(f"Launched {variant} as run {run_id}\n")
        else:
            sys.stdout.write(f"Reusing run {run_id} for {variant}; pass --fresh to train anew\n")
        run_ids[variant] = run_id
    return run_ids


def _wait(client: httpx.Client, run_ids: dict[str, str], poll_seconds: float) -> dict[str, dict]:
    views: dict[str, dict] = {}
    while True:
        views = {v: client.get(f"/api/runs/{rid}").json() for v, rid in run_ids.items()}
        line = "  ".join(
            f"{v}:{view['status']}:{view['epochs_done']}/{view['max_epochs']}"
            for v, view in views.items()
        )
        sys.stdout.write(time.strftime("%H:%M:%S ") + line + "\n")
        sys.stdout.flush()
        if all(view["status"] in ("succeeded", "failed", "cancelled") for view in views.values()):
            return views
        time.sleep(poll_seconds)


def _collect(client: httpx.Client, views: dict[str, dict]) -> list[FinishedRun]:
    runs = []
    for variant, view in views.items():
        epochs = client.get(f"/api/runs/{view['id']}/metrics").json()["epochs"]
        runs.append(
            FinishedRun(
                variant=variant,
                run_id=view["id"],
                status=view["status"],
                device=view.get("device") or "unknown device",
                summary=RunSummary.model_validate(view["summary"]) if view["summary"] else None,
                epochs=[EpochMetrics.model_validate(epoch) for epoch in epochs],
                initial=(
                    ActivationStatistics.model_validate(view["initial_activations"])
                    if view.get("initial_activations")
                    else None
                ),
            )
        )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10", "synthetic"])
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument(
        "--fresh", action="store_true", help="Train every variant anew instead of reusing runs."
    )
    arguments = parser.parse_args()
    settings = get_settings()
    if arguments.dataset == "cifar10" and settings.cifar10_path is None:
        sys.stderr.write(
            "CURVELAB_CIFAR10_PATH is not set, so the worker would download CIFAR-10: set it to a "
            "local copy such as ../shared/datasets/cifar10-jpeg.tar.gz unless this machine has "
            "internet access.\n"
        )
    base_url = f"http://{settings.host}:{settings.port}"
    headers = (
        {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
        if settings.api_token
        else {}
    )
    arguments.out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        stack = None if _service_up(client) else _start_stack(client)
        try:
            run_ids = _launch(client, arguments.variants, arguments.dataset, arguments.fresh)
            runs = _collect(client, _wait(client, run_ids, arguments.poll_seconds))
            problem = screenshot_dashboard(
                base_url,
                {run.run_id: len(run.epochs) for run in runs if run.epochs},
                arguments.out / DASHBOARD_PICTURE,
                settings.api_token.get_secret_value() if settings.api_token else None,
            )
            if problem:
                sys.stderr.write(problem + "\n")
        finally:
            if stack is not None:
                stack.terminate()
                stack.wait(timeout=60)
    plot_overlay(runs, arguments.out / "results-overlay.png")
    plot_mc_dropout(runs, arguments.out / "results-mc-dropout.png")
    note = (
        f"dataset {arguments.dataset}"
        + (f" from {settings.cifar10_path.name}" if settings.cifar10_path else "")
    )
    picture = None if problem else DASHBOARD_PICTURE
    (arguments.out / "results.md").write_text(render_markdown(runs, note, picture))
    sys.stdout.write(f"Wrote {arguments.out / 'results.md'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
