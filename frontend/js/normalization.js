// Self-normalization view: each hidden layer's activation mean and standard deviation against
// depth, at one epoch, for the chosen runs. A self-normalizing (SELU) net keeps them near 0 and 1.
// Epoch 0 is the untrained network, measured by the worker before the first weight update.
import { chartLayout, draw, purge } from "./charts.js";
import { element, plotlyText } from "./dom.js";
import { frameScheduler } from "./history.js";
import { runLabel } from "./store.js";

function targetLine(value) {
  return {
    type: "line", xref: "paper", x0: 0, x1: 1, y0: value, y1: value,
    line: { color: "#5f6368", width: 1, dash: "dot" },
  };
}

function epochName(epoch) {
  return epoch === 0 ? "before training" : `epoch ${epoch}`;
}

// The run's epochs with statistics, led by the untrained network as epoch 0 when measured.
export function statisticsByEpoch(run, epochs) {
  const initial = run.initial_activations;
  const before = initial && initial.means.length > 0
    ? [{ epoch: 0, activation_means: initial.means, activation_stds: initial.stds }] : [];
  return [...before, ...epochs];
}

function statsAt(epochs, wantedEpoch) {
  const withStats = epochs.filter((metrics) => metrics.activation_means.length > 0);
  if (withStats.length === 0) return null;
  if (wantedEpoch === null) return withStats[withStats.length - 1];
  const atOrBefore = withStats.filter((metrics) => metrics.epoch <= wantedEpoch);
  return atOrBefore.length > 0 ? atOrBefore[atOrBefore.length - 1] : withStats[0];
}

export function normalizationFigures(seriesList, wantedEpoch) {
  const means = [];
  const stds = [];
  const epochsShown = new Set();
  for (const series of seriesList) {
    const metrics = statsAt(series.epochs, wantedEpoch);
    if (!metrics) continue;
    epochsShown.add(metrics.epoch);
    const layers = metrics.activation_means.map((_, index) => index + 1);
    const common = { type: "scatter", mode: "lines+markers", x: layers, name:
      plotlyText(`${series.label} (${epochName(metrics.epoch)})`), uid: series.runId,
      meta: { runId: series.runId }, line: { color: series.color, width: 2 }, marker: { size: 5 } };
    means.push({ ...common, y: metrics.activation_means });
    stds.push({ ...common, y: metrics.activation_stds });
  }
  const epochText = epochsShown.size === 1 ? epochName([...epochsShown][0])
    : wantedEpoch === null ? "each run's last epoch" : `epoch ${wantedEpoch} or nearest before`;
  const xTitle = "hidden layer (1 = next to the input)";
  return {
    mean: { data: means, layout: chartLayout(`Activation mean by depth, ${epochText}`, xTitle,
      "mean activation", { shapes: [targetLine(0)], uirevision: "norm-mean" }) },
    std: { data: stds, layout: chartLayout(
      `Activation standard deviation by depth, ${epochText}`, xTitle,
      "standard deviation of activation", { shapes: [targetLine(1)], uirevision: "norm-std" }) },
  };
}

export function mountNormalizationView(root, store) {
  const epochInput = element("input", { type: "range", id: "norm-epoch", min: 0, max: 1, step: 1,
    "aria-label": "Epoch to show" });
  const epochLabel = element("output", { id: "norm-epoch-value" });
  const latest = element("button", { type: "button", text: "Latest epoch",
    onclick: () => store.setView({ normEpoch: null }) });
  epochInput.addEventListener("input",
    () => store.setView({ normEpoch: Number(epochInput.value) }));
  const note = element("p", { className: "empty-note" });
  const meanChart = element("div", { className: "chart", id: "chart-activation-mean" });
  const stdChart = element("div", { className: "chart", id: "chart-activation-std" });
  root.append(
    element("div", { className: "controls" }, [
      element("label", { className: "control" }, ["Epoch ", epochInput, " ", epochLabel]), latest,
    ]),
    element("p", { className: "explain", text: "A self-normalizing network keeps every layer's "
      + "activations near mean 0 and standard deviation 1 (dotted lines); vanishing or exploding "
      + "signals show up as curves drifting away with depth." }),
    note, element("div", { className: "chart-grid" }, [meanChart, stdChart]),
  );

  const redraw = () => {
    if (root.hidden) return;
    const series = store.selectedRuns().filter((run) => run.kind !== "lr_finder").map((run) => ({
      runId: run.id, label: runLabel(run), color: store.colorOf(run.id),
      epochs: statisticsByEpoch(run, store.epochs(run.id)),
    }));
    const maxEpoch = Math.max(1, ...series.flatMap((item) => item.epochs.map((m) => m.epoch)));
    epochInput.max = maxEpoch;
    epochInput.value = store.view.normEpoch ?? maxEpoch;
    epochLabel.textContent = store.view.normEpoch === null ? `latest (${maxEpoch})`
      : epochName(store.view.normEpoch);
    const figures = normalizationFigures(series, store.view.normEpoch);
    const hasData = figures.mean.data.length > 0;
    note.hidden = hasData;
    note.textContent = series.length === 0
      ? "Tick runs in the table to compare their activations layer by layer."
      : "The chosen runs have no finished epoch with activation statistics yet.";
    meanChart.hidden = !hasData;
    stdChart.hidden = !hasData;
    if (!hasData) {
      purge(meanChart);
      purge(stdChart);
      return;
    }
    draw(meanChart, figures.mean.data, figures.mean.layout);
    draw(stdChart, figures.std.data, figures.std.layout);
  };
  const schedule = frameScheduler(redraw);
  store.on("selection", schedule);
  store.on("metrics", (runId) => { if (store.selection.includes(runId)) schedule(); });
  // The epoch-0 statistics arrive with the run itself, before its first epoch.
  store.on("runs", (runId) => { if (store.selection.includes(runId)) schedule(); });
  store.on("view", schedule);
  return { redraw: schedule };
}
