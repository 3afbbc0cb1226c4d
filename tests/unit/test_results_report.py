"""The results page states what the numbers say, and changes when they change."""

from __future__ import annotations

from dataclasses import replace

from backend.contract import ActivationStatistics, EpochMetrics, RunSummary
from scripts.results_report import (
    FinishedRun,
    batchnorm_answers,
    onecycle_answer,
    render_markdown,
    selu_against_batchnorm,
    selu_answer,
)


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
    assert "After 3 epochs it stood at 50.0% validation accuracy against the baseline's 45.0%" in (
        faster
    )
    assert "gives a better model: 50.0% against 45.0%" in better
    assert "1.50× the baseline's" in cost

    slow_batchnorm = _run("batchnorm", [0.20, 0.30, 0.40], seconds=3.0, spread=0.1)
    faster, better, _ = batchnorm_answers(baseline, slow_batchnorm)
    assert "never reached the baseline's best validation accuracy (45.0%)" in faster
    assert "no better model" in better


def test_selu_verdict_depends_on_layer_statistics():
    baseline = _run("baseline", [0.3, 0.4], seconds=1.0, spread=0.9)
    (kept,) = selu_answer(_run("selu", [0.3, 0.4], 1.0, spread=0.1), baseline)
    assert kept.startswith("- Does SELU self-normalize? At its best epoch (2), yes: means within")
    assert "off the LeCun-normal scale" not in kept
    (lost,) = selu_answer(_run("selu", [0.3, 0.4], 1.0, spread=0.8), baseline)
    assert "At its best epoch (2), no: means within ±0.80, standard deviations 0.20–1.80" in lost
    assert "from 0.20 next to the input to 1.80 in the last hidden layer" in lost
    assert "off the LeCun-normal scale" in lost
    assert "(the ELU baseline at its best epoch (2): means within ±0.90" in lost


def test_selu_answer_tells_the_untrained_network_from_the_trained_one():
    at_init = ActivationStatistics(means=[0.01, -0.03], stds=[0.95, 1.01])
    drifted = replace(_run("selu", [0.3, 0.4], 1.0, spread=0.8), initial=at_init)
    baseline = replace(
        _run("baseline", [0.3, 0.4], 1.0, spread=0.9),
        initial=ActivationStatistics(means=[0.4, 0.9], stds=[0.6, 2.5]),
    )
    (answer,) = selu_answer(drifted, baseline)
    assert (
        "Before training, yes: its hidden layers' means within ±0.03, standard deviations "
        "0.95–1.01 (the ELU baseline's: means within ±0.90, standard deviations 0.60–2.50)."
    ) in answer
    assert "At its best epoch (2), no" in answer


def test_markdown_has_a_row_per_run_and_marks_unfinished_ones():
    runs = [
        _run("baseline", [0.3, 0.4], 1.0, 0.5),
        FinishedRun("selu", "selu", "failed", "CPU", None, []),
    ]
    page = render_markdown(runs, "dataset synthetic")
    assert "| baseline (He + ELU) | succeeded | 40.0% (2) | 39.0% | 1.0 | 2 s |" in page
    assert "| SELU | failed | – |" in page
    assert "SELU: not answered, activation statistics are missing." in page


def test_selu_is_compared_with_batchnorm_on_accuracy_and_speed():
    batchnorm = _run("batchnorm", [0.42, 0.50], seconds=3.0, spread=0.1)
    (better,) = selu_against_batchnorm(_run("selu", [0.45, 0.52], 2.0, 0.1), batchnorm)
    assert "gives a better model: 52.0% best validation accuracy (epoch 2) against 50.0%" in better
    assert "2.0 s per epoch against 3.0 s" in better
    (worse,) = selu_against_batchnorm(_run("selu", [0.40, 0.45], 2.0, 0.1), batchnorm)
    assert "no better model" in worse


def test_onecycle_answer_compares_time_and_accuracy_with_the_nadam_run():
    nadam = _run("alpha_dropout", [0.40, 0.45, 0.48, 0.47], seconds=5.0, spread=0.1)
    quick = _run("onecycle", [0.35, 0.49, 0.52], seconds=2.0, spread=0.1)
    (answer,) = onecycle_answer(quick, nadam)
    assert "In 3 epochs and 6 s in all (the Nadam run took 4 epochs and 20 s)" in answer
    assert "best validation accuracy (48.0%) after 4 s against the Nadam run's 15 s" in answer
    assert "gives a better model: 52.0% against 48.0%" in answer
    (slow,) = onecycle_answer(_run("onecycle", [0.30, 0.40], 2.0, 0.1), nadam)
    assert "never reached the Nadam run's best validation accuracy (48.0%)" in slow
    assert "no better model" in slow
