"""The contract between the API and the workers: run specs, results and Redis keys.

Only pydantic and the standard library are imported here, so that both the API
process (which must never load TensorFlow) and the worker can share it cheaply.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

TASK_NAME = "curvelab.train"
TASK_QUEUE = "training"

VariantName = Literal["baseline", "batchnorm", "selu", "alpha_dropout", "onecycle"]
DatasetName = Literal["cifar10", "synthetic"]
VARIANT_NAMES: tuple[str, ...] = ("baseline", "batchnorm", "selu", "alpha_dropout", "onecycle")
DROPOUT_VARIANTS: frozenset[str] = frozenset({"alpha_dropout", "onecycle"})

# Finite numbers of the declared type only: a NaN learning rate, or `true` read as one epoch,
# must be refused at the door rather than coerced.
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class _SpecBase(BaseModel):
    """Parameters shared by every variant; the defaults follow the chapter's exercise."""

    model_config = _STRICT

    name: str = Field("", max_length=200, description="A label for the run, shown as text.")
    dataset: DatasetName = Field("cifar10", description="cifar10 (real) or synthetic (tiny).")
    depth: int = Field(20, ge=1, le=100, description="Number of hidden Dense layers.")
    width: int = Field(100, ge=1, le=2048, description="Units per hidden layer.")
    batch_size: int = Field(32, ge=1, le=8192, description="Mini-batch size.")
    max_epochs: int = Field(100, ge=1, le=1000, description="Upper bound on epochs.")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Seeds data split and weights.")


class _EarlyStopping(BaseModel):
    patience: int = Field(
        20, ge=1, le=1000, description="Epochs without val_loss improvement before stopping."
    )


class _Dropout(BaseModel):
    dropout_rate: float = Field(
        0.1, ge=0.0, lt=1.0, description="AlphaDropout rate before the output layer."
    )
    mc_samples: int = Field(100, ge=1, le=1000, description="Stochastic passes for MC Dropout.")


class BaselineSpec(_SpecBase, _EarlyStopping):
    """He-normal initialization and ELU, trained with Nadam."""

    model_config = _STRICT
    variant: Literal["baseline"] = "baseline"
    learning_rate: float = Field(5e-5, gt=0, le=10, description="Nadam learning rate.")


class BatchNormSpec(_SpecBase, _EarlyStopping):
    """BatchNormalization of the inputs, then Dense (He normal, no bias), BatchNormalization
    and ELU in every hidden layer."""

    model_config = _STRICT
    variant: Literal["batchnorm"] = "batchnorm"
    learning_rate: float = Field(5e-4, gt=0, le=10, description="Nadam learning rate.")


class SeluSpec(_SpecBase, _EarlyStopping):
    """Standardized inputs, LeCun-normal initialization, SELU: a self-normalizing net."""

    model_config = _STRICT
    variant: Literal["selu"] = "selu"
    learning_rate: float = Field(7e-4, gt=0, le=10, description="Nadam learning rate.")


class AlphaDropoutSpec(_SpecBase, _EarlyStopping, _Dropout):
    """The SELU net with AlphaDropout before the output, then evaluated with MC Dropout."""

    model_config = _STRICT
    variant: Literal["alpha_dropout"] = "alpha_dropout"
    learning_rate: float = Field(5e-4, gt=0, le=10, description="Nadam learning rate.")


class OneCycleSpec(_SpecBase, _Dropout):
    """The alpha-dropout net trained with SGD under a 1cycle schedule, no early stopping."""

    model_config = _STRICT
    variant: Literal["onecycle"] = "onecycle"
    batch_size: int = Field(128, ge=1, le=8192, description="Mini-batch size.")
    max_epochs: int = Field(15, ge=1, le=1000, description="Length of the 1cycle schedule.")
    peak_learning_rate: float = Field(
        0.05, gt=0, le=10, description="Highest SGD learning rate, reached mid-schedule."
    )


RunSpec = Annotated[
    BaselineSpec | BatchNormSpec | SeluSpec | AlphaDropoutSpec | OneCycleSpec,
    Field(discriminator="variant"),
]
RUN_SPEC_ADAPTER: TypeAdapter[RunSpec] = TypeAdapter(RunSpec)
SPEC_CLASSES: dict[str, type[_SpecBase]] = {
    "baseline": BaselineSpec,
    "batchnorm": BatchNormSpec,
    "selu": SeluSpec,
    "alpha_dropout": AlphaDropoutSpec,
    "onecycle": OneCycleSpec,
}


def parse_stored_spec(kind: RunKind, data: object) -> RunSpec | LrFinderSpec:
    """The spec of a stored run of either kind."""
    if kind is RunKind.lr_finder:
        return LrFinderSpec.model_validate(data)
    return parse_run_spec(data)


def parse_run_spec(data: object) -> RunSpec:
    """Validates a flat dict such as {"variant": "selu", "max_epochs": 3}."""
    return RUN_SPEC_ADAPTER.validate_python(data)


