"""A page object for the dashboard: what a user does, and what the page shows, in test terms."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Locator, Page, expect

# Small enough for a busy CPU; these tests are about the page, not about depth.
SMALL_NET = {"dataset": "synthetic", "depth": "2", "width": "16", "batch_size": "64"}
RUN_SECONDS = 240_000  # milliseconds, for Playwright: training shares two cores with the rest.

READ_CURVES = """([chartId, runId]) => {
  const chart = document.getElementById(chartId);
  if (!chart || !chart.data) return null;
  const trace = chart.data.find((item) => item.meta && item.meta.runId === runId
    && item.meta.role === "curve");
  return trace ? { x: Array.from(trace.x), y: Array.from(trace.y) } : null;
}"""


class Dashboard:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.base_url}/{query}")
        expect(self.page.get_by_role("button", name="Train SELU")).to_be_visible()
        expect(self.page.locator("#connection")).to_have_text("live")

    def mark_page(self) -> None:
        """Leaves a token on this document; it survives anything but a reload."""
        self.page.evaluate("() => { window.__sameDocument = true; }")

    def still_same_page(self) -> bool:
        return bool(self.page.evaluate("() => window.__sameDocument === true"))

    def set_field(self, name: str, value: str) -> None:
        field = self.page.locator(f"#field-{name}")
        if field.evaluate("(node) => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)

    def set_fields(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self.set_field(name, value)

    def launch(self, button_label: str) -> str:
        """Clicks a Train button and returns the id of the run the server created."""
        with self.page.expect_response(
            lambda response: (
                response.url.endswith("/api/runs") and response.request.method == "POST"
            )
        ) as answer:
            self.page.get_by_role("button", name=button_label, exact=True).click()
        response = answer.value
        if response.status != 201:
            raise AssertionError(f"Launching answered {response.status}: {response.text()}")
        return str(response.json()["id"])

    def row(self, run_id: str) -> Locator:
        return self.page.locator(f'#runs-table tr[data-run-id="{run_id}"]')

    def status(self, run_id: str) -> Locator:
        return self.row(run_id).locator(".status")

    def wait_for_status(self, run_id: str, status: str, timeout: float = RUN_SECONDS) -> None:
        expect(self.status(run_id)).to_have_text(status, timeout=timeout)

    def record_statuses(self) -> None:
        """Records every status text each row shows from now on, however briefly."""
        self.page.evaluate(
            """() => {
              window.__statuses = {};
              const note = () => {
                for (const row of document.querySelectorAll("#runs-table tr[data-run-id]")) {
                  const seen = (window.__statuses[row.dataset.runId] ||= []);
                  const text = row.querySelector(".status").textContent;
                  if (seen[seen.length - 1] !== text) seen.push(text);
                }
              };
              new MutationObserver(note).observe(document.querySelector("#runs-table"),
                { subtree: true, childList: true, characterData: true });
              note();
            }"""
        )

    def statuses_seen(self, run_id: str) -> list[str]:
        return list(self.page.evaluate("(id) => window.__statuses[id] || []", run_id))

    def curve(self, chart_id: str, run_id: str) -> dict[str, list[Any]] | None:
        """The x and y values the chart draws for one run, read from the Plotly div."""
        return self.page.evaluate(READ_CURVES, [chart_id, run_id])

    def wait_for_curve_points(self, chart_id: str, run_id: str, count: int) -> dict[str, list]:
        self.page.wait_for_function(
            f"([chartId, runId, count]) => {{ const curve = ({READ_CURVES})([chartId, runId]);"
            " return curve !== null && curve.x.length === count; }",
            arg=[chart_id, run_id, count],
            timeout=RUN_SECONDS,
        )
        curve = self.curve(chart_id, run_id)
        assert curve is not None
        return curve

    def chart_layout(self, chart_id: str) -> dict[str, Any]:
        return dict(
            self.page.evaluate(
                "(id) => JSON.parse(JSON.stringify(document.getElementById(id).layout))", chart_id
            )
        )

    def chart_traces(self, chart_id: str) -> list[dict[str, Any]]:
        return list(
            self.page.evaluate(
                """(id) => document.getElementById(id).data.map((trace) => ({
                 type: trace.type, name: trace.name, uid: trace.uid,
                 x: Array.from(trace.x || []), y: Array.from(trace.y || []) }))""",
                chart_id,
            )
        )

    def open_tab(self, label: str) -> None:
        self.page.get_by_role("tab", name=label).click()
