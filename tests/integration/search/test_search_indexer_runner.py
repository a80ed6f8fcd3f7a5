"""IndexerRunner with the real SearchIndexerClient against the local search stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from azure.identity import DefaultAzureCredential
from azure.search.documents.indexes import SearchIndexerClient
from port_for import get_port

from services.search_indexers import (
    IndexerOutcome,
    IndexerRunAttempt,
    IndexerRunner,
    create_search_indexer_client,
)
from tests.support.search_standin import Reply, SearchStandIn


@pytest.fixture
def client(search_standin: SearchStandIn) -> Iterator[SearchIndexerClient]:
    with create_search_indexer_client(search_standin.endpoint, search_standin.api_key) as c:
        yield c


@pytest.fixture
def runner(client: SearchIndexerClient) -> IndexerRunner:
    return IndexerRunner(client)


def assert_secret_free(attempt: IndexerRunAttempt, standin: SearchStandIn) -> None:
    assert standin.api_key
    assert standin.api_key not in attempt.model_dump_json()


def test_accepted_run_is_started(search_standin: SearchStandIn, runner: IndexerRunner) -> None:
    search_standin.script("docs")

    attempt = runner.run_once("docs")

    assert attempt == IndexerRunAttempt(
        indexer="docs",
        outcome=IndexerOutcome.STARTED,
        status_code=202,
        message="indexer run accepted",
    )
    assert not attempt.retry_later
    [call] = search_standin.calls()
    assert (call.method, call.path) == ("POST", "/indexers('docs')/search.run")
    assert call.api_version, "the SDK must send ?api-version="
    assert call.api_key_ok is True, "the admin key must be sent in the api-key header"
    assert call.status == 202


def test_other_2xx_is_started(search_standin: SearchStandIn, runner: IndexerRunner) -> None:
    search_standin.script("docs", then=204)

    attempt = runner.run_once("docs")

    assert (attempt.outcome, attempt.status_code) == (IndexerOutcome.STARTED, 204)


def test_already_running_is_busy(search_standin: SearchStandIn, runner: IndexerRunner) -> None:
    search_standin.script("docs", then=409)

    attempt = runner.run_once("docs")

    assert (attempt.outcome, attempt.status_code) == (IndexerOutcome.BUSY, 409)
    assert attempt.retry_later
    assert attempt.message is not None
    assert "already running" in attempt.message
    assert len(search_standin.calls("docs")) == 1
    assert_secret_free(attempt, search_standin)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
def test_server_errors_and_throttling_are_transient_and_not_retried_by_the_sdk(
    search_standin: SearchStandIn, runner: IndexerRunner, status: int
) -> None:
    search_standin.script("docs", then=status)

    started = time.monotonic()
    attempt = runner.run_once("docs")
    elapsed = time.monotonic() - started

    assert (attempt.outcome, attempt.status_code) == (IndexerOutcome.TRANSIENT, status)
    assert attempt.retry_later
    # azure-core would retry these (with sleeps in between) unless retry_total=0.
    assert [c.status for c in search_standin.calls("docs")] == [status]
    assert elapsed < 2, "run_once must not wait"


def test_unknown_indexer_fails(search_standin: SearchStandIn, runner: IndexerRunner) -> None:
    search_standin.script("docs")

    attempt = runner.run_once("no-such-indexer")

    assert (attempt.outcome, attempt.status_code) == (IndexerOutcome.FAILED, 404)
    assert not attempt.retry_later
    assert attempt.message is not None
    assert "no-such-indexer" in attempt.message
    assert [c.status for c in search_standin.calls()] == [404]


def test_wrong_key_fails_with_403(search_standin: SearchStandIn) -> None:
    search_standin.script("docs")
    with create_search_indexer_client(search_standin.endpoint, "not-the-key") as client:
        attempt = IndexerRunner(client).run_once("docs")

    assert (attempt.outcome, attempt.status_code) == (IndexerOutcome.FAILED, 403)
    [call] = search_standin.calls()
    assert call.api_key_ok is False
    assert_secret_free(attempt, search_standin)
    assert attempt.message is not None
    assert "not-the-key" not in attempt.message


@pytest.mark.parametrize("status", [400, 401, 413])
def test_other_client_errors_fail(
    search_standin: SearchStandIn, runner: IndexerRunner, status: int
) -> None:
    search_standin.script("docs", then=status)

    attempt = runner.run_once("docs")

    assert (attempt.outcome, attempt.status_code) == (IndexerOutcome.FAILED, status)
    assert len(search_standin.calls("docs")) == 1


def test_service_error_message_is_passed_on(
    search_standin: SearchStandIn, runner: IndexerRunner
) -> None:
    search_standin.script("docs", then=Reply(400, code="InvalidName", message="Bad indexer name."))

    attempt = runner.run_once("docs")

    assert (
        attempt.message
        == "HTTP 400: the search service rejected the request (InvalidName: Bad indexer name.)"
    )


def test_busy_then_started_makes_one_request_per_attempt(
    search_standin: SearchStandIn, runner: IndexerRunner
) -> None:
    search_standin.script("docs", 409, 503)

    outcomes = [runner.run_once("docs").outcome for _ in range(4)]

    assert outcomes == [
        IndexerOutcome.BUSY,
        IndexerOutcome.TRANSIENT,
        IndexerOutcome.STARTED,
        IndexerOutcome.STARTED,
    ]
    assert [c.status for c in search_standin.calls("docs")] == [409, 503, 202, 202]


def test_indexers_are_independent(search_standin: SearchStandIn, runner: IndexerRunner) -> None:
    search_standin.script("busy", then=409)
    search_standin.script("ok")

    results = {name: runner.run_once(name).outcome for name in ("busy", "missing", "ok")}

    assert results == {
        "busy": IndexerOutcome.BUSY,
        "missing": IndexerOutcome.FAILED,
        "ok": IndexerOutcome.STARTED,
    }


def test_connection_refused_is_transient() -> None:
    port = get_port(None)
    assert port is not None
    with create_search_indexer_client(f"http://127.0.0.1:{port}", "key") as client:
        attempt = IndexerRunner(client).run_once("docs")

    assert attempt.outcome is IndexerOutcome.TRANSIENT
    assert attempt.status_code is None
    assert attempt.message is not None
    assert "Connection refused" in attempt.message


def test_stopped_service_is_transient_until_it_is_back(
    search_standin: SearchStandIn, runner: IndexerRunner
) -> None:
    search_standin.script("docs")
    assert runner.run_once("docs").outcome is IndexerOutcome.STARTED
    search_standin.stop()

    attempt = runner.run_once("docs")

    assert (attempt.outcome, attempt.status_code) == (IndexerOutcome.TRANSIENT, None)
    search_standin.start()
    assert runner.run_once("docs").outcome is IndexerOutcome.STARTED
    assert [c.status for c in search_standin.calls("docs")] == [202, 202]


def test_read_timeout_is_transient(search_standin: SearchStandIn) -> None:
    search_standin.script("docs", Reply(202, delay=2.0))
    endpoint, key = search_standin.endpoint, search_standin.api_key
    with create_search_indexer_client(endpoint, key, read_timeout=0.3) as client:
        started = time.monotonic()
        attempt = IndexerRunner(client).run_once("docs")
        elapsed = time.monotonic() - started

    assert attempt.outcome is IndexerOutcome.TRANSIENT
    assert attempt.message is not None
    assert "timed out" in attempt.message.lower()
    assert elapsed < 1.5
    assert len(search_standin.calls("docs")) == 1


def test_attempt_round_trips_through_json() -> None:
    attempt = IndexerRunAttempt(
        indexer="docs", outcome=IndexerOutcome.BUSY, status_code=409, message="busy"
    )

    data = attempt.model_dump(mode="json")

    assert data == {"indexer": "docs", "outcome": "busy", "status_code": 409, "message": "busy"}
    assert IndexerRunAttempt.model_validate(data) == attempt


def test_indexer_status_is_served(
    search_standin: SearchStandIn, client: SearchIndexerClient
) -> None:
    search_standin.script("docs")
    IndexerRunner(client).run_once("docs")

    status = client.get_indexer_status("docs")

    assert status.last_result is not None
    assert status.last_result.status == "success"


@pytest.mark.parametrize(
    ("endpoint", "key", "problem"),
    [
        ("http://search.example.com", "key", "https"),
        ("http://127.0.0.1:8080", None, "API key"),
        ("ftp://svc.search.windows.net", "key", "https"),
        ("svc.search.windows.net", "key", "absolute URL"),
        ("https://svc.search.windows.net:notaport", "key", "not a valid URL"),
    ],
)
def test_unusable_endpoints_are_refused(endpoint: str, key: str | None, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        create_search_indexer_client(endpoint, key)


def test_without_a_key_the_client_uses_entra_id() -> None:
    # Building the client fetches no token; only the credential type is checked.
    with create_search_indexer_client("https://svc.search.windows.net", "") as client:
        assert isinstance(client._config.credential, DefaultAzureCredential)
        assert client._config.retry_policy.total_retries == 0
