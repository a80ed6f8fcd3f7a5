"""``PendingJobReceived`` (queue trigger on data-pipeline-job-pending), contract 3.1-3.3.

Each message is a real ``azure.functions.QueueMessage``; the Durable client is a recording
double; dead letters are read back from Azurite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from schemas.orchestration import PipelineJobInput
from settings import load_settings
from tests.integration.queues.storage import assert_all_queues_empty, only_message, utc_z
from tests.triggers.conftest import TIMEOUT_SECONDS
from tests.triggers.durable_double import FakeDurableClient
from tests.triggers.messages import b64

PENDING = "data-pipeline-job-pending"
PENDING_POISON = "data-pipeline-job-pending-poison"
ORCHESTRATOR = "PipelineJobOrchestrator"

CUSTOM = {
    "jobId": "job-c-1",
    "pipeline": "ingest-orders",
    "requestedBy": "platform-api",
    "requestedAt": "2026-12-04T12:00:00+02:00",
    "parameters": {"region": "eu", "limits": {"rows": 1000}},
}
CUSTOM_NORMALIZED = {**CUSTOM, "requestedAt": "2026-12-04T10:00:00Z"}

DEFAULT_LISTED = {"jobId": "job-d-1", "userId": "user-42", "userDataIds": [3, 1, 2]}
DEFAULT_ALL = {"jobId": "job-d-2", "userId": "Zoë"}

Deliver = Callable[..., None]


@pytest.fixture
def deliver(queue_delivery: Callable[[str], Deliver]) -> Deliver:
    return queue_delivery("PendingJobReceived")


def started(durable: FakeDurableClient) -> list[dict[str, Any]]:
    return durable.calls_to("start_new")


def expected_config() -> dict[str, Any]:
    return load_settings().orchestration_config().model_dump(mode="json")


def assert_pending_dead_letter(
    queues: QueueServiceClient, original: bytes | str, *reason_parts: str
) -> dict[str, Any]:
    letter = only_message(queues, PENDING_POISON).body
    expected = original if isinstance(original, str) else original.decode("utf-8")
    assert letter["original"] == expected
    assert letter["queue"] == PENDING
    assert utc_z(letter["deadLetteredAt"])
    at = datetime.fromisoformat(letter["deadLetteredAt"])
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=1)
    for part in reason_parts:
        assert part in letter["reason"], f"{part!r} not in {letter['reason']!r}"
    return letter


# --- jobs that start ------------------------------------------------------------------------

ENCODINGS = {
    "plain": lambda text: {"body": text},
    "base64": lambda text: {"body": b64(text)},
    "plain-string-datum": lambda text: {"body": text, "datum_type": "string"},
    "base64-trailing-newline": lambda text: {"body": b64(text) + "\n"},
}


@pytest.mark.parametrize("encode", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_custom_job_starts_the_orchestrator_with_the_normalized_job_and_config(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient, encode: Any
) -> None:
    deliver(**encode(json.dumps(CUSTOM)))

    assert durable.calls_to("get_status") == [
        {
            "instance_id": "job-c-1",
            "show_history": False,
            "show_history_output": False,
            "show_input": True,
        }
    ]
    (call,) = started(durable)
    assert call["orchestration_function_name"] == ORCHESTRATOR
    assert call["instance_id"] == "job-c-1"
    assert call["client_input"]["job"] == {"schema": "custom", "request": CUSTOM_NORMALIZED}
    assert call["client_input"]["config"] == expected_config()
    assert call["client_input"]["config"]["timeoutSeconds"] == TIMEOUT_SECONDS
    # The orchestrator reads its input with this model.
    assert PipelineJobInput.model_validate(call["client_input"]).job.request.jobId == "job-c-1"
    # The start message is the orchestrator's job; nothing is dead-lettered.
    assert_all_queues_empty(clean_queues)


def test_custom_job_without_parameters_gets_an_empty_object(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    message = {k: v for k, v in CUSTOM.items() if k != "parameters"}
    deliver(json.dumps(message))

    (call,) = started(durable)
    assert call["client_input"]["job"]["request"]["parameters"] == {}
    assert_all_queues_empty(clean_queues)


@pytest.mark.parametrize(
    ("message", "expected_request"),
    [(DEFAULT_LISTED, DEFAULT_LISTED), (DEFAULT_ALL, {**DEFAULT_ALL, "userDataIds": None})],
    ids=["listed-rows", "all-rows"],
)
@pytest.mark.parametrize("encoding", ["plain", "base64"])
def test_default_job_starts_the_orchestrator(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    message: dict[str, Any],
    expected_request: dict[str, Any],
    encoding: str,
) -> None:
    text = json.dumps(message, ensure_ascii=False)
    deliver(text if encoding == "plain" else b64(text))

    (call,) = started(durable)
    assert call["orchestration_function_name"] == ORCHESTRATOR
    assert call["instance_id"] == message["jobId"]
    assert call["client_input"] == {
        "job": {"schema": "default", "request": expected_request},
        "config": expected_config(),
    }
    assert_all_queues_empty(clean_queues)


def test_redelivered_message_with_a_higher_dequeue_count_is_handled_the_same(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    deliver(json.dumps(DEFAULT_LISTED), dequeue_count=3)
    assert [c["instance_id"] for c in started(durable)] == ["job-d-1"]
    assert_all_queues_empty(clean_queues)


# --- rejected messages ----------------------------------------------------------------------


def test_message_matching_neither_schema_is_dead_lettered_with_both_schemas_errors(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    body = '{"jobId": "job-x", "pipeline": "p",\n "userId": "u"}'
    deliver(body)

    letter = assert_pending_dead_letter(
        clean_queues,
        body,
        "neither",
        "custom",
        "default",
        "requestedBy",
        "requestedAt",
        "userId",
        "pipeline",
    )
    locs = {error["loc"] for error in letter["errors"]}
    assert {"custom.requestedBy", "custom.requestedAt", "custom.userId", "default.pipeline"} <= locs
    assert all(set(error) == {"loc", "msg"} and error["msg"] for error in letter["errors"])
    assert durable.calls == []


def test_base64_message_matching_neither_schema_keeps_the_base64_text_as_original(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    body = b64('{"jobId": "job-x", "userId": "u", "extra": true}')
    deliver(body)

    letter = assert_pending_dead_letter(clean_queues, body, "extra")
    assert "default.extra" in {error["loc"] for error in letter["errors"]}
    assert durable.calls == []


REJECTED = {
    "not-json": ("hello, pipeline", ["not JSON"]),
    "empty": ("", ["not JSON"]),
    "truncated-json": ('{"jobId": "job-1", "userId": ', ["not JSON"]),
    "json-array": ('[{"jobId": "job-1", "userId": "u"}]', ["JSON object", "array"]),
    "json-string": ('"job-1"', ["JSON object", "string"]),
    "json-null": ("null", ["JSON object", "null"]),
    "base64-of-not-json": (b64("no json here"), ["base64", "not JSON"]),
    "base64-of-array": (b64("[1, 2]"), ["JSON object", "array"]),
    "jobId-with-colon": ('{"jobId": "job:1", "userId": "u"}', ["jobId"]),
    "jobId-leading-dash": ('{"jobId": "-job", "userId": "u"}', ["jobId"]),
    "jobId-too-long": (json.dumps({"jobId": "j" * 101, "userId": "u"}), ["jobId"]),
    "jobId-trailing-newline": (json.dumps({"jobId": "job-1\n", "userId": "u"}), ["jobId"]),
    "jobId-not-a-string": ('{"jobId": 17, "userId": "u"}', ["jobId"]),
    "repeated-userDataIds": ('{"jobId": "j1", "userId": "u", "userDataIds": [1, 2, 1]}', ["[1]"]),
    "zero-userDataId": ('{"jobId": "j1", "userId": "u", "userDataIds": [0]}', ["userDataIds"]),
    "string-userDataId": ('{"jobId": "j1", "userId": "u", "userDataIds": ["1"]}', ["userDataIds"]),
    "empty-userId": ('{"jobId": "j1", "userId": ""}', ["userId"]),
    "requestedAt-without-offset": (
        json.dumps({**CUSTOM, "requestedAt": "2026-12-04T10:00:00"}),
        ["requestedAt", "RFC 3339"],
    ),
    "requestedAt-epoch-seconds": (
        json.dumps({**CUSTOM, "requestedAt": 1796378400}),
        ["requestedAt"],
    ),
    "custom-with-unknown-field": (json.dumps({**CUSTOM, "priority": 1}), ["priority"]),
    "parameters-not-an-object": (json.dumps({**CUSTOM, "parameters": [1]}), ["parameters"]),
    "both-schemas-mixed": (json.dumps({**CUSTOM, "userId": "u"}), ["userId", "pipeline"]),
    "unicode-and-whitespace": ('  {"jobId": "jöb", "userId": "ü☃😀"}\r\n', ["jobId"]),
}


@pytest.mark.parametrize(
    ("body", "reason_parts"), list(REJECTED.values()), ids=list(REJECTED.keys())
)
def test_rejected_message_is_dead_lettered_byte_for_byte_and_starts_nothing(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    body: str,
    reason_parts: list[str],
) -> None:
    deliver(body)

    assert_pending_dead_letter(clean_queues, body, *reason_parts)
    assert started(durable) == []
    assert durable.calls == []


def test_message_that_is_not_utf8_is_dead_lettered(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    body = b'{"jobId": "job-1", "userId": "\xff\xfe"}'
    deliver(body)

    letter = only_message(clean_queues, PENDING_POISON).body
    assert "UTF-8" in letter["reason"]
    # Bytes that are no text cannot be kept as text: the rest of the message is.
    assert letter["original"] == '{"jobId": "job-1", "userId": "\ufffd\ufffd"}'
    assert durable.calls == []


def test_largest_pending_message_matching_neither_schema_is_dead_lettered_truncated(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    """A 64 KiB message (the queue's limit) still ends as a dead letter, never as an error."""
    head = '{"jobId": "job-big", "note": "'
    body = head + "n" * (64 * 1024 - len(head) - 2) + '"}'
    assert len(body.encode("utf-8")) == 64 * 1024

    deliver(body)

    letter = only_message(clean_queues, PENDING_POISON).body
    assert letter["original"].endswith("…[truncated]")
    assert body.startswith(letter["original"].removesuffix("…[truncated]"))
    assert "truncated" in letter["reason"]
    assert "note" in letter["reason"]
    assert durable.calls == []


def test_message_with_too_many_user_data_ids_is_dead_lettered_truncated(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    """10,001 distinct ids take more room than a dead letter has: the original is cut."""
    body = json.dumps({"jobId": "j1", "userId": "u", "userDataIds": list(range(1, 10_002))})
    deliver(body)

    letter = only_message(clean_queues, PENDING_POISON).body
    assert "10000" in letter["reason"]
    assert "truncated" in letter["reason"]
    assert body.startswith(letter["original"].removesuffix("…[truncated]"))
    assert durable.calls == []


def test_message_with_thousands_of_field_errors_is_dead_lettered(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    body = json.dumps({"jobId": "job-1", "userId": "u", "userDataIds": ["x"] * 3000})
    deliver(body)

    letter = assert_pending_dead_letter(clean_queues, body, "neither", "more field errors")
    assert letter["errors"][0]["loc"].startswith("custom.")
    assert durable.calls == []


# --- a jobId that is already in use ---------------------------------------------------------


def test_same_message_twice_starts_one_job_and_ignores_the_twin(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    deliver(json.dumps(CUSTOM))
    deliver(json.dumps(CUSTOM))

    assert [c["instance_id"] for c in started(durable)] == ["job-c-1"]
    assert_all_queues_empty(clean_queues)
    assert any(
        "job-c-1" in r.getMessage() and "duplicate" in r.getMessage() for r in caplog.records
    )


SAME_CONTENT = {
    "plain-then-base64": (json.dumps(CUSTOM), b64(json.dumps(CUSTOM))),
    "base64-then-plain": (b64(json.dumps(CUSTOM)), json.dumps(CUSTOM)),
    "reformatted": (
        json.dumps(CUSTOM),
        json.dumps(dict(reversed(CUSTOM.items())), indent=4),
    ),
    "same-instant-other-offset": (
        json.dumps(CUSTOM),
        json.dumps({**CUSTOM, "requestedAt": "2026-12-04T05:00:00-05:00"}),
    ),
    "default-job": (json.dumps(DEFAULT_LISTED), b64(json.dumps(DEFAULT_LISTED, indent=1))),
}


@pytest.mark.parametrize(("first", "second"), SAME_CONTENT.values(), ids=SAME_CONTENT.keys())
def test_same_content_again_is_ignored(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    first: str,
    second: str,
) -> None:
    deliver(first)
    deliver(second)

    assert len(started(durable)) == 1
    assert_all_queues_empty(clean_queues)


@pytest.mark.parametrize("runtime_status", ["Pending", "Running", "Completed", "Failed"])
@pytest.mark.parametrize("input_as_json_text", [True, False], ids=["input-text", "input-object"])
def test_same_content_as_an_existing_instance_is_ignored_whatever_its_state(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    runtime_status: str,
    input_as_json_text: bool,
) -> None:
    durable.add_instance(
        "job-c-1",
        runtime_status=runtime_status,
        custom_status="Done" if runtime_status == "Completed" else "WaitingForPipeline",
        input={
            "job": {"schema": "custom", "request": CUSTOM_NORMALIZED},
            "config": expected_config(),
        },
        input_as_json_text=input_as_json_text,
    )

    deliver(b64(json.dumps(CUSTOM)))

    # Never a second start: for a finished instance the real client would silently replace it.
    assert started(durable) == []
    assert_all_queues_empty(clean_queues)


DIFFERENT_CONTENT = {
    "other-pipeline": json.dumps({**CUSTOM, "pipeline": "other-pipeline"}),
    "other-parameters": json.dumps({**CUSTOM, "parameters": {"region": "us"}}),
    "other-time": json.dumps({**CUSTOM, "requestedAt": "2026-12-04T12:00:01+02:00"}),
    "other-schema": json.dumps({"jobId": "job-c-1", "userId": "user-42"}),
    "base64-other-content": b64(json.dumps({**CUSTOM, "requestedBy": "someone-else"})),
}


@pytest.mark.parametrize("second", DIFFERENT_CONTENT.values(), ids=DIFFERENT_CONTENT.keys())
def test_same_job_id_with_different_content_is_dead_lettered(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient, second: str
) -> None:
    deliver(json.dumps(CUSTOM))
    deliver(second)

    assert [c["instance_id"] for c in started(durable)] == ["job-c-1"]
    letter = assert_pending_dead_letter(clean_queues, second, "job-c-1", "already used")
    assert letter["errors"] == []


def test_different_content_for_a_completed_job_is_dead_lettered_not_restarted(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    durable.add_instance(
        "job-d-1",
        runtime_status="Completed",
        custom_status="Done",
        input={
            "job": {"schema": "default", "request": DEFAULT_LISTED},
            "config": expected_config(),
        },
        output={"jobId": "job-d-1", "schema": "default", "pipelineStatus": "Succeeded"},
    )
    body = json.dumps({**DEFAULT_LISTED, "userDataIds": [3, 1]})
    deliver(body)

    assert started(durable) == []
    assert_pending_dead_letter(clean_queues, body, "job-d-1", "already used")


# --- the race with a twin -------------------------------------------------------------------


def twin_starts_first(durable: FakeDurableClient, request: dict[str, Any], schema: str) -> None:
    """Between the intake's status check and its start, a twin message starts the same jobId."""

    def start_twin() -> None:
        durable.add_instance(
            request["jobId"],
            runtime_status="Pending",
            input={"job": {"schema": schema, "request": request}, "config": expected_config()},
        )
        durable.before_start = None

    durable.before_start = start_twin


def test_start_refused_because_a_twin_started_the_same_job_is_a_duplicate(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    twin_starts_first(durable, CUSTOM_NORMALIZED, "custom")

    deliver(json.dumps(CUSTOM))

    assert [c.method for c in durable.calls] == ["get_status", "start_new", "get_status"]
    assert durable.calls_to("get_status")[1]["show_input"] is True
    # Only the twin's instance exists; nothing was dead-lettered.
    assert durable.instances["job-c-1"]["runtimeStatus"] == "Pending"
    assert_all_queues_empty(clean_queues)


def test_start_refused_because_a_twin_with_other_content_started_is_dead_lettered(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    twin_starts_first(durable, {**CUSTOM_NORMALIZED, "pipeline": "twin"}, "custom")

    deliver(json.dumps(CUSTOM))

    assert [c.method for c in durable.calls] == ["get_status", "start_new", "get_status"]
    assert_pending_dead_letter(clean_queues, json.dumps(CUSTOM), "job-c-1", "already used")


def test_start_failing_for_another_reason_raises_so_the_host_retries(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    durable.start_error = Exception("The operation failed with an unexpected status code 500")

    with pytest.raises(Exception, match="status code 500"):
        deliver(json.dumps(CUSTOM))

    assert [c.method for c in durable.calls] == ["get_status", "start_new", "get_status"]
    assert_all_queues_empty(clean_queues)


def test_valid_job_too_large_to_forward_is_dead_lettered_instead_of_started(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    # Valid against the custom schema and under 64 KiB as sent, but its start message would
    # not fit once base64-encoded: it is rejected on arrival, not failed later.
    body = json.dumps({**CUSTOM, "jobId": "job-big", "parameters": {"blob": "x" * 55_000}})
    assert len(body.encode()) < 64 * 1024
    deliver(body)

    letter = only_message(clean_queues, PENDING_POISON).body
    assert "Job 'job-big' is too large to forward" in letter["reason"]
    # The dead letter itself must fit a queue message too, so it keeps what it can.
    assert letter["original"].endswith("…[truncated]")
    assert body.startswith(letter["original"].removesuffix("…[truncated]"))
    assert started(durable) == []


def test_valid_job_just_small_enough_to_forward_is_started(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    body = json.dumps({**CUSTOM, "jobId": "job-fits", "parameters": {"blob": "x" * 45_000}})
    deliver(body)

    assert [call["instance_id"] for call in started(durable)] == ["job-fits"]
