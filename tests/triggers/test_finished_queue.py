"""``PipelineJobFinishedReceived`` (queue trigger on data-pipeline-job-finished), contract 3.5.

Each report is a real ``azure.functions.QueueMessage``; the Durable client is a recording
double holding the job's orchestration instance; dead letters are read back from Azurite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from tests.integration.queues.storage import assert_all_queues_empty, only_message, utc_z
from tests.triggers.durable_double import FakeDurableClient, RaisedEvent
from tests.triggers.messages import b64, queue_message, run

FINISHED = "data-pipeline-job-finished"
FINISHED_POISON = "data-pipeline-job-finished-poison"
EVENT = "PipelineJobFinished"

REPORT = {
    "jobId": "job-1",
    "status": "succeeded",
    "finishedAt": "2026-12-04T12:30:00+02:00",
    "runId": "run-77",  # unknown fields: the pipeline may add more
    "metrics": {"rows": 5},
}
REPORT_NORMALIZED = {
    "jobId": "job-1",
    "status": "Succeeded",
    "finishedAt": "2026-12-04T10:30:00Z",
    "error": None,
}

Deliver = Callable[..., None]


@pytest.fixture
def deliver(queue_delivery: Callable[[str], Deliver]) -> Deliver:
    return queue_delivery("PipelineJobFinishedReceived")


def waiting_job(durable: FakeDurableClient, job_id: str = "job-1", **overrides: Any) -> None:
    fields: dict[str, Any] = {"runtime_status": "Running", "custom_status": "WaitingForPipeline"}
    fields.update(overrides)
    durable.add_instance(job_id, **fields)


def assert_finished_dead_letter(
    queues: QueueServiceClient, original: str, *reason_parts: str
) -> dict[str, Any]:
    letter = only_message(queues, FINISHED_POISON).body
    assert letter["original"] == original
    assert letter["queue"] == FINISHED
    assert utc_z(letter["deadLetteredAt"])
    for part in reason_parts:
        assert part.lower() in letter["reason"].lower(), f"{part!r} not in {letter['reason']!r}"
    return letter


# --- reports that reach their job -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["plain", "base64", "plain-string-datum"])
def test_report_for_a_waiting_job_is_raised_as_the_normalized_event(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient, encoding: str
) -> None:
    waiting_job(durable)
    text = json.dumps(REPORT)

    if encoding == "plain":
        deliver(text)
    elif encoding == "base64":
        deliver(b64(text))
    else:
        deliver(text, datum_type="string")

    assert durable.calls_to("get_status")[0]["instance_id"] == "job-1"
    assert durable.calls_to("raise_event") == [
        {"instance_id": "job-1", "event_name": EVENT, "event_data": REPORT_NORMALIZED}
    ]
    assert durable.events == [RaisedEvent("job-1", EVENT, REPORT_NORMALIZED)]
    assert_all_queues_empty(clean_queues)


def test_failed_report_carries_its_error(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    waiting_job(durable)
    deliver(json.dumps({"jobId": "job-1", "status": "FAILED", "error": "disk full — ✗"}))

    assert durable.calls_to("raise_event") == [
        {
            "instance_id": "job-1",
            "event_name": EVENT,
            "event_data": {
                "jobId": "job-1",
                "status": "Failed",
                "finishedAt": None,
                "error": "disk full — ✗",
            },
        }
    ]
    assert_all_queues_empty(clean_queues)


def test_report_with_an_error_of_4000_chars_is_accepted(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    waiting_job(durable)
    deliver(json.dumps({"jobId": "job-1", "status": "Failed", "error": "e" * 4000}))

    (call,) = durable.calls_to("raise_event")
    assert call["event_data"]["error"] == "e" * 4000
    assert_all_queues_empty(clean_queues)


@pytest.mark.parametrize(
    ("runtime_status", "custom_status"),
    [("Pending", None), ("Running", None), ("Running", "StartingPipeline")],
)
def test_report_for_a_job_still_starting_is_raised_for_durable_to_buffer(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    runtime_status: str,
    custom_status: str | None,
) -> None:
    durable.add_instance("job-1", runtime_status=runtime_status, custom_status=custom_status)
    deliver(json.dumps(REPORT))

    assert [e.data for e in durable.events] == [REPORT_NORMALIZED]
    assert_all_queues_empty(clean_queues)


# --- reports that are dead-lettered ---------------------------------------------------------

INVALID = {
    "missing-jobId": ('{"status": "Succeeded"}', ["jobId"], "jobId"),
    "missing-status": ('{"jobId": "job-1"}', ["status"], "status"),
    "unknown-status": ('{"jobId": "job-1", "status": "Done"}', ["status"], "status"),
    "status-not-a-string": ('{"jobId": "job-1", "status": 1}', ["status"], "status"),
    "jobId-with-colon": ('{"jobId": "job:1", "status": "Succeeded"}', ["jobId"], "jobId"),
    "jobId-trailing-newline": (
        json.dumps({"jobId": "job-1\n", "status": "Succeeded"}),
        ["jobId"],
        "jobId",
    ),
    "finishedAt-not-rfc3339": (
        '{"jobId": "job-1", "status": "Succeeded", "finishedAt": "yesterday"}',
        ["finishedAt"],
        "finishedAt",
    ),
    "finishedAt-without-offset": (
        '{"jobId": "job-1", "status": "Succeeded", "finishedAt": "2026-12-04T10:00:00"}',
        ["finishedAt"],
        "finishedAt",
    ),
    "error-too-long": (
        json.dumps({"jobId": "job-1", "status": "Failed", "error": "e" * 4001}),
        ["error", "4000"],
        "error",
    ),
    "base64-missing-status": (b64('{"jobId": "job-1"}'), ["status"], "status"),
}


@pytest.mark.parametrize(
    ("body", "reason_parts", "error_loc"), INVALID.values(), ids=INVALID.keys()
)
def test_invalid_report_is_dead_lettered_with_its_field_errors(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    body: str,
    reason_parts: list[str],
    error_loc: str,
) -> None:
    waiting_job(durable)  # a job that would take a valid report
    deliver(body)

    letter = assert_finished_dead_letter(clean_queues, body, "invalid", *reason_parts)
    assert error_loc in {error["loc"] for error in letter["errors"]}
    assert durable.calls == []


UNREADABLE = {
    "not-json": ("job-1 finished", ["not JSON"]),
    "empty": ("", ["not JSON"]),
    "truncated-json": ('{"jobId": "job-1", "status": ', ["not JSON"]),
    "json-array": ('[{"jobId": "job-1", "status": "Succeeded"}]', ["JSON object"]),
    "json-string": ('"job-1"', ["JSON object"]),
    "base64-of-not-json": (b64("not json"), ["base64", "not JSON"]),
    "whitespace-and-unicode": ('\t "Zoë ☃" \r\n', ["JSON object"]),
}


@pytest.mark.parametrize(("body", "reason_parts"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_report_that_is_no_json_object_is_dead_lettered_byte_for_byte(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    body: str,
    reason_parts: list[str],
) -> None:
    deliver(body)

    letter = assert_finished_dead_letter(clean_queues, body, *reason_parts)
    assert letter["errors"] == []
    assert durable.calls == []


def test_report_for_an_unknown_job_is_dead_lettered(
    deliver: Deliver, durable: FakeDurableClient, clean_queues: QueueServiceClient
) -> None:
    waiting_job(durable, "job-other")
    body = json.dumps(REPORT)
    deliver(body)

    assert_finished_dead_letter(clean_queues, body, "No job", "job-1")
    assert [c.method for c in durable.calls] == ["get_status"]
    assert durable.calls_to("get_status")[0]["instance_id"] == "job-1"


TIMED_OUT = {
    "completed-custom-job": {
        "runtime_status": "Completed",
        "custom_status": "TimedOut",
        "output": {
            "jobId": "job-1",
            "schema": "custom",
            "pipelineStatus": "TimedOut",
            "error": "No finish report arrived within 3600 seconds.",
        },
    },
    "completed-default-job": {
        "runtime_status": "Completed",
        "custom_status": "TimedOut",
        "output": {"jobId": "job-1", "schema": "default", "pipelineStatus": "TimedOut"},
    },
    "completed-output-only": {
        "runtime_status": "Completed",
        "custom_status": None,
        "output": {"jobId": "job-1", "schema": "default", "pipelineStatus": "TimedOut"},
    },
    "completed-output-as-json-text": {
        "runtime_status": "Completed",
        "custom_status": "TimedOut",
        "output": json.dumps({"jobId": "job-1", "schema": "custom", "pipelineStatus": "TimedOut"}),
    },
    "still-recording-the-timeout": {"runtime_status": "Running", "custom_status": "TimedOut"},
}


@pytest.mark.parametrize("instance", TIMED_OUT.values(), ids=TIMED_OUT.keys())
def test_report_for_a_timed_out_job_is_dead_lettered_as_too_late(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    instance: dict[str, Any],
) -> None:
    durable.add_instance("job-1", **instance)
    body = b64(json.dumps(REPORT))
    deliver(body)

    letter = assert_finished_dead_letter(clean_queues, body, "job-1", "timed out")
    assert letter["errors"] == []
    assert durable.calls_to("raise_event") == []


SECOND_REPORT = {
    "completed": {
        "runtime_status": "Completed",
        "custom_status": "Done",
        "output": {"jobId": "job-1", "schema": "custom", "pipelineStatus": "Succeeded"},
    },
    "completed-failed-pipeline": {
        "runtime_status": "Completed",
        "custom_status": "Done",
        "output": {
            "jobId": "job-1",
            "schema": "default",
            "pipelineStatus": "Failed",
            "error": "boom",
        },
    },
    "post-processing": {"runtime_status": "Running", "custom_status": "PostProcessing"},
    "recording-status": {"runtime_status": "Running", "custom_status": "RecordingStatus"},
    "done-not-yet-completed": {"runtime_status": "Running", "custom_status": "Done"},
}


@pytest.mark.parametrize("instance", SECOND_REPORT.values(), ids=SECOND_REPORT.keys())
def test_second_report_for_a_job_that_already_finished_is_ignored(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    caplog: pytest.LogCaptureFixture,
    instance: dict[str, Any],
) -> None:
    caplog.set_level(logging.INFO)
    durable.add_instance("job-1", **instance)
    deliver(json.dumps(REPORT))

    assert [c.method for c in durable.calls] == ["get_status"]
    assert durable.events == []
    assert_all_queues_empty(clean_queues)
    assert any(
        "job-1" in r.getMessage() and "second finish report" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("runtime_status", ["Failed", "Terminated", "Canceled"])
def test_report_for_a_failed_or_terminated_job_is_dead_lettered(
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
    runtime_status: str,
) -> None:
    durable.add_instance(
        "job-1",
        runtime_status=runtime_status,
        custom_status="WaitingForPipeline",
        output="Orchestrator function 'PipelineJobOrchestrator' failed: boom",
    )
    body = json.dumps(REPORT)
    deliver(body)

    assert_finished_dead_letter(clean_queues, body, "job-1", runtime_status)
    assert durable.calls_to("raise_event") == []


# --- a job's whole life ---------------------------------------------------------------------


def test_job_started_from_the_pending_queue_takes_one_report_and_ignores_the_second(
    user_code: Callable[[str], Any],
    deliver: Deliver,
    durable: FakeDurableClient,
    clean_queues: QueueServiceClient,
) -> None:
    pending = {"jobId": "job-1", "userId": "user-42"}
    run(user_code("PendingJobReceived")(message=queue_message(json.dumps(pending)), client=durable))
    assert durable.instances["job-1"]["runtimeStatus"] == "Pending"

    deliver(json.dumps(REPORT))  # before the orchestrator ran: buffered by Durable
    assert [e.data for e in durable.events] == [REPORT_NORMALIZED]

    durable.instances["job-1"].update(
        runtimeStatus="Completed",
        customStatus="Done",
        output={"jobId": "job-1", "schema": "default", "pipelineStatus": "Succeeded"},
    )
    deliver(json.dumps({**REPORT, "status": "Failed"}))

    assert len(durable.events) == 1
    assert_all_queues_empty(clean_queues)
