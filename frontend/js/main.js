// Wires the page together: state from the URL, the REST snapshot, the event stream and views.
import { mountTokenPrompt } from "./access.js";
import { api } from "./api.js";
import { element } from "./dom.js";
import { connectEvents } from "./events.js";
import { ensureHistory } from "./history.js";
import { mountCurvesView } from "./curves_view.js";
import { mountLaunchForm } from "./launch_form.js";
import { mountLrFinder } from "./lr_finder.js";
import { mountMcDropoutView } from "./mc_dropout.js";
import { mountNormalizationView } from "./normalization.js";
import { mountRunsTable } from "./runs_table.js";
import { Store, runLabel } from "./store.js";
import { readUrlState, syncUrlWithStore } from "./url_state.js";

const DEFAULT_SELECTION_SIZE = 4;

function notifier(root) {
  return (message, kind = "info") => {
    const notice = element("div", { className: `notice notice-${kind}` }, [
      element("span", { text: message }),
      element("button", { type: "button", className: "dismiss", "aria-label": "Dismiss",
        text: "×", onclick: () => notice.remove() }),
    ]);
    root.append(notice);
    if (kind !== "error") setTimeout(() => notice.remove(), 6000);
  };
}

async function showHealth(node) {
  try {
    const health = await api.health();
    const workers = health.workers.length;
    node.textContent = !health.redis ? "Redis is unreachable: start it, then reload."
      : workers === 0 ? "No worker is running: runs wait in the queue until one starts."
        : `${workers} worker${workers === 1 ? "" : "s"} ready`;
    node.dataset.state = health.status;
  } catch (error) {
    node.textContent = error.message;
    node.dataset.state = "degraded";
  }
}

function mountTabs(store, views) {
  const buttons = document.querySelectorAll("[role=tab]");
  for (const button of buttons) {
    button.addEventListener("click", () => store.setView({ tab: button.dataset.tab }));
  }
  const show = () => {
    for (const button of buttons) {
      const active = button.dataset.tab === store.view.tab;
      button.setAttribute("aria-selected", String(active));
      document.getElementById(`tab-${button.dataset.tab}`).hidden = !active;
    }
    views[store.view.tab].redraw();
  };
  store.on("view", (changed) => { if (changed.includes("tab")) show(); });
  show();
}

async function start() {
  const store = new Store();
  const notify = notifier(document.getElementById("notices"));
  const fromUrl = readUrlState();
  store.setView(fromUrl.view);
  if (fromUrl.runs) store.setSelection(fromUrl.runs);
  syncUrlWithStore(store)();
  mountTokenPrompt(document.getElementById("access"));

  let variants;
  try {
    variants = await api.variants();
  } catch (error) {
    // A 401 has opened the token form, which reloads the page once a token is accepted.
    if (error.status === 401) {
      const connection = document.getElementById("connection");
      connection.textContent = "token needed";
      connection.dataset.state = "token needed";
    } else {
      notify(`The variants could not be loaded: ${error.message}`, "error");
    }
    return;
  }
  const loadHistory = (runId) => ensureHistory(store, runId,
    (error) => notify(error.message, "error"));
  const launchForm = mountLaunchForm(document.getElementById("launch"), {
    variants, notify,
    onLaunched: (run) => {
      store.upsertRun(run);
      store.toggleSelected(run.id, true);
      notify(`Queued ${runLabel(run)}.`, "info");
    },
  });
  mountRunsTable(document.getElementById("runs"), store, notify);
  document.getElementById("clear-selection")
    .addEventListener("click", () => store.setSelection([]));
  const views = {
    curves: mountCurvesView(document.getElementById("tab-curves"), store),
    normalization: mountNormalizationView(document.getElementById("tab-normalization"), store),
    "mc-dropout": mountMcDropoutView(document.getElementById("tab-mc-dropout"), store, notify),
    "lr-finder": mountLrFinder(document.getElementById("tab-lr-finder"),
      { store, variants, launchForm, notify }),
  };
  mountTabs(store, views);

  store.on("selection", (selection) => selection.forEach(loadHistory));
  // Running runs keep their whole history, so the table's best epoch follows every epoch.
  store.on("runs", (runId) => {
    const run = store.runs.get(runId);
    if (run && run.status === "running" && run.kind === "train") loadHistory(runId);
  });

  let firstSnapshot = true;
  const loadSnapshot = async () => {
    try {
      const runs = await api.listRuns();
      runs.forEach((run) => store.upsertRun(run));
      if (firstSnapshot) {
        firstSnapshot = false;
        const known = store.selection.filter((runId) => store.runs.has(runId));
        const defaults = runs.filter((run) => run.kind === "train")
          .slice(0, DEFAULT_SELECTION_SIZE).map((run) => run.id);
        store.setSelection(fromUrl.runs ? known : defaults);
      }
      store.selection.forEach(loadHistory);
    } catch (error) {
      notify(`The runs could not be loaded: ${error.message}`, "error");
    }
  };
  const connection = document.getElementById("connection");
  const health = document.getElementById("health");
  connectEvents(store, {
    loadSnapshot,
    onStatus: (state) => {
      connection.dataset.state = state;
      connection.textContent = state === "live" ? "live" : `${state}…`;
      if (state === "live") showHealth(health);
    },
  });
  window.curvelab = { store };
}

start();