class LrFinderSpec(BaseModel):
    """A learning-rate range test: the rate grows exponentially while the loss is recorded."""

    model_config = _STRICT

    variant: VariantName = "selu"
    name: str = Field("", max_length=200)
    dataset: DatasetName = "cifar10"
    depth: int = Field(20, ge=1, le=100)
    width: int = Field(100, ge=1, le=2048)
    batch_size: int = Field(32, ge=1, le=8192)
    seed: int = Field(42, ge=0, le=2**31 - 1)
    dropout_rate: float = Field(0.1, ge=0.0, lt=1.0)
    start_learning_rate: float = Field(1e-6, gt=0, le=10)
    end_learning_rate: float = Field(1.0, gt=0, le=100)
    max_steps: int | None = Field(
        None, ge=10, le=100_000, description="Batches to sweep; one epoch when unset."
    )


class RunKind(enum.StrEnum):
    train = "train"
    lr_finder = "lr_finder"


class RunStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled)


class EpochMetrics(BaseModel):
    """What one finished epoch reports; epochs count from 1."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    epoch_seconds: float
    elapsed_seconds: float
    activation_means: list[float] = Field(
        default_factory=list, description="Mean activation of each hidden layer, input side first."
    )
    activation_stds: list[float] = Field(
        default_factory=list, description="Standard deviation of each hidden layer's activation."
    )


class ActivationStatistics(BaseModel):
    """Each hidden layer's activation mean and standard deviation on the probe images."""

    means: list[float] = Field(description="Each hidden layer's mean activation, input side first.")
    stds: list[float] = Field(description="Each hidden layer's activation standard deviation.")


class BatchProgress(BaseModel):
    epoch: int
    batches_done: int
    batches_total: int


class Histogram(BaseModel):
    bin_edges: list[float]
    counts: list[int]


class ReliabilityBin(BaseModel):
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


class SampleCountAccuracy(BaseModel):
    samples: int
    accuracy: float


class PredictionStats(BaseModel):
    """Confidence and calibration of one way of predicting (deterministic or MC)."""

    accuracy: float
    expected_calibration_error: float
    confidence_correct: Histogram
    confidence_wrong: Histogram
    entropy: Histogram
    reliability: list[ReliabilityBin]


class McDropoutReport(BaseModel):
    samples: int
    dropout_rate: float
    evaluated_images: int
    deterministic: PredictionStats
    monte_carlo: PredictionStats
    accuracy_by_samples: list[SampleCountAccuracy]


class RunSummary(BaseModel):
    best_epoch: int
    best_val_loss: float
    best_val_accuracy: float
    test_loss: float
    test_accuracy: float
    epochs_run: int
    stopped_early: bool
    total_seconds: float
    median_epoch_seconds: float
    model_path: str = Field(description="The best model's .keras file, relative to the var dir.")
    mc_dropout: McDropoutReport | None = None
    cancelled: bool = Field(
        False, description="True when a cancel stopped the run; the model is the best so far."
    )


class LrFinderResult(BaseModel):
    learning_rates: list[float]
    losses: list[float] = Field(description="Smoothed loss per batch, one per learning rate.")
    raw_losses: list[float] = Field(default_factory=list, description="Unsmoothed batch losses.")
    suggested_learning_rate: float
    diverged: bool
    steps: int
    cancelled: bool = False


# Every Redis key of the project is built here and nowhere else.
KEY_PREFIX = "curvelab"


def run_key(run_id: str) -> str:
    """Hash holding one run's spec, status, timestamps, worker, error and results."""
    return f"{KEY_PREFIX}:run:{run_id}"


def run_metrics_key(run_id: str) -> str:
    """Stream with one entry per finished epoch of the run."""
    return f"{KEY_PREFIX}:run:{run_id}:metrics"


def run_cancel_channel(run_id: str) -> str:
    """Pub/sub channel that wakes a worker as soon as a cancel is requested."""
    return f"{KEY_PREFIX}:run:{run_id}:cancel"


def run_lease_key(run_id: str) -> str:
    """The name of the worker that trains the run, expiring unless its heartbeat renews it."""
    return f"{KEY_PREFIX}:run:{run_id}:lease"


RUN_INDEX_KEY = f"{KEY_PREFIX}:runs"
# Running runs scored by their last heartbeat: where the reaper looks for lost workers.
ACTIVE_RUNS_KEY = f"{KEY_PREFIX}:active"
# Runs put back in the queue whose task message is not yet known to be sent, scored by time.
REQUEUED_RUNS_KEY = f"{KEY_PREFIX}:requeued"
# Where a run's per-epoch checkpoint lives, relative to the var dir.
CHECKPOINTS_FOLDER = "checkpoints"
EVENTS_KEY = f"{KEY_PREFIX}:events"
EVENTS_MAXLEN = 100_000
WORKERS_KEY = f"{KEY_PREFIX}:workers"


def gpu_slot_key(node: str, gpu_index: int) -> str:
    """Claim of one GPU of one host by the worker that trains on it."""
    return f"{KEY_PREFIX}:gpu-slot:{node}:{gpu_index}"
