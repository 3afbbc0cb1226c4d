"""Schemathesis fuzzes every operation of the OpenAPI schema, in-process against a real Valkey.

One campaign of generated requests (valid per the schema, and invalid per the
schema) runs once for the module; each test below asserts one property of its
answers, so that one property failing does not hide the others. Generation is
derandomized, so a failure found once is found again on every machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import redis
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.python import asgi

from backend.contract import RUN_INDEX_KEY, TASK_QUEUE
from backend.main import create_app
from backend.settings import Settings
from backend.store import RunStore
from tests.support.processes import RedisServer, start_redis
from tests.support.seeded_runs import seed_runs

# A database of its own, so that the runs and tasks the fuzzer creates reach no other test.
FUZZ_REDIS_DB = 10
MINIMUM_REQUESTS = 500
# (valid, invalid) examples per operation. An operation whose only parameter is a string
# path segment has no invalid form that a URL can carry, and one without parameters has a
# single possible request, which Hypothesis sends once.
EXAMPLES: dict[str, tuple[int, int]] = {
    "POST /api/runs": (150, 150),
    "POST /api/lr-finder": (60, 60),
    "GET /api/runs": (20, 20),
    "GET /api/runs/{run_id}": (30, 0),
    "GET /api/runs/{run_id}/metrics": (30, 20),
    "GET /api/runs/{run_id}/mc-dropout": (30, 0),
    "POST /api/runs/{run_id}/cancel": (30, 0),
    "DELETE /api/runs/{run_id}": (30, 0),
    "GET /api/events": (15, 15),
    "GET /api/health": (1, 0),
    "GET /api/variants": (1, 0),
    "POST /api/session": (10, 0),
}
LAUNCHES = ("POST /api/runs", "POST /api/lr-finder")
# The event stream never ends by itself: keep what it sent within this time.
STREAM_SECONDS = 0.3
REQUEST_SECONDS = 10.0
SCHEMA_CHECKS = ("response_schema_conformance", "content_type_conformance")
BOOKKEEPING = "launch_bookkeeping"
SERVER_ERROR = "not_a_server_error"


@dataclass(frozen=True)
class Finding:
    check: str
    operation: str
    mode: str
    status: int | None
    message: str
    reproduce: str

    def __str__(self) -> str:
        where = f"[{self.check}] {self.operation} ({self.mode}) -> {self.status}"
        return f"{where}: {self.message}\n    reproduce: {self.reproduce}"


@dataclass
class Campaign:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    def of(self, *checks: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.check in checks]


def _message(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return " | ".join(lines[:4])[:400]


class Fuzzer:
    """Sends the generated cases of one operation and records what each check says."""

    def __init__(self, campaign: Campaign, client: redis.Redis) -> None:
        self.campaign = campaign
        self.redis = client

    def bookkeeping(self) -> tuple[int, int]:
        return int(self.redis.zcard(RUN_INDEX_KEY)), int(self.redis.llen(TASK_QUEUE))

    def send(self, case: Case, label: str, mode: GenerationMode) -> None:
        def record(check: str, status: int | None, message: str) -> None:
            finding = Finding(check, label, mode.value, status, message, case.as_curl_command())
            self.campaign.findings.append(finding)

        before = self.bookkeeping()
        timeout = STREAM_SECONDS if label == "GET /api/events" else REQUEST_SECONDS
        self.campaign.requests[label] += 1
        try:
            response = case.call(timeout=timeout)
        except Exception as error:  # The in-process transport re-raises what the app raised.
            record(SERVER_ERROR, None, f"{type(error).__name__}: {_message(error)}")
            return
        self.campaign.statuses[response.status_code] += 1
        for check in (SERVER_ERROR, *SCHEMA_CHECKS, "negative_data_rejection"):
            try:
                case.validate_response(response, checks=[getattr(schemathesis.checks, check)])
            except (Failure, FailureGroup) as failure:
                record(check, response.status_code, _message(failure))
        if label in LAUNCHES:
            accepted = 1 if response.status_code == 201 else 0
            after = self.bookkeeping()
            if after != (before[0] + accepted, before[1] + accepted):
                record(
                    BOOKKEEPING,
                    response.status_code,
                    f"runs and queued tasks went from {before} to {after}",
                )

    def fuzz(self, strategy: st.SearchStrategy[Case], label: str, mode: GenerationMode) -> None:
        examples = EXAMPLES[label][0 if mode is GenerationMode.POSITIVE else 1]

        @hypothesis.given(case=strategy)
        @hypothesis.settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            # Every failure is recorded rather than raised, so there is nothing to shrink.
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def send_one(case: Case) -> None:
            self.send(case, label, mode)

        send_one()


def operation_strategy(
    operation: Any, mode: GenerationMode, run_ids: list[str]
) -> st.SearchStrategy[Case]:
    """Generated cases; for a run's sub-resource, most of them aim at one of the seeded runs."""
    generated = operation.as_strategy(generation_mode=mode)
    if "{run_id}" not in operation.path:
        return generated  # type: ignore[no-any-return]
    aimed = [
        operation.as_strategy(generation_mode=mode, path_parameters={"run_id": run_id})
        for run_id in run_ids
    ]
    return st.one_of(generated, *aimed)


