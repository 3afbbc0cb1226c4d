// The runs table: one row per run, updated in place as run, epoch and progress events arrive.
import { api } from "./api.js";
import { element, formatDuration, formatNumber, formatPercent } from "./dom.js";
import { FINISHED, runLabel } from "./store.js";

const COLUMNS = ["show", "name", "variant", "status", "progress", "time left",
  "best val acc. (epoch)", "s / epoch", ""];

function epochFraction(run) {
  const progress = run.progress;
  if (!progress || progress.epoch <= run.epochs_done || !progress.batches_total) return 0;
  return Math.min(progress.batches_done / progress.batches_total, 1);
}

// Early stopping can end a run sooner, so the estimate is an upper bound ("at most").
export function secondsLeft(run, nowSeconds = Date.now() / 1000) {
  if (run.status !== "running" || run.kind === "lr_finder") return null;
  const fraction = epochFraction(run);
  const remainingEpochs = Math.max(run.max_epochs - run.epochs_done - fraction, 0);
  let perEpoch = run.seconds_per_epoch;
  const doneSoFar = run.epochs_done + fraction;
  if (!perEpoch && run.started_at && doneSoFar > 0) {
    perEpoch = (nowSeconds - run.started_at) / doneSoFar;
  }
  return perEpoch ? remainingEpochs * perEpoch : null;
}

function progressText(run) {
  if (run.kind === "lr_finder") {
    const progress = run.progress;
    if (FINISHED.has(run.status) || !progress) return "learning-rate range test";
    return `range test: batch ${progress.batches_done} of ${progress.batches_total}`;
  }
  if (FINISHED.has(run.status)) {
    const early = run.summary && run.summary.stopped_early ? ", stopped early" : "";
    return `${run.epochs_done} of at most ${run.max_epochs} epochs${early}`;
  }
  const fraction = epochFraction(run);
  if (fraction > 0) {
    const inEpoch = formatPercent(fraction, 0);
    return `epoch ${run.progress.epoch} of at most ${run.max_epochs} · ${inEpoch}`;
  }
  return `${run.epochs_done} of at most ${run.max_epochs} epochs`;
}

function progressFraction(run) {
  if (run.kind === "lr_finder") {
    if (run.status === "succeeded") return 1;
    const progress = run.progress;
    return progress && progress.batches_total ? progress.batches_done / progress.batches_total : 0;
  }
  if (run.status === "succeeded") return 1;
  return Math.min((run.epochs_done + epochFraction(run)) / Math.max(run.max_epochs, 1), 1);
}

function timeText(run) {
  if (run.status === "queued") return "waiting for a worker";
  if (FINISHED.has(run.status)) {
    return run.started_at && run.finished_at
      ? `took ${formatDuration(run.finished_at - run.started_at)}` : "–";
  }
  const left = secondsLeft(run);
  return left === null ? "estimating…" : `at most ${formatDuration(left)}`;
}

// How often the run was taken up again from a checkpoint and how many workers it lost, so
// that a run whose timings were interrupted says so.
function historyText(run) {
  const parts = [];
  if (run.resumes) parts.push(`resumed ${run.resumes}×`);
  if (run.worker_losses) {
    parts.push(`${run.worker_losses} worker${run.worker_losses === 1 ? "" : "s"} lost`);
  }
  return parts.join(" · ");
}

