// MC Dropout view for a finished dropout run: how confident the model is with dropout off and
// with N stochastic passes averaged, how accuracy grows with N, and how well it is calibrated.
import { api } from "./api.js";
import { chartLayout, draw, histogramBars, purge } from "./charts.js";
import { element, formatNumber, formatPercent } from "./dom.js";
import { DROPOUT_VARIANTS, runLabel } from "./store.js";

const CORRECT = "#2ca02c";
const WRONG = "#d62728";
const DETERMINISTIC = "#5f6368";
const MONTE_CARLO = "#1f77b4";

export function isMcDropoutRun(run) {
  return run.kind !== "lr_finder" && DROPOUT_VARIANTS.has(run.variant)
    && run.status === "succeeded";
}

function confidenceFigure(stats, title) {
  return {
    data: [
      histogramBars(stats.confidence_correct, "correct", CORRECT, { uid: "correct" }),
      histogramBars(stats.confidence_wrong, "wrong", WRONG, { uid: "wrong" }),
    ],
    layout: chartLayout(title, "top-class confidence", "test images", { barmode: "overlay" }),
  };
}

function reliabilityTrace(stats, name, color) {
  const bins = stats.reliability.filter((bin) => bin.accuracy !== null && bin.count > 0);
  return {
    type: "bar", name, marker: { color }, opacity: 0.75,
    x: bins.map((bin) => (bin.lower + bin.upper) / 2),
    y: bins.map((bin) => bin.accuracy),
    customdata: bins.map((bin) => bin.count),
    hovertemplate: "accuracy %{y:.2f} at confidence %{x:.2f} (%{customdata} images)"
      + `<extra>${name}</extra>`,
  };
}

export function mcDropoutFigures(report) {
  const deterministic = report.deterministic;
  const monteCarlo = report.monte_carlo;
  const eceText = `ECE deterministic ${formatNumber(deterministic.expected_calibration_error)}, `
    + `MC ${formatNumber(monteCarlo.expected_calibration_error)}`;
  const samples = report.accuracy_by_samples;
  return {
    deterministic: confidenceFigure(deterministic,
      "Top-class confidence with dropout off (deterministic)"),
    monteCarlo: confidenceFigure(monteCarlo,
      `Top-class confidence with MC Dropout (${report.samples} passes averaged)`),
    samples: {
      data: [
        { type: "scatter", mode: "lines+markers", name: "MC Dropout", uid: "mc",
          x: samples.map((point) => point.samples), y: samples.map((point) => point.accuracy),
          line: { color: MONTE_CARLO, width: 2 } },
        { type: "scatter", mode: "lines", name: "deterministic", uid: "deterministic",
          x: [samples[0]?.samples ?? 1, samples[samples.length - 1]?.samples ?? report.samples],
          y: [deterministic.accuracy, deterministic.accuracy],
          line: { color: DETERMINISTIC, dash: "dot" } },
      ],
      layout: chartLayout("Test accuracy against the number of MC samples",
        "MC samples averaged", "test accuracy", { xaxis: { type: "log" } }),
    },
    reliability: {
      data: [
        reliabilityTrace(deterministic, "deterministic", DETERMINISTIC),
        reliabilityTrace(monteCarlo, "MC Dropout", MONTE_CARLO),
        { type: "scatter", mode: "lines", name: "perfect calibration", x: [0, 1], y: [0, 1],
          line: { color: "#202124", dash: "dash", width: 1 } },
      ],
      layout: chartLayout(`Reliability diagram (${eceText})`, "confidence", "accuracy",
        { barmode: "group", xaxis: { range: [0, 1] }, yaxis: { range: [0, 1] } }),
    },
    entropy: {
      data: [
        histogramBars(deterministic.entropy, "deterministic", DETERMINISTIC),
        histogramBars(monteCarlo.entropy, "MC Dropout", MONTE_CARLO),
      ],
      layout: chartLayout("Predictive entropy of each test image", "entropy (nats)",
        "test images", { barmode: "overlay" }),
    },
  };
}

export function mountMcDropoutView(root, store, notify) {
  const picker = element("select", { id: "mc-run", "aria-label": "Dropout run to inspect",
    onchange: () => store.setView({ mcRun: picker.value || null }) });
  const summary = element("p", { className: "summary", id: "mc-summary" });
  const note = element("p", { className: "empty-note" });
  const names = ["deterministic", "monteCarlo", "samples", "reliability", "entropy"];
  const charts = Object.fromEntries(names.map((name) =>
    [name, element("div", { className: "chart", id: `chart-mc-${name}` })]));
  const grid = element("div", { className: "chart-grid" }, Object.values(charts));
  root.append(element("div", { className: "controls" }, [
    element("label", { className: "control" }, ["Run ", picker])]), note, summary, grid);
  const reports = new Map();
  let shownKey = null;
  let pickerSignature = "";

  const eligible = () => [...store.runs.values()].filter(isMcDropoutRun)
    .sort((a, b) => b.created_at - a.created_at);

  const chosenRun = (runs) => {
    const wanted = runs.find((run) => run.id === store.view.mcRun);
    if (wanted) return wanted;
    return runs.find((run) => store.selection.includes(run.id)) || runs[0] || null;
  };

  const refresh = async () => {
    const runs = eligible();
    const run = chosenRun(runs);
    // Rebuilt only when the choice changes, so an open drop-down survives other runs' epochs.
    const signature = JSON.stringify(
      [runs.map((item) => [item.id, runLabel(item)]), run && run.id]);
    if (signature !== pickerSignature) {
      pickerSignature = signature;
      picker.replaceChildren(...runs.map((candidate) => element("option", {
        value: candidate.id, text: runLabel(candidate),
        selected: run && candidate.id === run.id })));
    }
    if (root.hidden) return;
    const hasRun = Boolean(run);
    note.hidden = hasRun;
    note.textContent = "No finished alpha-dropout or 1cycle run yet: train one to see how "
      + "MC Dropout changes its confidence.";
    grid.hidden = !hasRun;
    summary.hidden = !hasRun;
    if (!hasRun) { shownKey = null; return; }
    if (shownKey === run.id) return;
    shownKey = run.id;
    try {
      if (!reports.has(run.id)) reports.set(run.id, await api.mcDropout(run.id));
    } catch (error) {
      shownKey = null;
      notify(error.message, "error");
      return;
    }
    if (shownKey !== run.id) return;
    const report = reports.get(run.id);
    summary.textContent = `${runLabel(run)}: deterministic accuracy `
      + `${formatPercent(report.deterministic.accuracy)}, MC Dropout accuracy `
      + `${formatPercent(report.monte_carlo.accuracy)} with ${report.samples} passes at dropout `
      + `rate ${report.dropout_rate}, over ${report.evaluated_images} test images.`;
    const figures = mcDropoutFigures(report);
    await Promise.all(names.map((name) => draw(charts[name], figures[name].data,
      figures[name].layout)));
  };
  const forget = (runId) => {
    if (store.runs.has(runId)) return;
    reports.delete(runId);
    if (shownKey === runId) { shownKey = null; Object.values(charts).forEach(purge); }
  };
  store.on("runs", (runId) => { forget(runId); refresh(); });
  store.on("view", (changed) => {
    if (changed.includes("mcRun") || changed.includes("tab")) refresh();
  });
  return { redraw: refresh };
}