@pytest.fixture(scope="module")
def fuzz_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("fuzz-redis"), db=FUZZ_REDIS_DB)
    yield server
    client = server.client()
    client.flushdb()
    client.close()
    server.stop()


@pytest.fixture(scope="module")
def campaign(fuzz_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    """Runs the whole campaign once: every operation, valid and invalid cases."""
    settings = Settings(redis_url=fuzz_redis.url, var_dir=tmp_path_factory.mktemp("fuzz") / "var")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    result = Campaign()
    client = fuzz_redis.client()
    store = RunStore(client, Path(settings.var_dir))
    fuzzer = Fuzzer(result, client)
    try:
        for loaded in schema.get_all_operations():
            if isinstance(loaded, Err):
                raise loaded.err()
            operation = loaded.ok()
            label = f"{operation.method.upper()} {operation.path}"
            if label not in EXAMPLES:
                raise ValueError(f"{label} is not in EXAMPLES; give it a number of examples.")
            # Deletes and cancels of earlier operations must not leave later ones only 404s.
            run_ids = seed_runs(store)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if EXAMPLES[label][0 if mode is GenerationMode.POSITIVE else 1]:
                    fuzzer.fuzz(operation_strategy(operation, mode, run_ids), label, mode)
    finally:
        # The lifespan that from_asgi started holds the app's Redis clients open.
        asgi.shutdown_lifespans()
        client.close()
    return result


def _report(findings: list[Finding], limit: int = 8) -> str:
    lines = [str(finding) for finding in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"... and {len(findings) - limit} more")
    return f"{len(findings)} finding(s):\n" + "\n".join(lines)


def test_the_campaign_sends_at_least_500_requests_over_every_operation(campaign: Campaign) -> None:
    total = sum(campaign.requests.values())

    assert total >= MINIMUM_REQUESTS, f"only {total} requests: {dict(campaign.requests)}"
    assert set(campaign.requests) == set(EXAMPLES), dict(campaign.requests)
    # Valid launches were accepted and invalid ones refused, so both paths were exercised.
    assert campaign.statuses[201] > 0 and campaign.statuses[422] > 0, dict(campaign.statuses)


def test_no_generated_request_gets_a_server_error(campaign: Campaign) -> None:
    errors = campaign.of(SERVER_ERROR)

    assert not errors, _report(errors)


def test_every_answer_matches_its_documented_schema_and_content_type(campaign: Campaign) -> None:
    mismatches = campaign.of(*SCHEMA_CHECKS)

    assert not mismatches, _report(mismatches)


def test_a_request_that_breaks_the_schema_is_refused(campaign: Campaign) -> None:
    accepted = campaign.of("negative_data_rejection")

    assert not accepted, _report(accepted)


def test_a_refused_launch_stores_and_queues_nothing_and_an_accepted_one_exactly_one(
    campaign: Campaign,
) -> None:
    wrong = campaign.of(BOOKKEEPING)

    assert not wrong, _report(wrong)
