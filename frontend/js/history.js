// Fetches a run's full epoch history once; the event stream keeps it current afterwards.
import { api } from "./api.js";

const inFlight = new Map();

export function ensureHistory(store, runId, onError) {
  if (store.completeHistory.has(runId)) return Promise.resolve();
  if (inFlight.has(runId)) return inFlight.get(runId);
  const loading = api.metrics(runId)
    .then((epochs) => { store.addEpochs(runId, epochs, { complete: true }); })
    .catch((error) => { if (onError && store.runs.has(runId)) onError(error); })
    .finally(() => { inFlight.delete(runId); });
  inFlight.set(runId, loading);
  return loading;
}

// Coalesces many change notifications into one redraw per animation frame.
export function frameScheduler(callback) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      callback();
    });
  };
}
