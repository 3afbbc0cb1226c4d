// Learning-rate finder: start a range test for a variant, plot loss against rate on a log axis,
// and hand the suggested rate to the launch form.
import { api } from "./api.js";
import { chartLayout, draw, purge } from "./charts.js";
import { element, formatNumber, humanizeName } from "./dom.js";
import { showFieldErrors } from "./form_errors.js";
import { runLabel } from "./store.js";

const SHARED_FIELDS = ["dataset", "depth", "width", "batch_size"];
// Left empty, these take the server's defaults (a sweep from 1e-6 to 1 over one epoch).
const OPTIONAL_FIELDS = [
  ["start_learning_rate", "1e-6 (default)"],
  ["end_learning_rate", "1 (default)"],
  ["max_steps", "one epoch (default)"],
];

// The loss explodes once the rate is too high; the y axis stops at 1.6 times the first loss so
// the useful valley stays readable.
function lossRange(losses) {
  const finite = losses.filter(Number.isFinite);
  if (finite.length === 0) return undefined;
  const lowest = Math.min(...finite);
  const highest = Math.min(Math.max(...finite), finite[0] * 1.6);
  const pad = Math.max((highest - lowest) * 0.05, 1e-3);
  return [lowest - pad, highest + pad];
}

export function lrFinderFigure(run) {
  const result = run.lr_finder;
  const data = [];
  if (result.raw_losses && result.raw_losses.length === result.learning_rates.length) {
    data.push({ type: "scatter", mode: "lines", name: "batch loss", uid: `${run.id}-raw`,
      x: result.learning_rates, y: result.raw_losses, opacity: 0.3,
      line: { color: "#1f77b4", width: 1 } });
  }
  data.push({ type: "scatter", mode: "lines", name: "smoothed loss", uid: run.id,
    x: result.learning_rates, y: result.losses, line: { color: "#1f77b4", width: 2 } });
  const rate = result.suggested_learning_rate;
  return {
    data,
    layout: chartLayout(`Loss against learning rate (range test, ${run.variant})`,
      "learning rate (log scale)", "training loss", {
        xaxis: { type: "log" }, yaxis: { range: lossRange(result.losses) },
        // Shapes take data values on a log axis, annotations take log10 of them.
        shapes: [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: rate, x1: rate,
          line: { color: "#d62728", dash: "dash", width: 1.5 } }],
        annotations: [{ x: Math.log10(rate), y: 1, yref: "paper",
          text: `suggested ${formatNumber(rate)}`,
          showarrow: false, xanchor: "left", yanchor: "top", font: { color: "#d62728" } }],
      }),
  };
}

function fieldRow(name, input, hint) {
  return element("div", { className: "field" }, [
    element("label", { for: input.id, text: humanizeName(name) }), input,
    hint ? element("small", { className: "hint", text: hint }) : null,
    element("span", { className: "field-error", id: `lr-error-${name}`, role: "alert" }),
  ]);
}

