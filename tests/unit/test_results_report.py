"""The results page states what the numbers say, and changes when they change."""

from __future__ import annotations

from backend.contract import EpochMetrics, RunSummary
from scripts.results_report import FinishedRun, batchnorm_answers, render_markdown, selu_answer


def _epochs(accuracies: list[float], seconds_per_epoch: float, spread: float) -> list[EpochMetrics]:
    return [
        EpochMetrics(
            epoch=index + 1,
            loss=1.0,
            accuracy=accuracy,
            val_loss=1.0,
            val_accuracy=accuracy,
            learning_rate=1e-3,
            epoch_seconds=seconds_per_epoch,
            elapsed_seconds=seconds_per_epoch * (index + 1),
            activation_means=[spread, -spread],
            activation_stds=[1.0 - spread, 1.0 + spread],
        )
        for index, accuracy in enumerate(accuracies)
    ]


def _run(variant: str, accuracies: list[float], seconds: float, spread: float) -> FinishedRun:
    best = max(range(len(accuracies)), key=accuracies.__getitem__)
    summary = RunSummary(
        best_epoch=best + 1,
        best_val_loss=1.0,
        best_val_accuracy=accuracies[best],
        test_loss=1.0,
        test_accuracy=accuracies[best] - 0.01,
        epochs_run=len(accuracies),
        stopped_early=False,
        total_seconds=seconds * len(accuracies),
        median_epoch_seconds=seconds,
        model_path=f"models/{variant}.keras",
    )
    epochs = _epochs(accuracies, seconds, spread)
    return FinishedRun(variant, variant, "succeeded", "CPU", summary, epochs)


def test_batchnorm_answers_follow_the_numbers():
    baseline = _run("baseline", [0.30, 0.40, 0.45], seconds=2.0, spread=0.9)
    batchnorm = _run("batchnorm", [0.42, 0.47, 0.50], seconds=3.0, spread=0.1)
    faster, better, cost = batchnorm_answers(baseline, batchnorm)
    assert "after 6 s against the baseline's 6 s" in faster
    assert "gives a better model: 50.0% against 45.0%" in better
    assert "1.50× the baseline's" in cost

    slow_batchnorm = _run("batchnorm", [0.20, 0.30, 0.40], seconds=3.0, spread=0.1)
    faster, better, _ = batchnorm_answers(baseline, slow_batchnorm)
    assert "never reached the baseline's best validation accuracy (45.0%)" in faster
    assert "no better model" in better


def test_selu_verdict_depends_on_layer_statistics():
    baseline = _run("baseline", [0.3, 0.4], seconds=1.0, spread=0.9)
    assert selu_answer(_run("selu", [0.3, 0.4], 1.0, spread=0.1), baseline)[0].startswith(
        "- Does SELU self-normalize? Yes"
    )
    assert "Not fully" in selu_answer(_run("selu", [0.3, 0.4], 1.0, spread=0.8), baseline)[0]


def test_markdown_has_a_row_per_run_and_marks_unfinished_ones():
    runs = [
        _run("baseline", [0.3, 0.4], 1.0, 0.5),
        FinishedRun("selu", "selu", "failed", "CPU", None, []),
    ]
    page = render_markdown(runs, "dataset synthetic")
    assert "| baseline (He + ELU) | succeeded | 40.0% (2) | 39.0% | 1.0 | 2 s |" in page
    assert "| SELU | failed | – |" in page
    assert "SELU: not answered, activation statistics are missing." in page
