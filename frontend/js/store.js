// The page's state in one place: runs, their epochs, the chosen runs and the view settings.
// Views subscribe to named topics and redraw themselves; nothing else holds run data.

const STATUS_RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };
export const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
export const DROPOUT_VARIANTS = new Set(["alpha_dropout", "onecycle"]);

const PALETTE = [
  "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
  "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
];

export const DEFAULT_VIEW = Object.freeze({
  tab: "curves",
  xAxis: "epoch",
  smoothing: 0,
  layout: "overlay",
  gridMetric: "accuracy",
  normEpoch: null,
  mcRun: null,
  lrRun: null,
});

function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export class Store {
  constructor() {
    this.runs = new Map();
    this.epochsByRun = new Map();
    this.completeHistory = new Set();
    this.selection = [];
    this.view = { ...DEFAULT_VIEW };
    this.listeners = new Map();
  }

  on(topic, listener) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(listener);
  }

  emit(topic, detail) {
    for (const listener of this.listeners.get(topic) || []) listener(detail);
  }

  // Runs arrive both from REST snapshots and from the event stream, over two connections
  // whose answers can cross; a run never moves back to an earlier status or fewer epochs.
  upsertRun(incoming) {
    const current = this.runs.get(incoming.id);
    if (current) {
      const rankNow = STATUS_RANK[current.status] ?? 0;
      const rankNew = STATUS_RANK[incoming.status] ?? 0;
      if (rankNew < rankNow) return false;
      if (rankNew === rankNow && incoming.epochs_done < current.epochs_done) return false;
    }
    const merged = { ...incoming };
    if (current && FINISHED.has(merged.status)) merged.progress = null;
    this.runs.set(merged.id, merged);
    this.refreshDerived(merged.id);
    this.emit("runs", merged.id);
    return true;
  }

  removeRun(runId) {
    if (!this.runs.delete(runId)) return;
    this.epochsByRun.delete(runId);
    this.completeHistory.delete(runId);
    const wasSelected = this.selection.includes(runId);
    if (wasSelected) this.selection = this.selection.filter((id) => id !== runId);
    this.emit("runs", runId);
    if (wasSelected) this.emit("selection", this.selection);
  }

  setProgress(runId, progress) {
    const run = this.runs.get(runId);
    if (!run || FINISHED.has(run.status) || progress.epoch <= run.epochs_done) return;
    run.progress = progress;
    if (run.status === "queued") run.status = "running";
    this.emit("progress", runId);
  }

  // Epochs are keyed by number, so the same epoch seen twice (snapshot and stream) counts once.
  addEpochs(runId, epochs, { complete = false } = {}) {
    if (!this.epochsByRun.has(runId)) this.epochsByRun.set(runId, new Map());
    const known = this.epochsByRun.get(runId);
    let added = 0;
    for (const metrics of epochs) {
      if (!known.has(metrics.epoch)) added += 1;
      known.set(metrics.epoch, metrics);
    }
    if (complete) this.completeHistory.add(runId);
    const run = this.runs.get(runId);
    if (run && added > 0) {
      const lastEpoch = Math.max(...known.keys());
      if (lastEpoch > run.epochs_done) run.epochs_done = lastEpoch;
      if (run.progress && run.progress.epoch <= run.epochs_done) run.progress = null;
      this.refreshDerived(runId);
      this.emit("runs", runId);
    }
    if (added > 0 || complete) this.emit("metrics", runId);
    return added;
  }

  epochs(runId) {
    const known = this.epochsByRun.get(runId);
    if (!known) return [];
    return [...known.values()].sort((a, b) => a.epoch - b.epoch);
  }

  // With the whole history in hand the best epoch (lowest val_loss, the one early stopping
  // restores) and the median epoch time follow each new epoch without waiting for the server.
  refreshDerived(runId) {
    const run = this.runs.get(runId);
    if (!run || !this.completeHistory.has(runId)) return;
    const epochs = this.epochs(runId);
    if (epochs.length === 0) return;
    const best = epochs.reduce((a, b) => (b.val_loss < a.val_loss ? b : a));
    run.best_epoch = best.epoch;
    run.best_val_accuracy = best.val_accuracy;
    run.seconds_per_epoch = median(epochs.map((metrics) => metrics.epoch_seconds));
  }

  setSelection(runIds) {
    const unique = [...new Set(runIds)];
    if (unique.join() === this.selection.join()) return;
    this.selection = unique;
    this.emit("selection", this.selection);
  }

  toggleSelected(runId, chosen) {
    const others = this.selection.filter((id) => id !== runId);
    this.setSelection(chosen ? [...others, runId] : others);
  }

  setView(changes) {
    const changed = Object.keys(changes).filter((key) => this.view[key] !== changes[key]);
    if (changed.length === 0) return;
    Object.assign(this.view, changes);
    this.emit("view", changed);
  }

  selectedRuns() {
    return this.selection.map((id) => this.runs.get(id)).filter(Boolean);
  }

  colorOf(runId) {
    const index = this.selection.indexOf(runId);
    return index < 0 ? "#9aa0a6" : PALETTE[index % PALETTE.length];
  }
}

export function runLabel(run) {
  return run.name && run.name.length > 0 ? run.name : `${run.variant} ${run.id.slice(0, 6)}`;
}

export { PALETTE };