export function mountLrFinder(root, { store, variants, launchForm, notify }) {
  const variantSelect = element("select", { id: "lr-field-variant", name: "variant" },
    variants.map((variant) => element("option", { value: variant.name, text: variant.title,
      selected: variant.name === "selu" })));
  const fields = element("div", { className: "fields" });
  const formError = element("p", { className: "form-error", role: "alert" });
  const submit = element("button",
    { type: "submit", className: "primary", text: "Run range test" });
  const form = element("form", { id: "lr-form", novalidate: true }, [
    fieldRow("variant", variantSelect), fields, formError,
    element("div", { className: "form-actions" }, [submit])]);
  const picker = element("select", { id: "lr-run", "aria-label": "Range test to show",
    onchange: () => store.setView({ lrRun: picker.value || null }) });
  const status = element("p", { className: "summary", id: "lr-status" });
  const suggestion = element("output", { id: "lr-suggested" });
  const useButton = element("button", { type: "button", id: "lr-use", className: "primary",
    text: "Use in launch form" });
  const chart = element("div", { className: "chart chart-wide", id: "chart-lr-finder" });
  const resultBox = element("div", { className: "lr-result" }, [
    element("p", {}, ["Suggested learning rate: ", suggestion, " ", useButton]), chart]);
  root.append(element("div", { className: "lr-layout" }, [
    form,
    element("div", {}, [element("div", { className: "controls" }, [
      element("label", { className: "control" }, ["Range test ", picker])]), status, resultBox]),
  ]));

  const renderFields = () => {
    const variant = variants.find((item) => item.name === variantSelect.value) || variants[0];
    fields.replaceChildren();
    for (const name of SHARED_FIELDS) {
      const parameter = variant.parameters.find((item) => item.name === name);
      if (!parameter) continue;
      const input = parameter.choices
        ? element("select", { id: `lr-field-${name}`, name }, parameter.choices.map((choice) =>
          element("option",
            { value: choice, text: choice, selected: choice === parameter.default })))
        : element("input", { id: `lr-field-${name}`, name, type: "number",
          value: parameter.default, step: 1 });
      fields.append(fieldRow(name, input));
    }
    for (const [name, placeholder] of OPTIONAL_FIELDS) {
      fields.append(fieldRow(name, element("input", { id: `lr-field-${name}`, name,
        type: "number", step: "any", placeholder })));
    }
  };

  const collect = () => {
    const spec = { variant: variantSelect.value };
    for (const input of fields.querySelectorAll("input, select")) {
      if (input.value.trim() === "") continue;
      const number = Number(input.value);
      const keepText = input.tagName === "SELECT" || !Number.isFinite(number);
      spec[input.name] = keepText ? input.value : number;
    }
    return spec;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showFieldErrors(form, formError, null, "lr-");
    submit.disabled = true;
    try {
      const run = await api.startLrFinder(collect());
      store.upsertRun(run);
      store.setView({ lrRun: run.id });
    } catch (error) {
      showFieldErrors(form, formError, error, "lr-");
    } finally {
      submit.disabled = false;
    }
  });
  variantSelect.addEventListener("change", renderFields);

  const fetching = new Set();
  const refresh = () => {
    const runs = [...store.runs.values()].filter((run) => run.kind === "lr_finder")
      .sort((a, b) => b.created_at - a.created_at);
    const run = runs.find((item) => item.id === store.view.lrRun) || runs[0] || null;
    picker.replaceChildren(...runs.map((item) => element("option", { value: item.id,
      text: `${runLabel(item)} (${item.status})`, selected: run && item.id === run.id })));
    picker.disabled = runs.length === 0;
    const result = run && run.lr_finder;
    resultBox.hidden = !result;
    if (!run) {
      status.textContent = "No range test yet: choose a variant and press Run range test.";
    } else if (result) {
      status.textContent = `${runLabel(run)}: ${result.steps} steps`
        + `${result.diverged ? ", stopped when the loss diverged" : ""}.`;
    } else {
      status.textContent = run.status === "failed"
        ? `${runLabel(run)} failed: ${run.error || "the worker gave no reason."}`
        : `${runLabel(run)} is ${run.status}.`;
      if (run.status === "succeeded" && !fetching.has(run.id)) {
        // A finished range test whose event carried no result: read the run once more.
        fetching.add(run.id);
        api.getRun(run.id)
          .then((full) => store.upsertRun(full))
          .catch((error) => notify(error.message, "error"));
      }
    }
    if (!result || root.hidden) { if (!result) purge(chart); return; }
    suggestion.textContent = formatNumber(result.suggested_learning_rate);
    useButton.onclick = () => {
      launchForm.useLearningRate(run.variant, result.suggested_learning_rate);
      notify(`Learning rate ${formatNumber(result.suggested_learning_rate)} is now in the `
        + `launch form for ${run.variant}.`, "info");
    };
    const figure = lrFinderFigure(run);
    draw(chart, figure.data, figure.layout);
  };
  renderFields();
  store.on("runs", (runId) => {
    const run = store.runs.get(runId);
    if (!run || run.kind === "lr_finder" || runId === store.view.lrRun) refresh();
  });
  store.on("view", (changed) => {
    if (changed.includes("lrRun") || changed.includes("tab")) refresh();
  });
  return { redraw: refresh };
}
