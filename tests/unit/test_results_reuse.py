"""`make results` reuses a stored run with the same spec, so an interrupted set resumes."""

from __future__ import annotations

from typing import Any

from backend.contract import parse_run_spec
from scripts.results import results_run_spec, reusable_run


def _stored(run_id: str, spec: dict[str, Any], status: str, kind: str = "train") -> dict[str, Any]:
    return {"id": run_id, "kind": kind, "spec": spec, "status": status}


def test_the_results_spec_is_the_variants_defaults_on_the_chosen_dataset() -> None:
    spec = results_run_spec("selu", "cifar10")
    assert spec["dataset"] == "cifar10" and spec["name"] == "results: selu"
    assert spec["max_epochs"] == 100 and spec["batch_size"] == 32
    assert parse_run_spec(spec).model_dump(mode="json") == spec


def test_the_newest_finished_or_live_run_with_the_same_spec_is_reused() -> None:
    spec = results_run_spec("batchnorm", "cifar10")
    runs = [  # newest first, as the API lists them
        _stored("cancelled", spec, "cancelled"),
        _stored("running", spec, "running"),
        _stored("older", spec, "succeeded"),
    ]
    assert reusable_run(runs, spec) == "running"
    assert reusable_run(runs[2:], spec) == "older"


def test_failed_runs_other_specs_and_finder_runs_are_not_reused() -> None:
    spec = results_run_spec("baseline", "cifar10")
    other_dataset = results_run_spec("baseline", "synthetic")
    shorter = {**spec, "max_epochs": 3}
    runs = [
        _stored("failed", spec, "failed"),
        _stored("cancelled", spec, "cancelled"),
        _stored("synthetic", other_dataset, "succeeded"),
        _stored("shorter", shorter, "succeeded"),
        _stored("finder", spec, "succeeded", kind="lr_finder"),
    ]
    assert reusable_run(runs, spec) is None
