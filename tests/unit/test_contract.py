"""The contract's specs refuse bad input, and importing it stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from backend.contract import SPEC_CLASSES, LrFinderSpec, SeluSpec, parse_run_spec
from tests.support.processes import REPO_ROOT

HEAVY_MODULES = ["tensorflow", "keras", "celery", "kombu", "fastapi", "starlette", "redis"]


def test_importing_the_contract_loads_no_tensorflow_celery_or_fastapi() -> None:
    probe = (
        "import json, sys; import backend.contract; "
        f"print(json.dumps([name for name in {HEAVY_MODULES!r} if name in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("body", "bad_field"),
    [
        ({"variant": "resnet"}, None),
        ({"variant": "selu", "learning_rate": 0}, "learning_rate"),
        ({"variant": "selu", "learning_rate": float("nan")}, "learning_rate"),
        ({"variant": "selu", "learning_rate": float("inf")}, "learning_rate"),
        ({"variant": "baseline", "batch_size": 0}, "batch_size"),
        ({"variant": "batchnorm", "max_epochs": 10**12}, "max_epochs"),
        ({"variant": "selu", "width": 0}, "width"),
        ({"variant": "selu", "colour": "red"}, "colour"),
        ({"variant": "onecycle", "learning_rate": 0.1}, "learning_rate"),
        ({"variant": "alpha_dropout", "dropout_rate": 1.0}, "dropout_rate"),
    ],
)
def test_a_bad_spec_names_the_bad_field(body: dict, bad_field: str | None) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_run_spec(body)
    if bad_field is not None:
        assert [error["loc"][-1] for error in raised.value.errors()] == [bad_field]


def test_a_flat_body_becomes_the_variant_spec_with_its_defaults() -> None:
    spec = parse_run_spec({"variant": "selu", "dataset": "synthetic", "max_epochs": 3})

    assert spec == SeluSpec(dataset="synthetic", max_epochs=3)
    assert spec.learning_rate == pytest.approx(7e-4) and spec.depth == 20
    assert parse_run_spec(json.loads(spec.model_dump_json())) == spec


def test_every_variant_has_a_spec_class_named_by_its_variant_field() -> None:
    for name, spec_class in SPEC_CLASSES.items():
        assert spec_class().variant == name


def test_the_lr_finder_spec_refuses_unknown_fields_and_tiny_sweeps() -> None:
    with pytest.raises(ValidationError):
        LrFinderSpec.model_validate({"variant": "selu", "epochs": 3})
    with pytest.raises(ValidationError):
        LrFinderSpec(max_steps=2)
