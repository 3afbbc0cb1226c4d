// Learning-curve figures: the chosen runs overlaid per metric, or one small chart per run.
// Input is plain data ({runId, label, color, epochs, bestEpoch} per run), so the benchmark
// draws with exactly this code.
import { chartLayout, draw, axis } from "./charts.js";
import { plotlyText } from "./dom.js";
import { CURVE_METRICS, curveOf, xAxisOf, xAxisTicks } from "./curve_series.js";

// A legend of dozens of runs costs more to lay out than the curves themselves and is
// unreadable anyway; past this many runs the names are in the hover labels and the table.
const LEGEND_UP_TO_RUNS = 10;

export function overlayFigure(seriesList, metric, options) {
  // SVG lines, not scattergl: where WebGL falls back to a software renderer (headless
  // chromium) a 50-run overlay took about 5 s in scattergl against under 1 s in SVG.
  const type = "scatter";
  const data = [];
  const bestX = [];
  const bestY = [];
  const bestColors = [];
  const bestText = [];
  for (const series of seriesList) {
    const curve = curveOf(series, metric.key, options.xAxis, options.smoothing);
    const name = plotlyText(series.label);
    if (options.smoothing > 0) {
      data.push({
        type, x: curve.x, y: curve.raw, mode: "lines", showlegend: false, hoverinfo: "skip",
        legendgroup: series.runId, uid: `${series.runId}-raw`, opacity: 0.25,
        line: { color: series.color, width: 1 },
      });
    }
    data.push({
      type, x: curve.x, y: curve.y, name, legendgroup: series.runId, uid: series.runId,
      meta: { runId: series.runId, role: "curve" },
      mode: curve.x.length <= 40 ? "lines+markers" : "lines",
      line: { color: series.color, width: 2 }, marker: { size: 5 },
      hovertemplate: `%{y:.4f} at ${xAxisOf(options.xAxis).title} %{x}<extra>${name}</extra>`,
    });
    if (curve.best) {
      bestX.push(curve.best.x);
      bestY.push(curve.best.y);
      bestColors.push(series.color);
      bestText.push(`${name}: best epoch ${curve.best.epoch}`);
    }
  }
  data.push({
    type, x: bestX, y: bestY, mode: "markers", name: "best epoch", uid: "best-epochs",
    meta: { role: "best" }, text: bestText, hovertemplate: "%{text}<extra></extra>",
    marker: { symbol: "star", size: 13, color: bestColors, line: { color: "#202124", width: 1 } },
  });
  const layout = chartLayout(metric.title, xAxisOf(options.xAxis).title, metric.axisTitle, {
    uirevision: `${metric.key}:${options.xAxis}`,
    showlegend: seriesList.length <= LEGEND_UP_TO_RUNS,
    xaxis: xAxisTicks(seriesList, options.xAxis),
  });
  return { data, layout };
}

export function drawOverlay(containers, seriesList, options) {
  return Promise.all(CURVE_METRICS.map((metric) => {
    const figure = overlayFigure(seriesList, metric, options);
    return draw(containers[metric.key], figure.data, figure.layout);
  }));
}

const GRID_QUANTITIES = Object.freeze({
  accuracy: { validation: "val_accuracy", training: "accuracy", title: "Accuracy" },
  loss: { validation: "val_loss", training: "loss", title: "Loss" },
});

export function gridColumns(count) {
  return Math.min(count, count <= 4 ? 2 : 3);
}

// One subplot per run; every x axis matches the first and every y axis too, so the small
// charts compare at a glance.
export function sideBySideFigure(seriesList, options) {
  const quantity = GRID_QUANTITIES[options.gridMetric] || GRID_QUANTITIES.accuracy;
  const columns = gridColumns(seriesList.length);
  const rows = Math.ceil(seriesList.length / columns);
  const xTitle = xAxisOf(options.xAxis).title;
  const ticks = xAxisTicks(seriesList, options.xAxis);
  const data = [];
  const layout = chartLayout(
    `${quantity.title} per run (solid: validation, dashed: training; shared axes)`,
    xTitle, quantity.title.toLowerCase(),
    { grid: { rows, columns, pattern: "independent", xgap: 0.08, ygap: 0.22 },
      showlegend: false, annotations: [], height: 100 + rows * 250,
      margin: { l: 56, r: 16, t: 78, b: 48 },
      uirevision: `grid:${options.gridMetric}:${options.xAxis}` });
  seriesList.forEach((series, index) => {
    const suffix = index === 0 ? "" : String(index + 1);
    const validation = curveOf(series, quantity.validation, options.xAxis, options.smoothing);
    const training = curveOf(series, quantity.training, options.xAxis, options.smoothing);
    const name = plotlyText(series.label);
    const axes = { xaxis: `x${suffix}`, yaxis: `y${suffix}` };
    data.push({ ...axes, type: "scatter", mode: "lines", x: validation.x, y: validation.y,
      uid: series.runId, meta: { runId: series.runId, role: "curve" }, name,
      line: { color: series.color, width: 2 } });
    data.push({ ...axes, type: "scatter", mode: "lines", x: training.x, y: training.y,
      uid: `${series.runId}-training`, name: `${name} (training)`,
      line: { color: series.color, width: 1.5, dash: "dash" } });
    if (validation.best) {
      data.push({ ...axes, type: "scatter", mode: "markers", x: [validation.best.x],
        y: [validation.best.y], name: `${name}: best epoch ${validation.best.epoch}`,
        marker: { symbol: "star", size: 12, color: series.color } });
    }
    const row = Math.floor(index / columns);
    const column = index % columns;
    layout[`xaxis${suffix}`] = axis(row === rows - 1 || index + columns >= seriesList.length
      ? xTitle : "", index === 0 ? ticks : { ...ticks, matches: "x" });
    layout[`yaxis${suffix}`] = axis(column === 0 ? quantity.title.toLowerCase() : "",
      index === 0 ? {} : { matches: "y" });
    layout.annotations.push({
      text: name, showarrow: false, xref: `x${suffix} domain`, yref: `y${suffix} domain`,
      x: 0.5, y: 1.02, xanchor: "center", yanchor: "bottom", font: { size: 12 },
    });
  });
  return { data, layout };
}

export function drawSideBySide(container, seriesList, options) {
  const figure = sideBySideFigure(seriesList, options);
  // A responsive chart takes its container's height, so the container grows with the rows.
  container.style.height = `${figure.layout.height}px`;
  return draw(container, figure.data, figure.layout);
}
