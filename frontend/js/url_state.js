// The chosen runs and the view live in the query string, so a copied link shows the same page.
import { DEFAULT_VIEW } from "./store.js";

const TABS = new Set(["curves", "normalization", "mc-dropout", "lr-finder"]);

// URL parameter -> [view key, parse, format]. Values that equal the default are left out.
const FIELDS = {
  tab: ["tab", (value) => (TABS.has(value) ? value : DEFAULT_VIEW.tab), String],
  x: ["xAxis", (value) => (value === "time" ? "time" : "epoch"), String],
  smooth: ["smoothing", (value) => {
    const number = Number(value);
    return Number.isFinite(number) ? Math.min(Math.max(number, 0), 0.95) : 0;
  }, String],
  layout: ["layout", (value) => (value === "grid" ? "grid" : "overlay"), String],
  metric: ["gridMetric", (value) => (value === "loss" ? "loss" : "accuracy"), String],
  epoch: ["normEpoch", (value) => {
    const number = Number.parseInt(value, 10);
    return Number.isFinite(number) && number >= 0 ? number : null;
  }, String],
  mc: ["mcRun", (value) => value || null, String],
  lr: ["lrRun", (value) => value || null, String],
};

export function readUrlState(location = window.location) {
  const params = new URLSearchParams(location.search);
  const view = {};
  for (const [param, [key, parse]] of Object.entries(FIELDS)) {
    if (params.has(param)) view[key] = parse(params.get(param));
  }
  const runs = params.has("runs") ? params.get("runs").split(",").filter(Boolean) : null;
  return { view, runs };
}

export function urlFor(store) {
  const params = new URLSearchParams();
  if (store.selection.length > 0) params.set("runs", store.selection.join(","));
  for (const [param, [key, , format]] of Object.entries(FIELDS)) {
    const value = store.view[key];
    if (value !== null && value !== undefined && value !== DEFAULT_VIEW[key]) {
      params.set(param, format(value));
    }
  }
  const query = params.toString().replace(/%2C/g, ",");
  return `${window.location.pathname}${query ? `?${query}` : ""}`;
}

// replaceState rather than pushState: every slider move would otherwise fill the history.
export function syncUrlWithStore(store) {
  const write = () => {
    const next = urlFor(store);
    const current = `${window.location.pathname}${window.location.search}`;
    if (next !== current) window.history.replaceState(null, "", next);
  };
  store.on("selection", write);
  store.on("view", write);
  return write;
}
