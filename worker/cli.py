"""``python -m worker.train``: train a variant or run the range test without any service.

The flags are derived from the pydantic spec classes, so they cannot drift from the contract.
Bad input ends in one sentence on stderr and exit code 2; TensorFlow loads only once the
input is valid.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any, NoReturn

import pydantic

from backend.contract import (
    SPEC_CLASSES,
    VARIANT_NAMES,
    ActivationStatistics,
    BatchProgress,
    EpochMetrics,
    LrFinderResult,
    LrFinderSpec,
    RunSummary,
)
from backend.settings import Settings

USAGE_ERROR = 2


class _SentenceParser(argparse.ArgumentParser):
    """An argument parser whose errors are one sentence, without the usage block."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{message[:1].upper()}{message[1:]}; see --help")


def _fail(sentence: str) -> NoReturn:
    sys.stderr.write(f"{sentence.rstrip('.')}.\n")
    raise SystemExit(USAGE_ERROR)


def _spec_fields() -> dict[str, pydantic.fields.FieldInfo]:
    """Every field of every spec class but ``variant``, the first definition winning."""
    fields: dict[str, pydantic.fields.FieldInfo] = {}
    spec_classes: tuple[type[pydantic.BaseModel], ...] = (*SPEC_CLASSES.values(), LrFinderSpec)
    for spec_class in spec_classes:
        for name, info in spec_class.model_fields.items():
            if name != "variant":
                fields.setdefault(name, info)
    return fields


def _flag_type(annotation: Any) -> tuple[type, list[str] | None]:
    """The argparse type and choices of a field annotation such as int, float | None, Literal."""
    if typing.get_origin(annotation) is typing.Literal:
        return str, [str(choice) for choice in typing.get_args(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _flag_type(inner)
    return annotation, None


def build_parser() -> argparse.ArgumentParser:
    parser = _SentenceParser(
        prog="python -m worker.train",
        description="Train one of the chapter's CIFAR-10 variants, or run the learning-rate "
        "range test. Unset flags take the variant's default.",
    )
    parser.add_argument("--variant", choices=VARIANT_NAMES, default="selu", help="default: selu")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument(
        "--find-lr", action="store_true", help="run the learning-rate range test instead"
    )
    for name, info in _spec_fields().items():
        flag_type, choices = _flag_type(info.annotation)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=flag_type,
            choices=choices,
            default=None,
            help=info.description,
        )
    return parser


def parse_spec(arguments: argparse.Namespace) -> Any:
    """Validates the given flags against the variant's spec (or the range test's spec)."""
    given = {
        name: getattr(arguments, name)
        for name in _spec_fields()
        if getattr(arguments, name) is not None
    }
    spec_class = LrFinderSpec if arguments.find_lr else SPEC_CLASSES[arguments.variant]
    try:
        return spec_class.model_validate({"variant": arguments.variant, **given})
    except pydantic.ValidationError as error:
        _fail(_describe_validation_error(error, arguments))


def _describe_validation_error(
    error: pydantic.ValidationError, arguments: argparse.Namespace
) -> str:
    first = error.errors()[0]
    flag = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "the input"
    if first["type"] == "extra_forbidden":
        scope = (
            "the learning-rate range test"
            if arguments.find_lr
            else f"the {arguments.variant} variant"
        )
        return f"{flag} does not apply to {scope}; leave it out"
    message = first["msg"][:1].lower() + first["msg"][1:]
    return f"Invalid {flag} {first['input']!r}: {message}"


def _say(text: str) -> None:
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


class PrintingReporter:
    """Prints epochs as they finish; a first Ctrl-C cancels the run gracefully."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.interrupted = False
        self._show_progress = not as_json and sys.stderr.isatty()

    def install_interrupt_handler(self) -> None:
        def cancel(signum: int, frame: types.FrameType | None) -> None:
            self.interrupted = True
            # A second Ctrl-C interrupts at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)

        signal.signal(signal.SIGINT, cancel)

    def on_initial_activations(self, statistics: ActivationStatistics) -> None:
        if self.as_json:
            _say(json.dumps({"initial_activations": statistics.model_dump(mode="json")}))
            return
        if statistics.stds:
            _say(
                f"before training: hidden-layer activation means within "
                f"±{max(abs(mean) for mean in statistics.means):.2f}, standard deviations "
                f"{min(statistics.stds):.2f}–{max(statistics.stds):.2f}"
            )

    def on_epoch(self, metrics: EpochMetrics) -> None:
        if self.as_json:
            _say(metrics.model_dump_json())
            return
        if self._show_progress:
            sys.stderr.write("\r\033[K")
        _say(
            f"epoch {metrics.epoch:3d}  loss {metrics.loss:.4f}  accuracy {metrics.accuracy:.4f}"
            f"  val_loss {metrics.val_loss:.4f}  val_accuracy {metrics.val_accuracy:.4f}"
            f"  lr {metrics.learning_rate:.2e}  {metrics.epoch_seconds:.1f}s"
        )

    def on_progress(self, progress: BatchProgress) -> None:
        if self._show_progress:
            sys.stderr.write(
                f"\repoch {progress.epoch}: batch {progress.batches_done}/{progress.batches_total}"
            )
            sys.stderr.flush()

    def cancel_requested(self) -> bool:
        return self.interrupted


def print_summary(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        _say(json.dumps({"summary": summary.model_dump(mode="json")}))
        return
    status = "cancelled" if summary.cancelled else "stopped early" if summary.stopped_early else ""
    _say(
        f"best epoch {summary.best_epoch} of {summary.epochs_run}{f' ({status})' if status else ''}"
        f": val_loss {summary.best_val_loss:.4f}, val_accuracy {summary.best_val_accuracy:.4f}\n"
        f"test: loss {summary.test_loss:.4f}, accuracy {summary.test_accuracy:.4f}\n"
        f"time: {summary.total_seconds:.1f}s in all, median epoch "
        f"{summary.median_epoch_seconds:.2f}s\nmodel: {summary.model_path}"
    )
    report = summary.mc_dropout
    if report is not None:
        _say(
            f"MC Dropout ({report.samples} samples, {report.evaluated_images} test images): "
            f"accuracy {report.deterministic.accuracy:.4f} -> {report.monte_carlo.accuracy:.4f}, "
            f"ECE {report.deterministic.expected_calibration_error:.4f} -> "
            f"{report.monte_carlo.expected_calibration_error:.4f}"
        )


def print_lr_result(result: LrFinderResult, as_json: bool) -> None:
    if as_json:
        _say(json.dumps({"lr_finder": result.model_dump(mode="json")}))
        return
    stride = max(1, len(result.learning_rates) // 20)
    for rate, loss in list(zip(result.learning_rates, result.losses, strict=True))[::stride]:
        _say(f"lr {rate:.2e}  smoothed loss {loss:.4f}")
    ending = "diverged" if result.diverged else "cancelled" if result.cancelled else "completed"
    _say(
        f"{result.steps} steps, {ending}; suggested learning rate "
        f"{result.suggested_learning_rate:.2e}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    spec = parse_spec(arguments)
    try:
        settings = Settings()
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        _fail(f"The CURVELAB_{str(first['loc'][0]).upper()} setting is invalid: {first['msg']}")

    from worker.data import DatasetError
    from worker.train import find_learning_rate, run

    reporter = PrintingReporter(arguments.json)
    reporter.install_interrupt_handler()
    try:
        if arguments.find_lr:
            print_lr_result(find_learning_rate(spec, reporter, settings), arguments.json)
        else:
            print_summary(run(spec, reporter, settings), arguments.json)
    except DatasetError as error:
        _fail(str(error))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
