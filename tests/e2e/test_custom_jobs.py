"""Custom jobs end to end: pending message, start message, PipelineJob row, finish report."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.support import (
    CUSTOM_START,
    DEFAULT_START,
    FINISHED,
    FINISHED_POISON,
    PENDING,
    PENDING_POISON,
    Queues,
    new_job_id,
    parse_utc,
)

pytestmark = pytest.mark.e2e


def custom_request(job_id: str, **fields: object) -> dict[str, object]:
    return {
        "jobId": job_id,
        "pipeline": "nightly-export",
        "requestedBy": "platform-api",
        # Not UTC on purpose: the start message must carry it in UTC.
        "requestedAt": "2026-12-04T12:00:00+02:00",
        **fields,
    }


def test_custom_job_runs_to_success(stack: Stack, queues: Queues) -> None:
    job_id = new_job_id("custom-ok")
    sent_at = datetime.now(UTC)
    queues.send_json(PENDING, custom_request(job_id))

    [start] = queues.wait_for(CUSTOM_START)
    assert set(start) == {
        "jobId",
        "pipeline",
        "requestedBy",
        "requestedAt",
        "parameters",
        "startedAt",
    }, start
    assert start["jobId"] == job_id
    assert start["pipeline"] == "nightly-export"
    assert start["requestedBy"] == "platform-api"
    assert start["parameters"] == {}  # the default, filled in
    assert parse_utc(start["requestedAt"]) == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    started_at = parse_utc(start["startedAt"])
    assert sent_at.timestamp() - 1 <= started_at.timestamp() <= time.time() + 1
    assert queues.raw(DEFAULT_START) == []

    running = stack.db.wait_for_job_row(job_id, "Running")
    assert running["Error"] is None
    assert running["UpdatedAt"] is not None
    assert sent_at.timestamp() - 1 <= running["UpdatedAt"].timestamp() <= time.time() + 1

    code, status = stack.host.job_status(job_id)
    assert code == 200, status
    assert status["jobId"] == job_id
    assert status["runtimeStatus"] in {"Pending", "Running"}
    assert isinstance(status["createdTime"], str) and isinstance(status["lastUpdatedTime"], str)

    # The pipeline may add fields of its own: they are ignored.
    queues.send_json(
        FINISHED,
        {
            "jobId": job_id,
            "status": "Succeeded",
            "finishedAt": "2026-12-04T11:30:00+01:00",
            "rowsWritten": 1234,
        },
    )
    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    output = done["output"]
    assert output["jobId"] == job_id
    assert output["schema"] == "custom"
    assert output["pipelineStatus"] == "Succeeded"

    row = stack.db.wait_for_job_row(job_id, "Succeeded")
    assert row["Error"] is None
    assert row["UpdatedAt"] > running["UpdatedAt"], "UpdatedAt is set on every change"
    assert queues.raw(FINISHED_POISON) == []
    assert queues.raw(PENDING_POISON) == []
    assert len(queues.raw(CUSTOM_START)) == 1


def test_custom_job_failed_report_records_the_error(stack: Stack, queues: Queues) -> None:
    job_id = new_job_id("custom-failed")
    queues.send_json(
        PENDING,
        custom_request(job_id, parameters={"region": "eu", "limit": 10, "dry": False}),
        as_base64=True,
    )
    [start] = queues.wait_for(CUSTOM_START)
    assert start["jobId"] == job_id
    assert start["parameters"] == {"region": "eu", "limit": 10, "dry": False}

    # Sent at once: the report may overtake the job's own start-up; it must not be lost.
    error = "Stage 'load' failed: disk full on worker 3 — ünïcödé kept"
    queues.send_json(
        FINISHED, {"jobId": job_id, "status": "failed", "error": error}, as_base64=True
    )
    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    assert done["output"]["jobId"] == job_id
    assert done["output"]["schema"] == "custom"
    assert done["output"]["pipelineStatus"] == "Failed"

    row = stack.db.wait_for_job_row(job_id, "Failed")
    assert row["Error"] == error
    assert queues.raw(FINISHED_POISON) == []


def test_second_report_for_a_finished_custom_job_is_ignored(stack: Stack, queues: Queues) -> None:
    job_id = new_job_id("custom-twice")
    queues.send_json(PENDING, custom_request(job_id))
    queues.wait_for(CUSTOM_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    first = stack.host.wait_for_runtime_status(job_id, "Completed")
    row = stack.db.wait_for_job_row(job_id, "Succeeded")

    queues.send_json(FINISHED, {"jobId": job_id, "status": "Failed", "error": "late"})
    queues.wait_drained(FINISHED)

    assert queues.raw(FINISHED_POISON) == [], "a repeat report is ignored, not dead-lettered"
    assert stack.db.job_row(job_id) == row, "the first report's outcome stands"
    code, again = stack.host.job_status(job_id)
    assert code == 200
    assert again["runtimeStatus"] == "Completed"
    assert again["output"] == first["output"]


def test_longest_job_id_with_every_allowed_character(stack: Stack, queues: Queues) -> None:
    job_id = ("Job_1.a-" + new_job_id("x")).ljust(100, "z")
    assert len(job_id) == 100
    queues.send_json(PENDING, custom_request(job_id))
    [start] = queues.wait_for(CUSTOM_START)
    assert start["jobId"] == job_id
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    assert done["jobId"] == job_id and done["output"]["jobId"] == job_id
    stack.db.wait_for_job_row(job_id, "Succeeded")


def test_status_api_answers_404_for_an_unknown_job(stack: Stack) -> None:
    code, body = stack.host.job_status(new_job_id("never-sent"))
    assert code == 404, body
