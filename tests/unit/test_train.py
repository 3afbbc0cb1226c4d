"""run() end to end on the synthetic set: reports, summary, saved model, MC Dropout, cancel."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from backend.contract import (
    AlphaDropoutSpec,
    EpochMetrics,
    OneCycleSpec,
    SeluSpec,
)
from backend.settings import Settings
from tests.support.recording import RecordingReporter
from worker import train
from worker.train import describe_device, run


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, cifar10_path=None)


def all_finite(model: EpochMetrics) -> bool:
    values = [value for value in model.model_dump().values() if isinstance(value, float)]
    values += model.activation_means + model.activation_stds
    return all(math.isfinite(value) for value in values)


def test_a_short_selu_run_reports_every_epoch_in_order_and_saves_the_best_model(
    settings: Settings,
) -> None:
    reporter = RecordingReporter()
    spec = SeluSpec(dataset="synthetic", depth=3, width=32, max_epochs=3, patience=3)
    summary = run(spec, reporter, settings, run_id="selu-test")

    assert [metrics.epoch for metrics in reporter.epochs] == [1, 2, 3]
    # The untrained SELU net on standardized inputs sits at the fixed point, layer after layer.
    (initial,) = reporter.initial_activations
    assert len(initial.means) == len(initial.stds) == 3
    assert all(abs(mean) < 0.15 for mean in initial.means), initial.means
    assert all(0.8 < std < 1.2 for std in initial.stds), initial.stds
    for metrics in reporter.epochs:
        assert all_finite(metrics)
        assert len(metrics.activation_means) == len(metrics.activation_stds) == 3
        assert metrics.learning_rate == pytest.approx(7e-4)
    elapsed = [metrics.elapsed_seconds for metrics in reporter.epochs]
    assert elapsed == sorted(elapsed)
    # 1,800 training images in batches of 32: 57 batches, the last one partial.
    assert reporter.cancel_checks == 3 * 57
    assert all(progress.batches_total == 57 for progress in reporter.progress)
    assert all(0 < progress.batches_done < 57 for progress in reporter.progress)

    val_losses = [metrics.val_loss for metrics in reporter.epochs]
    assert summary.best_epoch == val_losses.index(min(val_losses)) + 1
    assert summary.best_val_loss == pytest.approx(min(val_losses))
    assert summary.epochs_run == 3 and not summary.stopped_early and not summary.cancelled
    assert summary.best_val_accuracy >= 0.5  # The synthetic set is learnable.
    assert 0 <= summary.test_accuracy <= 1 and math.isfinite(summary.test_loss)
    assert summary.mc_dropout is None
    assert summary.model_path == "models/selu-test.keras"
    saved = keras.saving.load_model(settings.var_dir / summary.model_path)
    assert saved.evaluate(*_validation(settings), verbose=0)[0] == pytest.approx(
        summary.best_val_loss, rel=1e-4
    )


def _validation(settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    from worker.data import load_splits, prepare_inputs

    inputs = prepare_inputs(load_splits("synthetic", settings, 42), standardize=True)
    return inputs.x_valid, inputs.y_valid


def test_onecycle_follows_its_schedule_and_reports_mc_dropout(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long runs compile with XLA; this short one is made to as well, schedule included.
    monkeypatch.setattr(train, "XLA_MIN_STEPS", 1)
    reporter = RecordingReporter()
    spec = OneCycleSpec(dataset="synthetic", depth=2, width=16, max_epochs=2, mc_samples=10)
    summary = run(spec, reporter, settings)

    rates = [metrics.learning_rate for metrics in reporter.epochs]
    # The rate reported is the last one applied in the epoch: the schedule ends at peak/1000.
    assert rates[-1] == pytest.approx(0.05 / 1000, rel=1e-3)
    assert summary.epochs_run == 2 and not summary.stopped_early
    report = summary.mc_dropout
    assert report is not None
    assert report.samples == 10 and report.dropout_rate == pytest.approx(0.1)
    assert report.evaluated_images == 500
    assert [entry.samples for entry in report.accuracy_by_samples] == [1, 2, 5, 10]
    assert report.deterministic.accuracy == pytest.approx(summary.test_accuracy, abs=1e-6)
    assert summary.model_path.startswith("models/onecycle-")


def test_a_cancel_stops_training_within_one_batch_and_still_saves(settings: Settings) -> None:
    reporter = RecordingReporter(cancel_after_batches=5)
    spec = AlphaDropoutSpec(dataset="synthetic", depth=2, width=16, max_epochs=5, mc_samples=5)
    summary = run(spec, reporter, settings, run_id="cancelled")

    assert summary.cancelled
    assert reporter.cancel_checks == 6  # Five batches, then the check that saw the cancel.
    assert reporter.epochs == []  # The interrupted epoch is not reported as if it were whole.
    assert summary.epochs_run == 0 and summary.best_epoch == 0
    assert math.isfinite(summary.best_val_loss) and math.isfinite(summary.test_loss)
    assert summary.mc_dropout is None
    assert (settings.var_dir / "models" / "cancelled.keras").exists()


def test_early_stopping_ends_the_run_once_patience_runs_out(settings: Settings) -> None:
    # A rate this high makes val_loss stall at once, so patience 1 stops after a few epochs.
    spec = SeluSpec(
        dataset="synthetic", depth=2, width=16, max_epochs=30, patience=1, learning_rate=5.0
    )
    reporter = RecordingReporter()
    summary = run(spec, reporter, settings)
    assert summary.stopped_early and summary.epochs_run < 30
    assert summary.epochs_run == len(reporter.epochs) == summary.best_epoch + 1


def test_a_run_id_that_is_not_a_file_name_is_refused(settings: Settings) -> None:
    spec = SeluSpec(dataset="synthetic", depth=1, width=4, max_epochs=1)
    with pytest.raises(ValueError, match="cannot name a model file"):
        run(spec, RecordingReporter(), settings, run_id="../escape")


def test_describe_device_names_the_cpu_or_the_first_gpu() -> None:
    device = describe_device()
    assert device == "CPU" or device.startswith("GPU:0 ")
