"""Trains one variant end to end: data, model, fit with live reports, test, MC Dropout, save.

TensorFlow is imported inside the functions, so that ``python -m worker.train --help`` and
input errors answer at once, and a missing dataset is reported before TensorFlow loads.
A cancelled run is not an error: ``run`` returns its summary with ``cancelled=True``.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backend.contract import (
    AlphaDropoutSpec,
    LrFinderResult,
    LrFinderSpec,
    OneCycleSpec,
    RunSpec,
    RunSummary,
)
from backend.run_files import checkpoint_dir
from backend.settings import Settings
from worker.reporting import TrainingReporter

if TYPE_CHECKING:
    import keras
    import numpy as np

# Validation images whose hidden activations are measured after every epoch.
PROBE_IMAGES = 512
# Evaluation needs no gradients, so it runs in larger batches than training; 1,000 divides
# CIFAR-10's 5,000 validation and 10,000 test images, so XLA compiles one evaluation shape.
EVALUATION_BATCH_SIZE = 1000
# XLA fuses the many small per-layer and per-variable optimizer ops of these deep, narrow nets:
# about 17% less time per step on a 2-core CPU, same accuracy (bench/train_overhead.py). Its
# compilation costs 10-20 s on such a CPU, which pays off only over a few thousand steps, so
# shorter runs keep Keras's "auto" (XLA on GPUs only). None: decide from the run's length.
JIT_COMPILE: bool | None = None
XLA_MIN_STEPS = 5000


def use_xla(total_steps: int) -> bool | str:
    if JIT_COMPILE is not None:
        return JIT_COMPILE
    return True if total_steps >= XLA_MIN_STEPS else "auto"


@dataclass(frozen=True)
class Recipe:
    """What the variant-specific spec fields mean for training; None and 0 mean "not used"."""

    initial_learning_rate: float
    patience: int | None
    peak_learning_rate: float | None
    dropout_rate: float
    mc_samples: int


def recipe_for(spec: RunSpec) -> Recipe:
    if isinstance(spec, OneCycleSpec):
        # The schedule starts at a tenth of its peak and sets the rate before every batch;
        # 1cycle runs its full length, so there is no early stopping.
        return Recipe(
            spec.peak_learning_rate / 10, None, spec.peak_learning_rate,
            spec.dropout_rate, spec.mc_samples,
        )
    if isinstance(spec, AlphaDropoutSpec):
        return Recipe(spec.learning_rate, spec.patience, None, spec.dropout_rate, spec.mc_samples)
    return Recipe(spec.learning_rate, spec.patience, None, 0.0, 0)


def describe_device() -> str:
    """Where TensorFlow trains: "GPU:0 <name>" for the first visible GPU, otherwise "CPU"."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU:0 {details.get('device_name', gpus[0].name)}"


