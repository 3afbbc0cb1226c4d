// Shared Plotly settings, so every chart has the same look, a title and titled axes.
import { plotlyText } from "./dom.js";

const Plotly = window.Plotly;

export const PLOT_CONFIG = Object.freeze({
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["lasso2d", "select2d"],
});

export function axis(title, extra = {}) {
  return {
    title: { text: plotlyText(title), standoff: 6 },
    zeroline: false,
    gridcolor: "#e8eaed",
    // Fixed margins: automargin makes Plotly lay every chart out twice, which doubled the
    // time to draw a 50-run overlay.
    ...extra,
  };
}

export function chartLayout(title, xTitle, yTitle, extra = {}) {
  return {
    title: { text: plotlyText(title), x: 0.02, xanchor: "left", font: { size: 15 } },
    xaxis: axis(xTitle, extra.xaxis),
    yaxis: axis(yTitle, extra.yaxis),
    margin: { l: 64, r: 16, t: 44, b: 52 },
    legend: { orientation: "h", y: -0.22, font: { size: 11 } },
    hovermode: "closest",
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12, color: "#202124" },
    ...Object.fromEntries(Object.entries(extra)
      .filter(([key]) => key !== "xaxis" && key !== "yaxis")),
  };
}

// Plotly.react diffs against what is drawn, so calling it on every new epoch is cheap;
// the returned promise resolves once the chart is on screen.
export function draw(container, data, layout) {
  for (const note of container.querySelectorAll(":scope > .empty-note")) note.remove();
  return Plotly.react(container, data, layout, PLOT_CONFIG);
}

export function purge(container) {
  if (container && container.data) Plotly.purge(container);
}

// Bars for a server histogram (edges + counts): one bar per bin, as wide as the bin.
export function histogramBars(histogram, name, color, extra = {}) {
  const edges = histogram.bin_edges;
  const centers = histogram.counts.map((_, index) => (edges[index] + edges[index + 1]) / 2);
  const widths = histogram.counts.map((_, index) => edges[index + 1] - edges[index]);
  return {
    type: "bar",
    x: centers,
    y: histogram.counts,
    width: widths,
    name: plotlyText(name),
    marker: { color, line: { width: 0 } },
    opacity: 0.7,
    hovertemplate: "%{x:.2f}: %{y} images<extra>%{fullData.name}</extra>",
    ...extra,
  };
}

export function emptyNote(container, message) {
  purge(container);
  const note = document.createElement("p");
  note.className = "empty-note";
  note.textContent = message;
  container.replaceChildren(note);
}
