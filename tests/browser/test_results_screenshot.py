"""`make results` photographs the dashboard with its runs overlaid, through the real page."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import results_screenshot
from scripts.results_screenshot import screenshot_dashboard
from tests.support.stack import Stack


def test_the_screenshot_waits_for_every_curve_then_saves_the_page(
    browser_stack: Stack, finished_pair: list[dict], tmp_path: Path
) -> None:
    target = tmp_path / "dashboard.png"
    epochs = {run["id"]: run["epochs_done"] for run in finished_pair}

    assert screenshot_dashboard(browser_stack.url, epochs, target) is None

    assert target.read_bytes().startswith(b"\x89PNG") and target.stat().st_size > 20_000


def test_a_curve_that_never_completes_is_a_sentence_not_a_hang(
    browser_stack: Stack, finished_pair: list[dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results_screenshot, "DRAW_TIMEOUT_MS", 3_000)
    run = finished_pair[0]
    more_epochs_than_stored = {run["id"]: run["epochs_done"] + 1}

    problem = screenshot_dashboard(browser_stack.url, more_epochs_than_stored, tmp_path / "x.png")

    assert problem is not None and problem.startswith("No dashboard screenshot: the browser failed")
    assert not (tmp_path / "x.png").exists()


def test_without_chromium_it_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results_screenshot, "CHROMIUM", tmp_path / "no-chromium")

    problem = screenshot_dashboard("http://127.0.0.1:9", {"a": 1}, tmp_path / "x.png")

    assert problem == (
        f"No dashboard screenshot: {tmp_path / 'no-chromium'} is missing; `make test` installs it."
    )
