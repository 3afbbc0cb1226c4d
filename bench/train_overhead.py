"""The training engine against a plain ``model.fit`` script of the same model, batch and data.

Both train the selu variant (20 x 100, batch 32, Nadam 7e-4) for EPOCHS epochs in this one
process, alternated epoch by epoch so that both see the same machine load: the plain fit runs
in a thread that waits at the start of each of its epochs until the engine has finished the
same epoch. Epoch 1 (tracing and compilation) is left out. An engine epoch is timed from the
end of one epoch report to the next, so everything the engine adds (progress and cancel checks,
activation probe, best-weight copy) is counted; a plain epoch from its start to its end.
Data: CIFAR-10 from CURVELAB_CIFAR10_PATH when set (else ../shared/datasets/cifar10-jpeg.tar.gz
when present, else the small synthetic set, said on the first line).
Ends with ``RESULT train_overhead_ratio X``: median engine epoch / median plain epoch.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import keras  # noqa: E402

from backend.contract import EpochMetrics, SeluSpec  # noqa: E402
from backend.settings import Settings  # noqa: E402
from bench.common import say  # noqa: E402
from worker import train  # noqa: E402
from worker.data import ModelInputs, load_splits, prepare_inputs  # noqa: E402
from worker.reporting import SilentReporter  # noqa: E402
from worker.variants import build_network, make_optimizer  # noqa: E402

EPOCHS = int(os.environ.get("BENCH_EPOCHS", "4"))
SHARED_ARCHIVE = Path(__file__).resolve().parents[2] / "shared/datasets/cifar10-jpeg.tar.gz"
WAIT_SECONDS = 3600



class PlainFit(keras.callbacks.Callback):
    """What a user would write: build, compile with defaults, one ``fit`` on arrays.

    As a callback of its own fit it holds each epoch until the engine says go.
    """

    def __init__(self, spec: SeluSpec, inputs: ModelInputs) -> None:
        super().__init__()
        self.spec = spec
        self.inputs = inputs
        self.go = threading.Event()
        self.done = threading.Event()
        self.seconds: list[float] = []
        self.best_val_loss = float("nan")
        self.error: BaseException | None = None
        self._started = 0.0
        # Built here, in the main thread, so that the engine's seeding cannot race with it.
        keras.utils.set_random_seed(spec.seed)
        self.network = build_network("selu", spec.depth, spec.width)
        self.network.compile(
            optimizer=make_optimizer("selu", spec.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    def train(self) -> None:
        try:
            history = self.network.fit(
                self.inputs.x_train,
                self.inputs.y_train,
                batch_size=self.spec.batch_size,
                epochs=self.spec.max_epochs,
                validation_data=(self.inputs.x_valid, self.inputs.y_valid),
                callbacks=[self],
                verbose=0,
            )
            self.best_val_loss = min(history.history["val_loss"])
        except BaseException as error:  # Reported by the main thread, which would wait forever.
            self.error = error
            self.done.set()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.go.wait(WAIT_SECONDS)
        self.go.clear()
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)
        self.done.set()


class AlternatingReporter(SilentReporter):
    """Times the engine's epochs and lets the plain fit run one epoch after each of them."""

    def __init__(self, plain: PlainFit) -> None:
        self.plain = plain
        self.seconds: list[float] = []
        self._resumed: float | None = None

    def on_epoch(self, metrics: EpochMetrics) -> None:
        if self._resumed is not None:
            self.seconds.append(time.perf_counter() - self._resumed)
        self.plain.go.set()
        self.plain.done.wait(WAIT_SECONDS)
        self.plain.done.clear()
        if self.plain.error is not None:
            raise RuntimeError("The plain model.fit failed; see the error above.") from (
                self.plain.error
            )
        self._resumed = time.perf_counter()


def main() -> None:
    # BENCH_ENGINE_JIT=0 or 1 overrides the engine's XLA setting, to compare the two.
    if "BENCH_ENGINE_JIT" in os.environ:
        train.JIT_COMPILE = os.environ["BENCH_ENGINE_JIT"] == "1"
    settings = Settings()
    if settings.cifar10_path is None and SHARED_ARCHIVE.exists():
        settings = settings.model_copy(update={"cifar10_path": SHARED_ARCHIVE})
    dataset = "cifar10" if settings.cifar10_path is not None else "synthetic"
    say(f"data: {dataset} ({settings.cifar10_path or 'synthetic, small: a rough ratio only'})")
    spec = SeluSpec(dataset=dataset, max_epochs=EPOCHS, patience=EPOCHS)
    inputs = prepare_inputs(load_splits(dataset, settings, spec.seed), standardize=True)
    steps = math.ceil(len(inputs.x_train) / spec.batch_size) * spec.max_epochs
    say(f"device: {train.describe_device()}; engine jit_compile={train.use_xla(steps)}")

    plain = PlainFit(spec, inputs)
    plain_thread = threading.Thread(target=plain.train, name="plain-fit")
    plain_thread.start()
    reporter = AlternatingReporter(plain)
    summary = train.run(spec, reporter, settings, run_id="bench-train-overhead")
    plain_thread.join()

    engine_seconds, plain_seconds = reporter.seconds, plain.seconds[1:]
    for epoch, (engine_epoch, plain_epoch) in enumerate(
        zip(engine_seconds, plain_seconds, strict=True), start=2
    ):
        say(f"epoch {epoch}: engine {engine_epoch:.2f} s, plain {plain_epoch:.2f} s")
    say(f"best val_loss: engine {summary.best_val_loss:.4f}, plain {plain.best_val_loss:.4f}")
    engine_median = statistics.median(engine_seconds)
    plain_median = statistics.median(plain_seconds)
    say(f"median epoch: engine {engine_median:.3f} s, plain model.fit {plain_median:.3f} s")
    say(f"RESULT train_overhead_ratio {engine_median / plain_median:.3f}")


if __name__ == "__main__":
    main()
