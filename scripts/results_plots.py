"""The PNG figures of docs/results.md, drawn with matplotlib from the runs' stored numbers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from scripts.results_report import TITLES, FinishedRun  # noqa: E402


def plot_overlay(runs: list[FinishedRun], path: Path) -> None:
    """Validation accuracy of every run against epoch and against wall-clock seconds."""
    figure, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for run in runs:
        if not run.epochs:
            continue
        accuracy = [metrics.val_accuracy for metrics in run.epochs]
        line = by_epoch.plot([m.epoch for m in run.epochs], accuracy, label=TITLES[run.variant])
        by_time.plot([m.elapsed_seconds for m in run.epochs], accuracy, color=line[0].get_color())
        if run.summary:
            best = run.summary.best_epoch
            by_epoch.plot(best, run.summary.best_val_accuracy, "o", color=line[0].get_color())
    by_epoch.set(title="Validation accuracy by epoch", xlabel="epoch", ylabel="val_accuracy")
    by_time.set(title="Validation accuracy by wall-clock time", xlabel="wall-clock seconds")
    by_epoch.legend()
    for axis in (by_epoch, by_time):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_mc_dropout(runs: list[FinishedRun], path: Path) -> None:
    """Top-class confidence histograms, deterministic against MC, for each dropout run."""
    reports = [
        (run, run.summary.mc_dropout) for run in runs if run.summary and run.summary.mc_dropout
    ]
    if not reports:
        return
    figure, axes = plt.subplots(len(reports), 2, figsize=(12, 4 * len(reports)), squeeze=False)
    for row, (run, report) in enumerate(reports):
        for column, (label, stats) in enumerate(
            (("deterministic", report.deterministic), ("MC Dropout", report.monte_carlo))
        ):
            axis = axes[row][column]
            edges = stats.confidence_correct.bin_edges
            widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
            axis.bar(edges[:-1], stats.confidence_correct.counts, widths, align="edge",
                     alpha=0.6, label="correct")
            axis.bar(edges[:-1], stats.confidence_wrong.counts, widths, align="edge",
                     alpha=0.6, label="wrong")
            axis.set(
                title=f"{TITLES[run.variant]}, {label}: accuracy {100 * stats.accuracy:.1f}%, "
                f"ECE {stats.expected_calibration_error:.3f}",
                xlabel="top-class confidence",
                ylabel="test images",
            )
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