def default_run_id(variant: str) -> str:
    return f"{variant}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def run(
    spec: RunSpec,
    reporter: TrainingReporter,
    settings: Settings,
    run_id: str | None = None,
    keep_checkpoint: bool = False,
) -> RunSummary:
    """Trains ``spec`` and returns its summary; see the module docstring for cancellation.

    Every finished epoch is checkpointed under ``<var dir>/checkpoints/<run id>`` before it
    is reported. When that folder already holds a checkpoint, the run resumes after its last
    finished epoch: weights, optimizer state, early stopping and the 1cycle position come
    back, and the earlier epochs are reported again (reporters keep each epoch once).
    The checkpoint is removed at the end unless keep_checkpoint (the Celery task removes it
    once the run's end is stored, so that a worker lost before then still resumes).
    """
    started = time.monotonic()
    run_id = run_id or default_run_id(spec.variant)
    model_file = model_file_for(settings, run_id)
    checkpoint_folder = checkpoint_dir(settings.var_dir, run_id)
    from worker.data import load_splits, prepare_inputs

    splits = load_splits(spec.dataset, settings, spec.seed)

    import keras

    from worker.callbacks import (
        BestWeightsKeeper,
        CancelAndProgress,
        EpochReporter,
        OneCycleScheduler,
    )
    from worker.checkpoints import EpochCheckpointer, read_checkpoint, remove_all, restore
    from worker.variants import (
        build_network,
        compile_network,
        make_optimizer,
        uses_standardized_inputs,
    )

    inputs = prepare_inputs(splits, standardize=uses_standardized_inputs(spec.variant))
    keras.utils.set_random_seed(spec.seed)
    recipe = recipe_for(spec)
    batches_per_epoch = math.ceil(len(inputs.x_train) / spec.batch_size)
    network = build_network(spec.variant, spec.depth, spec.width, recipe.dropout_rate)
    optimizer = make_optimizer(spec.variant, recipe.initial_learning_rate)
    jit_compile = use_xla(batches_per_epoch * spec.max_epochs)
    compile_network(network, optimizer, jit_compile=jit_compile)
    saved = read_checkpoint(checkpoint_folder)
    if saved is not None:
        restore(network, saved)

    cancel = CancelAndProgress(reporter, batches_per_epoch)
    keeper = BestWeightsKeeper(recipe.patience, cancel)
    checkpointer = EpochCheckpointer(checkpoint_folder, network, keeper, reporter)
    epoch_reporter = EpochReporter(
        reporter, inputs.x_valid[:PROBE_IMAGES], cancel, before_report=checkpointer
    )
    epochs_done = 0
    if saved is not None:
        keeper.resume_from(saved.state, saved.best_weights)
        epoch_reporter.resume_from(saved.state)
        epochs_done = saved.state.epoch
    callbacks: list[keras.callbacks.Callback] = [cancel]
    if recipe.peak_learning_rate is not None:
        total_steps = batches_per_epoch * spec.max_epochs
        callbacks.append(OneCycleScheduler(total_steps, recipe.peak_learning_rate))
    # The epoch reporter goes last, so that its report closes everything done for the epoch.
    callbacks += [keeper, epoch_reporter]

    if epochs_done < spec.max_epochs and not keeper.stopped_early:
        network.fit(
            inputs.x_train,
            inputs.y_train,
            batch_size=spec.batch_size,
            epochs=spec.max_epochs,
            initial_epoch=epochs_done,
            shuffle=True,
            validation_data=(inputs.x_valid, inputs.y_valid),
            validation_batch_size=EVALUATION_BATCH_SIZE,
            callbacks=callbacks,
            verbose=0,
        )
    elif keeper.best_weights is not None:
        # Training had ended before the last worker was lost; only the steps after it remain.
        network.set_weights(keeper.best_weights)
    # The keeper has put the best epoch's weights back; with no finished epoch (a cancel in
    # the first one) the current weights are all there is, and best_epoch stays 0.
    best_val_loss, best_val_accuracy = keeper.best_val_loss, keeper.best_val_accuracy
    if keeper.best_weights is None:
        best_val_loss, best_val_accuracy = _evaluate(network, inputs.x_valid, inputs.y_valid)
    test_loss, test_accuracy = _evaluate(network, inputs.x_test, inputs.y_test)
    model_file.parent.mkdir(parents=True, exist_ok=True)
    network.save(model_file)

    mc_report = None
    if recipe.mc_samples and not cancel.cancelled:
        from worker.mc_dropout import mc_dropout_report

        mc_report = mc_dropout_report(
            network, inputs.x_test, inputs.y_test, recipe.mc_samples, recipe.dropout_rate
        )
    if not keep_checkpoint:
        remove_all(checkpoint_folder)
    epoch_seconds = [metrics.epoch_seconds for metrics in epoch_reporter.history]
    return RunSummary(
        best_epoch=keeper.best_epoch,
        best_val_loss=best_val_loss,
        best_val_accuracy=best_val_accuracy,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        epochs_run=len(epoch_reporter.history),
        stopped_early=keeper.stopped_early,
        total_seconds=epoch_reporter.elapsed_before + time.monotonic() - started,
        median_epoch_seconds=statistics.median(epoch_seconds) if epoch_seconds else 0.0,
        model_path=model_file.relative_to(settings.var_dir).as_posix(),
        mc_dropout=mc_report,
        cancelled=cancel.cancelled,
    )


def find_learning_rate(
    spec: LrFinderSpec, reporter: TrainingReporter, settings: Settings
) -> LrFinderResult:
    """The learning-rate range test on a fresh model of the variant; see worker/lr_finder.py."""
    from worker import lr_finder

    return lr_finder.find_learning_rate(spec, reporter, settings)


def _evaluate(network: keras.Model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    results = network.evaluate(
        images, labels, batch_size=EVALUATION_BATCH_SIZE, verbose=0, return_dict=True
    )
    return float(results["loss"]), float(results["accuracy"])


def model_file_for(settings: Settings, run_id: str) -> Path:
    """Where a run's best model is saved: ``<var dir>/models/<run id>.keras``."""
    if not run_id or any(character in run_id for character in "/\\") or run_id.startswith("."):
        raise ValueError(
            f"The run id {run_id!r} cannot name a model file; use letters, digits and dashes."
        )
    return settings.models_dir / f"{run_id}.keras"


if __name__ == "__main__":
    from worker.cli import main

    raise SystemExit(main())
