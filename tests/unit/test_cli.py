"""`python -m worker.train` as a user runs it: real subprocesses, exit codes, stdout lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.contract import SPEC_CLASSES, LrFinderSpec
from worker.cli import build_parser

REPOSITORY = Path(__file__).resolve().parents[2]


def cli(*arguments: str, var_dir: Path, **environment: str) -> subprocess.CompletedProcess:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("CURVELAB_")
    }
    env.update(CURVELAB_VAR_DIR=str(var_dir), TF_CPP_MIN_LOG_LEVEL="3", **environment)
    return subprocess.run(
        [sys.executable, "-m", "worker.train", *arguments],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        (["--variant", "resnet"], {}, "invalid choice: 'resnet'"),
        (["--learning-rate", "0"], {}, "Invalid --learning-rate 0.0: input should be greater"),
        (["--learning-rate=-1e-3"], {}, "Invalid --learning-rate -0.001"),
        (["--batch-size", "0"], {}, "Invalid --batch-size 0: input should be greater than"),
        (["--batch-size", "many"], {}, "invalid int value: 'many'"),
        (["--variant", "onecycle", "--patience", "3"], {}, "--patience does not apply to the "
         "onecycle variant"),
        (["--variant", "selu", "--peak-learning-rate", "0.1"], {}, "--peak-learning-rate does "
         "not apply to the selu variant"),
        (["--variant", "baseline", "--dropout-rate", "0.2"], {}, "--dropout-rate does not apply"),
        (["--find-lr", "--max-epochs", "3"], {}, "--max-epochs does not apply to the "
         "learning-rate range test"),
        (["--dataset", "mnist"], {}, "invalid choice: 'mnist'"),
        (["--no-such-flag"], {}, "Unrecognized arguments: --no-such-flag"),
        (["--dataset", "cifar10", "--max-epochs", "1"],
         {"CURVELAB_CIFAR10_PATH": "/nonexistent"}, "/nonexistent"),
        (["--find-lr", "--dataset", "cifar10"],
         {"CURVELAB_CIFAR10_PATH": "/nonexistent"}, "/nonexistent"),
    ],
)
def test_bad_input_is_one_sentence_on_stderr_and_exit_code_2(
    arguments: list[str], environment: dict[str, str], expected: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = cli(*arguments, var_dir=tmp_path, **environment)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("."), result.stderr
    assert expected in lines[0]
    assert result.stdout == ""
    # Validation happens before TensorFlow is imported.
    assert time.monotonic() - started < 20


def test_every_spec_field_is_a_flag() -> None:
    flags = {
        option
        for action in build_parser()._actions
        for option in action.option_strings
    }
    for spec_class in (*SPEC_CLASSES.values(), LrFinderSpec):
        for name in spec_class.model_fields:
            assert f"--{name.replace('_', '-')}" in flags


def test_help_answers_without_loading_tensorflow(tmp_path: Path) -> None:
    result = cli("--help", var_dir=tmp_path)
    assert result.returncode == 0
    assert "--peak-learning-rate" in result.stdout and "--mc-samples" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, worker.cli; print('tensorflow' in sys.modules)"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.strip() == "False"


def test_json_run_prints_one_object_per_epoch_then_the_summary(tmp_path: Path) -> None:
    result = cli(
        "--variant", "alpha_dropout", "--dataset", "synthetic", "--max-epochs", "2",
        "--depth", "2", "--width", "16", "--mc-samples", "5", "--json", var_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    initial = lines[0]["initial_activations"]
    assert len(initial["means"]) == len(initial["stds"]) == 2
    assert [line["epoch"] for line in lines[1:-1]] == [1, 2]
    summary = lines[-1]["summary"]
    assert summary["epochs_run"] == 2
    assert summary["mc_dropout"]["samples"] == 5
    assert (tmp_path / summary["model_path"]).exists()


def test_plain_run_prints_a_line_per_epoch_and_a_summary(tmp_path: Path) -> None:
    result = cli(
        "--variant", "baseline", "--dataset", "synthetic", "--max-epochs", "2", "--depth", "2",
        var_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("before training: hidden-layer activation means within ±")
    assert lines[1].startswith("epoch   1  loss ") and lines[2].startswith("epoch   2  loss ")
    assert any(line.startswith("test: loss ") for line in lines)


def test_find_lr_prints_the_sweep_as_json(tmp_path: Path) -> None:
    result = cli(
        "--find-lr", "--variant", "batchnorm", "--dataset", "synthetic", "--depth", "2",
        "--max-steps", "12", "--json", var_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    sweep = json.loads(line)["lr_finder"]
    assert 2 <= sweep["steps"] <= 12 and sweep["suggested_learning_rate"] > 0
