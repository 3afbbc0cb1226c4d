// Turns a run's epochs into the x and y arrays a learning-curve chart draws.

export const CURVE_METRICS = Object.freeze([
  { key: "val_accuracy", title: "Validation accuracy", axisTitle: "validation accuracy" },
  { key: "val_loss", title: "Validation loss", axisTitle: "validation loss" },
  { key: "accuracy", title: "Training accuracy", axisTitle: "training accuracy" },
  { key: "loss", title: "Training loss", axisTitle: "training loss" },
]);

export const X_AXES = Object.freeze({
  epoch: { field: "epoch", title: "epoch" },
  time: { field: "elapsed_seconds", title: "wall-clock seconds" },
});

export function xAxisOf(name) {
  return X_AXES[name] || X_AXES.epoch;
}

// Exponential moving average with the start-up bias removed (as TensorBoard does), so the
// first points are not dragged towards zero. A weight of 0 returns the values unchanged.
export function smooth(values, weight) {
  if (!(weight > 0)) return values;
  const smoothed = new Array(values.length);
  let average = 0;
  let correction = 1;
  for (let index = 0; index < values.length; index += 1) {
    average = weight * average + (1 - weight) * values[index];
    correction *= weight;
    smoothed[index] = average / (1 - correction);
  }
  return smoothed;
}

// One run's curve for one metric: the raw values, the smoothed ones and the best epoch's point.
export function curveOf(series, metricKey, xAxisName, smoothing) {
  const xField = xAxisOf(xAxisName).field;
  const x = series.epochs.map((metrics) => metrics[xField]);
  const raw = series.epochs.map((metrics) => metrics[metricKey]);
  const best = series.epochs.find((metrics) => metrics.epoch === series.bestEpoch) || null;
  return {
    x,
    raw,
    y: smooth(raw, smoothing),
    best: best ? { x: best[xField], y: best[metricKey], epoch: best.epoch } : null,
  };
}

// Epochs are whole numbers: with only a few, Plotly's automatic ticks would show 1.5, 2.5.
export function xAxisTicks(seriesList, xAxisName) {
  if (xAxisName === "time") return {};
  const lastEpoch = Math.max(0, ...seriesList.map((series) => series.epochs.length));
  return lastEpoch <= 12 ? { tick0: 1, dtick: 1 } : {};
}
