"""The dashboard with the results runs overlaid, saved as a PNG by a headless chromium.

It is the README's picture of the product: real runs, drawn by the real page. Playwright
drives Debian's /usr/bin/chromium (`make test` installs it) and never downloads a browser.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 1250}
DRAW_TIMEOUT_MS = 60_000

# True once every run's validation-accuracy curve holds all of its epochs.
ALL_CURVES_DRAWN = """(expected) => {
  const chart = document.getElementById("chart-val_accuracy");
  if (!chart || !chart.data) return false;
  return Object.entries(expected).every(([runId, epochs]) => chart.data.some((trace) =>
    trace.meta && trace.meta.runId === runId && trace.meta.role === "curve"
    && trace.x.length === epochs));
}"""


def screenshot_dashboard(
    base_url: str, epochs_by_run: dict[str, int], path: Path, token: str | None = None
) -> str | None:
    """Saves the page with the runs overlaid; returns why not, as a sentence, when it cannot.

    Playwright's sync API refuses to run where an asyncio loop is running (a notebook, or a
    process already driving a browser), so the browser is driven from a thread of its own.
    """
    if not CHROMIUM.exists():
        return f"No dashboard screenshot: {CHROMIUM} is missing; `make test` installs it."
    outcome: list[str | None] = []
    worker = threading.Thread(
        target=lambda: outcome.append(_take(base_url, epochs_by_run, path, token)),
        name="dashboard-screenshot",
    )
    worker.start()
    worker.join()
    return outcome[0] if outcome else "No dashboard screenshot: the browser thread failed."


def _take(
    base_url: str, epochs_by_run: dict[str, int], path: Path, token: str | None
) -> str | None:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        return "No dashboard screenshot: Playwright is not installed; run `make install`."
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                if token:
                    # The page keeps the token the user typed in sessionStorage, under this key.
                    page.add_init_script(
                        f"sessionStorage.setItem('curvelab.apiToken', {json.dumps(token)})"
                    )
                page.goto(f"{base_url}/?runs={','.join(epochs_by_run)}")
                page.wait_for_function(ALL_CURVES_DRAWN, arg=epochs_by_run, timeout=DRAW_TIMEOUT_MS)
                page.screenshot(path=str(path), full_page=True)
            finally:
                browser.close()
    except Error as error:
        return f"No dashboard screenshot: the browser failed ({error.message.splitlines()[0]})."
    return None
