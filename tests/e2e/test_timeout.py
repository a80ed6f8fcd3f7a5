"""Jobs whose finish report does not come within PIPELINE_JOB_TIMEOUT_SECONDS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.support import (
    CUSTOM_START,
    DEFAULT_START,
    FINISHED,
    FINISHED_POISON,
    PENDING,
    Queues,
    assert_dead_letter,
    new_job_id,
)

pytestmark = pytest.mark.e2e

TIMEOUT_SECONDS = 3


@pytest.fixture(scope="module")
def stack_overrides() -> dict[str, str]:
    return {"PIPELINE_JOB_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}


def timed_out(body: dict[str, object]) -> bool:
    output = body.get("output")
    return isinstance(output, dict) and output.get("pipelineStatus") == "TimedOut"


def test_custom_job_times_out_and_a_late_report_is_dead_lettered(
    stack: Stack, queues: Queues
) -> None:
    job_id = new_job_id("custom-late")
    queues.send_json(
        PENDING,
        {
            "jobId": job_id,
            "pipeline": "slow-pipeline",
            "requestedBy": "platform-api",
            "requestedAt": "2026-12-04T10:00:00Z",
        },
    )
    queues.wait_for(CUSTOM_START)
    running = stack.db.wait_for_job_row(job_id, "Running")

    done = stack.host.wait_for_job(job_id, timed_out, timeout=TIMEOUT_SECONDS + 20, what="timeout")
    assert done["output"]["jobId"] == job_id
    assert done["output"]["schema"] == "custom"
    row = stack.db.wait_for_job_row(job_id, "TimedOut")
    assert row["UpdatedAt"] > running["UpdatedAt"]
    started = datetime.fromisoformat(done["createdTime"])
    assert row["UpdatedAt"].timestamp() - started.timestamp() >= TIMEOUT_SECONDS - 0.5

    since = datetime.now(UTC)
    late = json.dumps({"jobId": job_id, "status": "Succeeded"})
    queues.send(FINISHED, late)
    [letter] = queues.wait_for(FINISHED_POISON)
    assert_dead_letter(letter, original=late, queue=FINISHED, since=since)
    assert "timed out" in letter["reason"].lower(), letter

    queues.wait_drained(FINISHED)
    after = stack.db.job_row(job_id)
    assert after is not None and after["Status"] == "TimedOut", "the late report changes nothing"
    code, again = stack.host.job_status(job_id)
    assert code == 200 and again["output"] == done["output"]


def test_timed_out_default_job_runs_no_post_processing(stack: Stack, queues: Queues) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    keys = {f"search:{user}:q1".encode(), f"profile:{user}".encode()}
    for key in keys:
        stack.redis.set(key, "cached")
    rows = stack.db.add_user_data(user, active=2)
    job_id = new_job_id("default-late")

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    queues.wait_for(DEFAULT_START)
    done = stack.host.wait_for_job(job_id, timed_out, timeout=TIMEOUT_SECONDS + 20, what="timeout")
    assert done["output"]["schema"] == "default"

    # Late: dead-lettered, and still nothing runs.
    late = json.dumps({"jobId": job_id, "status": "Succeeded"})
    queues.send(FINISHED, late)
    [letter] = queues.wait_for(FINISHED_POISON)
    assert letter["original"] == late
    queues.wait_drained(FINISHED)

    assert stack.standin.calls(operation=None) == []
    assert {key for key in keys if stack.redis.exists(key)} == keys
    assert all(r["IsActive"] for r in stack.db.user_data(rows).values())
