"""What the per-epoch checkpoint costs: writing it at an epoch end, and reading it to resume.

Each variant at its default size (20 hidden layers of 100, CIFAR-shaped input) is built,
trained one step so that the optimizer has its state, then checkpointed as at EPOCHS epoch
ends (the best weights changing every other epoch, as early in a run). Compare the write
time with an epoch: on CIFAR-10 an epoch takes seconds (GPU) to tens of seconds (CPU).
Ends with ``RESULT checkpoint_write_ms X``: the median write over all variants and epochs.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import keras  # noqa: E402
import numpy as np  # noqa: E402

from backend.contract import DROPOUT_VARIANTS, VARIANT_NAMES, EpochMetrics  # noqa: E402
from bench.common import say  # noqa: E402
from worker.callbacks import BestWeightsKeeper  # noqa: E402
from worker.checkpoints import EpochCheckpointer, read_checkpoint, restore  # noqa: E402
from worker.variants import build_network, compile_network, make_optimizer  # noqa: E402

EPOCHS = int(os.environ.get("BENCH_EPOCHS", "10"))



def metrics(epoch: int) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.5,
        learning_rate=1e-3, epoch_seconds=10.0, elapsed_seconds=10.0 * epoch,
    )  # fmt: skip


def network_for(variant: str) -> keras.Model:
    network = build_network(variant, 20, 100, 0.1 if variant in DROPOUT_VARIANTS else 0.0)
    compile_network(network, make_optimizer(variant, 1e-3), jit_compile=False)
    images = np.random.default_rng(0).random((32, 32, 32, 3), dtype=np.float32)
    network.fit(images, np.zeros(32, dtype=np.int64), batch_size=32, epochs=1, verbose=0)
    return network


def main() -> None:
    writes: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for variant in VARIANT_NAMES:
            network = network_for(variant)
            keeper = BestWeightsKeeper(patience=None)
            folder = Path(scratch) / variant
            checkpointer = EpochCheckpointer(folder, network, keeper, reporter=None)
            history: list[EpochMetrics] = []
            for epoch in range(1, EPOCHS + 1):
                if epoch % 2:
                    keeper.best_epoch, keeper.best_weights = epoch, network.get_weights()
                history.append(metrics(epoch))
                checkpointer(history)
            started = time.perf_counter()
            saved = read_checkpoint(folder)
            if saved is None:
                raise RuntimeError(f"The {variant} checkpoint was not written; see above.")
            restore(network, saved)
            resume_ms = 1000 * (time.perf_counter() - started)
            size_mb = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
            median_ms = 1000 * statistics.median(checkpointer.seconds)
            say(
                f"{variant}: write median {median_ms:.1f} ms, max "
                f"{1000 * max(checkpointer.seconds):.1f} ms; read and restore {resume_ms:.1f} ms; "
                f"{size_mb / 1e6:.1f} MB on disk"
            )
            writes += checkpointer.seconds
    say(f"RESULT checkpoint_write_ms {1000 * statistics.median(writes):.1f}")


if __name__ == "__main__":
    main()
