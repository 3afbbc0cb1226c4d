"""How long the dashboard takes to draw an overlay of 50 runs x 100 epochs in headless chromium.

The page imports the real chart module (frontend/js/curves.js) and Plotly from the installed
plotly package; the data is generated inside the page, so the time measured runs from data in
hand to the four learning-curve charts drawn (Plotly's promise resolved, then one frame).

    python bench/render.py [--runs 50] [--epochs 100] [--repeats 5]

Ends with `RESULT overlay_render_ms X` (the median over the repeats; target < 1000).
"""

from __future__ import annotations

import argparse
import importlib.util
import mimetypes
import statistics
import sys
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import say  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FRONTEND_DIR = REPO_ROOT / "frontend"
CHROMIUM = "/usr/bin/chromium"
ORIGIN = "http://bench.curvelab.invalid"

BENCH_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="/static/style.css">
<script src="/vendor/plotly.min.js"></script></head>
<body style="width:1400px"><div class="chart-grid" id="grid"></div></body></html>"""

# Runs inside the page: builds the series like the dashboard does, then draws them.
MEASURE = """async ([runs, epochs]) => {
  const { drawOverlay } = await import("/static/js/curves.js");
  const { CURVE_METRICS } = await import("/static/js/curve_series.js");
  const { PALETTE } = await import("/static/js/store.js");
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  const containers = {};
  for (const metric of CURVE_METRICS) {
    containers[metric.key] = document.createElement("div");
    containers[metric.key].className = "chart";
    grid.append(containers[metric.key]);
  }
  const series = [];
  for (let run = 0; run < runs; run += 1) {
    const rate = 0.05 + (run % 17) / 40;
    const list = [];
    let elapsed = 0;
    for (let epoch = 1; epoch <= epochs; epoch += 1) {
      const noise = Math.sin(run * 31 + epoch * 7) * 0.01;
      elapsed += 10 + (run % 5);
      list.push({ epoch, elapsed_seconds: elapsed, epoch_seconds: 10,
        val_accuracy: 0.1 + 0.45 * (1 - Math.exp(-rate * epoch)) + noise,
        accuracy: 0.1 + 0.55 * (1 - Math.exp(-rate * epoch)) + noise,
        val_loss: 0.9 + 1.4 * Math.exp(-rate * epoch) - noise,
        loss: 0.7 + 1.6 * Math.exp(-rate * epoch) - noise });
    }
    series.push({ runId: `run-${run}`, label: `run ${run}`, color: PALETTE[run % PALETTE.length],
      epochs: list, bestEpoch: Math.floor(epochs * 0.7) });
  }
  const started = performance.now();
  await drawOverlay(containers, series, { xAxis: "epoch", smoothing: 0 });
  const drawn = performance.now();
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const painted = performance.now();
  const points = Object.values(containers).reduce((total, div) => total
    + div.data.reduce((sum, trace) => sum + trace.x.length, 0), 0);
  const traceType = containers.val_accuracy.data[0].type;
  for (const div of Object.values(containers)) window.Plotly.purge(div);
  return { promiseMs: drawn - started, paintedMs: painted - started, points, traceType };
}"""



def plotly_bundle() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise SystemExit("The plotly package is not installed; run `make install` first.")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


def serve(route: Route) -> None:
    """Answers the page's requests from disk, the way the API's static routes would."""
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    if path == "/bench.html":
        route.fulfill(status=200, content_type="text/html", body=BENCH_PAGE)
        return
    if path == "/vendor/plotly.min.js":
        target = plotly_bundle()
    elif path.startswith("/static/"):
        target = (FRONTEND_DIR / path.removeprefix("/static/")).resolve()
        if FRONTEND_DIR not in target.parents:
            route.fulfill(status=404, body="outside frontend/")
            return
    else:
        route.fulfill(status=404, body="not found")
        return
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    route.fulfill(status=200, content_type=content_type, body=target.read_bytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.stderr.write(f"{CHROMIUM} is missing: run `python -m scripts.ensure_browser` first.\n")
        return 2
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/bench.html")
        timings = []
        for repeat in range(args.repeats + 1):
            result = page.evaluate(MEASURE, [args.runs, args.epochs])
            label = "warm-up" if repeat == 0 else f"repeat {repeat}"
            say(
                f"{label}: {result['paintedMs']:.0f} ms to first frame "
                f"({result['promiseMs']:.0f} ms to Plotly's promise), "
                f"{result['points']} points as {result['traceType']}"
            )
            if repeat > 0:
                timings.append(result["paintedMs"])
        browser.close()
    if errors:
        sys.stderr.write("The page raised: " + "; ".join(errors) + "\n")
        return 1
    say(f"{args.runs} runs x {args.epochs} epochs, 4 charts, median of {args.repeats}")
    say(f"RESULT overlay_render_ms {statistics.median(timings):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