function buildRow(run, store, notify) {
  const checkbox = element("input", { type: "checkbox", className: "show-run",
    onchange: () => store.toggleSelected(run.id, checkbox.checked) });
  const nameText = element("span", { className: "run-name" });
  const detail = element("small", { className: "run-detail" });
  const errorText = element("small", { className: "run-error" });
  const status = element("span", { className: "status" });
  const history = element("small", { className: "run-history" });
  const bar = element("div", { className: "bar" });
  const meter = element("div", { className: "meter", role: "progressbar",
    "aria-valuemin": 0, "aria-valuemax": 100 }, [bar]);
  const progressLabel = element("small", { className: "progress-text" });
  const cells = {
    show: element("td", { className: "show" }, [checkbox]),
    name: element("td", { className: "name" }, [nameText, detail, errorText]),
    variant: element("td", { className: "variant" }),
    status: element("td", { className: "status-cell" }, [status, history]),
    progress: element("td", { className: "progress" }, [meter, progressLabel]),
    timeLeft: element("td", { className: "time-left" }),
    best: element("td", { className: "best" }),
    perEpoch: element("td", { className: "per-epoch" }),
    actions: element("td", { className: "actions" }),
  };
  const act = (action, doneMessage) => async () => {
    try {
      const result = await action(run.id);
      if (result && result.id) store.upsertRun(result);
      if (doneMessage) notify(doneMessage, "info");
    } catch (error) {
      notify(error.message, "error");
    }
  };
  const cancel = element("button", { type: "button", className: "cancel", text: "Cancel",
    onclick: act(api.cancelRun) });
  const remove = element("button", { type: "button", className: "delete", text: "Delete",
    onclick: act(async (runId) => { await api.deleteRun(runId); store.removeRun(runId); }) });
  const csv = element("a", { className: "csv", text: "CSV", href: api.metricsCsvUrl(run.id),
    download: `${run.id}-metrics.csv` });
  cells.actions.append(cancel, remove, csv);
  const row = element("tr", { dataset: { runId: run.id } }, Object.values(cells));

  const update = (latest) => {
    const label = runLabel(latest);
    row.dataset.status = latest.status;
    nameText.textContent = label;
    detail.textContent = [latest.device, latest.worker].filter(Boolean).join(" · ");
    errorText.textContent = latest.error || latest.note || "";
    cells.variant.textContent = latest.kind === "lr_finder"
      ? `${latest.variant} (range test)` : latest.variant;
    const cancelling = latest.cancel_requested && !FINISHED.has(latest.status);
    status.textContent = cancelling ? "cancelling…" : latest.status;
    status.className = `status status-${latest.status}`;
    history.textContent = historyText(latest);
    const fraction = progressFraction(latest);
    bar.style.width = `${(fraction * 100).toFixed(1)}%`;
    meter.setAttribute("aria-valuenow", (fraction * 100).toFixed(0));
    progressLabel.textContent = progressText(latest);
    cells.timeLeft.textContent = timeText(latest);
    cells.best.textContent = latest.best_epoch
      ? `${formatPercent(latest.best_val_accuracy)} (${latest.best_epoch})` : "–";
    cells.perEpoch.textContent = latest.seconds_per_epoch
      ? `${formatNumber(latest.seconds_per_epoch)} s` : "–";
    checkbox.checked = store.selection.includes(latest.id);
    checkbox.disabled = latest.kind === "lr_finder";
    checkbox.setAttribute("aria-label", `Show ${label} in the charts`);
    checkbox.style.accentColor = store.colorOf(latest.id);
    cancel.disabled = FINISHED.has(latest.status) || cancelling;
    remove.disabled = latest.status === "running";
  };
  return { row, update };
}

export function mountRunsTable(root, store, notify) {
  const body = element("tbody");
  const empty = element("p", { className: "empty-note", id: "runs-empty",
    text: "No runs yet: press one of the Train buttons to start one." });
  const table = element("table", { id: "runs-table" }, [
    element("thead", {}, [element("tr", {}, COLUMNS.map((name) =>
      element("th", { scope: "col", text: name })))]),
    body,
  ]);
  root.append(empty, element("div", { className: "table-scroll" }, [table]));
  const rows = new Map();

  const refresh = (runId) => {
    const run = store.runs.get(runId);
    const existing = rows.get(runId);
    if (!run) {
      if (existing) existing.row.remove();
      rows.delete(runId);
    } else if (existing) {
      existing.update(run);
    } else {
      const created = buildRow(run, store, notify);
      created.update(run);
      rows.set(runId, created);
      // Newest first, as the server lists them.
      const next = [...body.children].find((tr) => {
        const other = store.runs.get(tr.dataset.runId);
        return other && other.created_at < run.created_at;
      });
      body.insertBefore(created.row, next || null);
    }
    empty.hidden = rows.size > 0;
  };
  const refreshAll = () => {
    for (const runId of [...rows.keys()]) if (!store.runs.has(runId)) refresh(runId);
    for (const runId of store.runs.keys()) refresh(runId);
  };
  store.on("runs", refresh);
  store.on("progress", refresh);
  store.on("selection", refreshAll);
  // Time-left estimates move between events too.
  setInterval(() => {
    for (const [runId, entry] of rows) {
      const run = store.runs.get(runId);
      if (run && run.status === "running") entry.update(run);
    }
  }, 1000);
  refreshAll();
  return { refreshAll };
}
