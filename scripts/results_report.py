"""Turns finished runs into docs/results.md: a table, and the exercise's answers drawn from it.

Every sentence of the answers is computed from the measured numbers, so a rerun
that measures something else says something else.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from backend.contract import ActivationStatistics, EpochMetrics, RunSummary

TITLES = {
    "baseline": "baseline (He + ELU)",
    "batchnorm": "BatchNorm",
    "selu": "SELU",
    "alpha_dropout": "alpha dropout",
    "onecycle": "1cycle",
}


@dataclass(frozen=True)
class FinishedRun:
    variant: str
    run_id: str
    status: str
    device: str
    summary: RunSummary | None
    epochs: list[EpochMetrics]
    # The hidden layers' statistics before the first weight update, when the worker sent them.
    initial: ActivationStatistics | None = None

    def seconds_to_epoch(self, epoch: int) -> float:
        return next(e.elapsed_seconds for e in self.epochs if e.epoch == epoch)

    def seconds_to_reach(self, val_accuracy: float) -> float | None:
        """Wall-clock seconds until the validation accuracy first reached the given value."""
        for metrics in self.epochs:
            if metrics.val_accuracy >= val_accuracy:
                return metrics.elapsed_seconds
        return None


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def results_table(runs: list[FinishedRun]) -> list[str]:
    lines = [
        "| variant | status | best val acc (epoch) | test acc | s/epoch | time to best | "
        "MC acc (det.) | ECE MC (det.) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        summary = run.summary
        if summary is None:
            lines.append(f"| {TITLES[run.variant]} | {run.status} | – | – | – | – | – | – |")
            continue
        mc = summary.mc_dropout
        mc_cells = (
            f"{_percent(mc.monte_carlo.accuracy)} ({_percent(mc.deterministic.accuracy)}) | "
            f"{mc.monte_carlo.expected_calibration_error:.3f} "
            f"({mc.deterministic.expected_calibration_error:.3f})"
            if mc
            else "– | –"
        )
        lines.append(
            f"| {TITLES[run.variant]} | {run.status} | {_percent(summary.best_val_accuracy)} "
            f"({summary.best_epoch}) | {_percent(summary.test_accuracy)} | "
            f"{summary.median_epoch_seconds:.1f} | "
            f"{run.seconds_to_epoch(summary.best_epoch):.0f} s | "
            f"{mc_cells} |"
        )
    return lines


# The epoch at which the answers compare how far two runs got early in training.
EARLY_EPOCH = 3


def _accuracy_at(run: FinishedRun, epoch: int) -> float | None:
    return next((m.val_accuracy for m in run.epochs if m.epoch == epoch), None)


def _race(runner: FinishedRun, reference: FinishedRun, subject: str, whose: str) -> str:
    """When runner first reached reference's best validation accuracy, against the time
    reference itself took to get there; whose names reference in the sentence."""
    assert reference.summary is not None
    target, best_epoch = reference.summary.best_val_accuracy, reference.summary.best_epoch
    goal = f"{whose} best validation accuracy ({_percent(target)})"
    reached = runner.seconds_to_reach(target)
    if reached is None:
        return f"{subject} never reached {goal}"
    return (
        f"{subject} reached {goal} after {reached:.0f} s against {whose} "
        f"{reference.seconds_to_epoch(best_epoch):.0f} s"
    )


def batchnorm_answers(baseline: FinishedRun, batchnorm: FinishedRun) -> list[str]:
    base, bn = baseline.summary, batchnorm.summary
    if base is None or bn is None:
        return ["- BatchNorm: not answered, one of the two runs did not finish."]
    faster = _race(batchnorm, baseline, "BatchNorm", "the baseline's")
    better = "a better" if bn.best_val_accuracy > base.best_val_accuracy else "no better"
    cost = bn.median_epoch_seconds / base.median_epoch_seconds
    early = _accuracy_at(batchnorm, EARLY_EPOCH), _accuracy_at(baseline, EARLY_EPOCH)
    early_text = (
        f" After {EARLY_EPOCH} epochs it stood at {_percent(early[0])} validation accuracy "
        f"against the baseline's {_percent(early[1])}."
        if early[0] is not None and early[1] is not None
        else ""
    )
    return [
        f"- Does BatchNorm converge faster? {faster}; its best epoch was {bn.best_epoch} against "
        f"{base.best_epoch}.{early_text}",
        f"- Does it give a better model? It gives {better} model: "
        f"{_percent(bn.best_val_accuracy)} against {_percent(base.best_val_accuracy)} best "
        f"validation accuracy, {_percent(bn.test_accuracy)} against "
        f"{_percent(base.test_accuracy)} on the test set.",
        f"- What does it cost in speed? An epoch takes {cost:.2f}× the baseline's "
        f"({bn.median_epoch_seconds:.1f} s against {base.median_epoch_seconds:.1f} s).",
    ]


def _spread(means: list[float], stds: list[float]) -> tuple[float, float, float] | None:
    """Largest |mean| and the lowest and highest standard deviation across the hidden layers."""
    if not means or not stds:
        return None
    return max(abs(mean) for mean in means), min(stds), max(stds)


def _normalized(spread: tuple[float, float, float]) -> bool:
    largest_mean, low_std, high_std = spread
    return largest_mean < 0.5 and 0.5 < low_std and high_std < 2.0


def _describe(spread: tuple[float, float, float]) -> str:
    return f"means within ±{spread[0]:.2f}, standard deviations {spread[1]:.2f}–{spread[2]:.2f}"


def _at_best_epoch(run: FinishedRun) -> EpochMetrics | None:
    best = run.summary.best_epoch if run.summary else None
    chosen = [m for m in run.epochs if m.epoch == best] or run.epochs[-1:]
    return chosen[0] if chosen and chosen[0].activation_stds else None


def _initial_spread(run: FinishedRun) -> tuple[float, float, float] | None:
    return _spread(run.initial.means, run.initial.stds) if run.initial else None


def selu_answer(selu: FinishedRun, baseline: FinishedRun) -> list[str]:
    """Self-normalization before training and at the best epoch, against the ELU baseline."""
    trained, trained_baseline = _at_best_epoch(selu), _at_best_epoch(baseline)
    if trained is None or trained_baseline is None:
        return ["- SELU: not answered, activation statistics are missing."]
    sentences = []
    initial = _initial_spread(selu)
    if initial:
        baseline_initial = _initial_spread(baseline)
        sentences.append(
            f"Before training, {'yes' if _normalized(initial) else 'no'}: its hidden layers' "
            f"{_describe(initial)}"
            + (f" (the ELU baseline's: {_describe(baseline_initial)})" if baseline_initial else "")
            + "."
        )
    spread = _spread(trained.activation_means, trained.activation_stds)
    baseline_spread = _spread(trained_baseline.activation_means, trained_baseline.activation_stds)
    assert spread is not None and baseline_spread is not None
    stds = trained.activation_stds
    kept = _normalized(spread)
    sentences.append(
        f"At its best epoch ({trained.epoch}), {'yes' if kept else 'no'}: {_describe(spread)}, "
        f"from {stds[0]:.2f} next to the input to {stds[-1]:.2f} in the last hidden layer"
        + (
            ""
            if kept
            else "; training moved the weights off the LeCun-normal scale that the fixed point "
            "of mean 0 and standard deviation 1 assumes"
        )
        + f" (the ELU baseline at its best epoch ({trained_baseline.epoch}): "
        f"{_describe(baseline_spread)})."
    )
    return ["- Does SELU self-normalize? " + " ".join(sentences)]


def selu_against_batchnorm(selu: FinishedRun, batchnorm: FinishedRun) -> list[str]:
    own, bn = selu.summary, batchnorm.summary
    if own is None or bn is None:
        return ["- SELU against BatchNorm: not answered, one of the two runs did not finish."]
    better = "better" if own.best_val_accuracy > bn.best_val_accuracy else "no better"
    return [
        f"- Is SELU a replacement for BatchNorm here? It gives a {better} model: "
        f"{_percent(own.best_val_accuracy)} best validation accuracy (epoch {own.best_epoch}) "
        f"against {_percent(bn.best_val_accuracy)} (epoch {bn.best_epoch}), at "
        f"{own.median_epoch_seconds:.1f} s per epoch against {bn.median_epoch_seconds:.1f} s."
    ]


def onecycle_answer(onecycle: FinishedRun, reference: FinishedRun) -> list[str]:
    """1cycle against the same network trained with Nadam and early stopping."""
    cycled, nadam = onecycle.summary, reference.summary
    if cycled is None or nadam is None:
        return ["- 1cycle: not answered, one of the two runs did not finish."]
    speed = _race(onecycle, reference, "it", "the Nadam run's")
    better = "better" if cycled.best_val_accuracy > nadam.best_val_accuracy else "no better"
    return [
        f"- Does 1cycle improve training speed and accuracy (against {TITLES[reference.variant]} "
        f"with Nadam and early stopping)? In {cycled.epochs_run} epochs and "
        f"{cycled.total_seconds:.0f} s in all (the Nadam run took {nadam.epochs_run} epochs and "
        f"{nadam.total_seconds:.0f} s), {speed}; it gives a {better} model: "
        f"{_percent(cycled.best_val_accuracy)} against {_percent(nadam.best_val_accuracy)} best "
        f"validation accuracy, {_percent(cycled.test_accuracy)} against "
        f"{_percent(nadam.test_accuracy)} on the test set."
    ]


def mc_dropout_answer(run: FinishedRun) -> list[str]:
    if run.summary is None or run.summary.mc_dropout is None:
        return [f"- MC Dropout ({TITLES[run.variant]}): not answered, no report."]
    mc = run.summary.mc_dropout
    gain = mc.monte_carlo.accuracy - mc.deterministic.accuracy
    calibration = (
        mc.deterministic.expected_calibration_error - mc.monte_carlo.expected_calibration_error
    )
    return [
        f"- Does MC Dropout help ({TITLES[run.variant]}, {mc.samples} samples)? Accuracy "
        f"{'+' if gain >= 0 else ''}{100 * gain:.2f} points ({_percent(mc.deterministic.accuracy)} "
        f"→ {_percent(mc.monte_carlo.accuracy)}); expected calibration error "
        f"{mc.deterministic.expected_calibration_error:.3f} → "
        f"{mc.monte_carlo.expected_calibration_error:.3f} "
        f"({'better' if calibration > 0 else 'not better'} calibrated)."
    ]


def render_markdown(
    runs: list[FinishedRun], dataset_note: str, dashboard_picture: str | None = None
) -> str:
    """The page; dashboard_picture names a screenshot beside it, when one was taken."""
    by_variant = {run.variant: run for run in runs}
    seconds = [run.summary.total_seconds for run in runs if run.summary]
    lines = [
        "# Results on CIFAR-10",
        "",
        "Each variant trained once with its defaults through the running service "
        f"({dataset_note}). "
        f"Devices: {', '.join(sorted({run.device for run in runs}))}. Total training time "
        f"{sum(seconds) / 60:.0f} min; median run {statistics.median(seconds) / 60:.1f} min."
        if seconds
        else "No run finished.",
        "",
        *results_table(runs),
        "",
        *(
            [f"![The dashboard with these runs overlaid]({dashboard_picture})", ""]
            if dashboard_picture
            else []
        ),
        "![validation accuracy overlay](results-overlay.png)",
        "",
        "![MC Dropout confidence](results-mc-dropout.png)",
        "",
        "## The exercise's questions",
        "",
    ]
    if {"baseline", "batchnorm"} <= by_variant.keys():
        lines += batchnorm_answers(by_variant["baseline"], by_variant["batchnorm"])
    if {"selu", "baseline"} <= by_variant.keys():
        lines += selu_answer(by_variant["selu"], by_variant["baseline"])
    if {"selu", "batchnorm"} <= by_variant.keys():
        lines += selu_against_batchnorm(by_variant["selu"], by_variant["batchnorm"])
    for variant in ("alpha_dropout", "onecycle"):
        if variant in by_variant:
            lines += mc_dropout_answer(by_variant[variant])
    if {"onecycle", "alpha_dropout"} <= by_variant.keys():
        lines += onecycle_answer(by_variant["onecycle"], by_variant["alpha_dropout"])
    lines += [
        "",
        "Each variant ran once, with seed 42: a difference of a point or two between two rows "
        "may be seed noise, which one run per variant does not measure. Seconds are wall-clock "
        "time on the device named above, one run at a time.",
    ]
    return "\n".join(lines) + "\n"
