"""The real service and a headless Debian chromium for the dashboard tests.

Playwright drives /usr/bin/chromium through executable_path and never downloads a browser.
The service is the one users get: Valkey, a Celery worker and uvicorn, on a database of its own.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from tests.browser.dashboard import SMALL_NET, Dashboard
from tests.support.markers import mark_items_under
from tests.support.stack import Stack, running_stack
from tests.support.waiting import wait_for_run

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_REDIS_DB = 11
ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_items_under(items, Path(__file__).parent, pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("browser-stack")
    # A CIFAR-10 path that does not exist makes a mistaken cifar10 run fail, never download.
    missing_cifar = {"CURVELAB_CIFAR10_PATH": str(base / "no-cifar10-here")}
    with running_stack(base, redis_db=BROWSER_REDIS_DB, extra_env=missing_cifar) as service:
        yield service
        # A test may have restarted the API; stop whichever process serves now.
        service.api.stop()


@pytest.fixture(scope="session")
def api(browser_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=browser_stack.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `python -m scripts.ensure_browser`, then retry.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; any uncaught error or dialog (alert, confirm) fails the test.

    A failed test leaves a screenshot of the page under tests/artifacts/failures/.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    new_page = context.new_page()
    problems: list[str] = []
    new_page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def refuse_dialog(dialog: Dialog) -> None:
        problems.append(f"a {dialog.type} dialog opened: {dialog.message}")
        dialog.dismiss()

    new_page.on("dialog", refuse_dialog)
    yield new_page
    call_report = getattr(request.node, "report_call", None)
    if call_report is not None and call_report.failed:
        failures = ARTIFACTS_DIR / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        new_page.screenshot(path=str(failures / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not problems, "; ".join(problems)


@pytest.fixture
def dashboard(page: Page, browser_stack: Stack) -> Dashboard:
    return Dashboard(page, browser_stack.url)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def finished_pair(api: httpx.Client) -> list[dict]:
    """Two short runs (SELU and BatchNorm) trained to the end through the API."""
    specs = [
        {"variant": "selu", "name": "SELU, 3 epochs"},
        {"variant": "batchnorm", "name": "BatchNorm, 3 epochs"},
    ]
    small = {key: int(value) if value.isdigit() else value for key, value in SMALL_NET.items()}
    run_ids = [
        api.post("/api/runs", json={**small, **spec, "max_epochs": 3}).json()["id"]
        for spec in specs
    ]
    return [wait_for_run(api, run_id, timeout=300) for run_id in run_ids]
