// The learning-curves tab: its controls, and redraws when epochs, runs or settings change.
import { element } from "./dom.js";
import { purge } from "./charts.js";
import { CURVE_METRICS } from "./curve_series.js";
import { drawOverlay, drawSideBySide } from "./curves.js";
import { frameScheduler } from "./history.js";
import { runLabel } from "./store.js";

function radioGroup(name, legend, choices, current, onChange) {
  const inputs = choices.map(([value, label]) => element("label", { className: "segment" }, [
    element("input", { type: "radio", name, value, checked: value === current,
      onchange: () => onChange(value) }),
    element("span", { text: label }),
  ]));
  return element("fieldset", { className: "segmented", id: `control-${name}` }, [
    element("legend", { text: legend }), ...inputs,
  ]);
}

function buildControls(store) {
  const view = store.view;
  const smoothingValue = element("output", { id: "smoothing-value", text: view.smoothing });
  const smoothing = element("input", {
    type: "range", id: "smoothing", min: 0, max: 0.95, step: 0.05, value: view.smoothing,
    "aria-label": "Smoothing (exponential moving average weight)",
    oninput: (event) => store.setView({ smoothing: Number(event.target.value) }),
  });
  const gridMetric = element("select", { id: "grid-metric", "aria-label": "Side-by-side metric",
    onchange: (event) => store.setView({ gridMetric: event.target.value }) }, [
    ...["accuracy", "loss"].map((quantity) => element("option",
      { value: quantity, text: quantity, selected: view.gridMetric === quantity })),
  ]);
  const controls = element("div", { className: "controls" }, [
    radioGroup("x-axis", "x axis", [["epoch", "Epoch"], ["time", "Wall-clock time"]],
      view.xAxis, (value) => store.setView({ xAxis: value })),
    element("label", { className: "control" }, ["Smoothing ", smoothing, " ", smoothingValue]),
    radioGroup("layout", "layout", [["overlay", "Overlay"], ["grid", "Side by side"]],
      view.layout, (value) => store.setView({ layout: value })),
    element("label", { className: "control", id: "grid-metric-control" },
      ["Side-by-side metric ", gridMetric]),
  ]);
  const sync = () => {
    controls.querySelector(`input[name="x-axis"][value="${store.view.xAxis}"]`).checked = true;
    controls.querySelector(`input[name="layout"][value="${store.view.layout}"]`).checked = true;
    smoothing.value = store.view.smoothing;
    smoothingValue.textContent = store.view.smoothing.toFixed(2);
    gridMetric.value = store.view.gridMetric;
    controls.querySelector("#grid-metric-control").hidden = store.view.layout !== "grid";
  };
  return { controls, sync };
}

export function mountCurvesView(root, store) {
  const { controls, sync } = buildControls(store);
  const overlay = element("div", { className: "chart-grid", id: "overlay-charts" });
  const containers = {};
  for (const metric of CURVE_METRICS) {
    containers[metric.key] = element("div", { className: "chart", id: `chart-${metric.key}` });
    overlay.append(containers[metric.key]);
  }
  const sideBySide = element("div", { className: "chart chart-wide", id: "chart-side-by-side" });
  const note = element("p", { className: "empty-note", id: "curves-note" });
  root.append(controls, note, overlay, sideBySide);

  const redraw = () => {
    sync();
    if (root.hidden) return;
    const series = store.selectedRuns().filter((run) => run.kind !== "lr_finder").map((run) => ({
      runId: run.id, label: runLabel(run), color: store.colorOf(run.id),
      epochs: store.epochs(run.id), bestEpoch: run.best_epoch,
    }));
    const grid = store.view.layout === "grid";
    note.hidden = series.length > 0;
    note.textContent = "Tick runs in the table to draw their learning curves here.";
    overlay.hidden = grid || series.length === 0;
    sideBySide.hidden = !grid || series.length === 0;
    if (series.length === 0) return;
    const options = { xAxis: store.view.xAxis, smoothing: store.view.smoothing,
      gridMetric: store.view.gridMetric };
    if (grid) {
      Object.values(containers).forEach(purge);
      drawSideBySide(sideBySide, series, options);
    } else {
      purge(sideBySide);
      drawOverlay(containers, series, options);
    }
  };
  const schedule = frameScheduler(redraw);
  store.on("selection", schedule);
  store.on("metrics", (runId) => { if (store.selection.includes(runId)) schedule(); });
  store.on("runs", (runId) => { if (store.selection.includes(runId)) schedule(); });
  store.on("view", schedule);
  return { redraw: schedule };
}
