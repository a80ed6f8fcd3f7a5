"""Dead letters (contract 3.3, 3.5, 3.6) and duplicates of pending messages."""

from __future__ import annotations

import json
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
    assert_dead_letter,
    b64,
    new_job_id,
    wait_until,
)

pytestmark = pytest.mark.e2e

REJECTED_JOB_ID = "rejected-job-7f3a"


def _neither_schema() -> str:
    # Odd spacing, a non-ASCII value and an unknown field: the dead letter keeps it all.
    return '{ "jobId" : "' + REJECTED_JOB_ID + '",\n  "userId": "Zoë",  "colour":"blau"  }\n'


PENDING_CASES = {
    # case: (message text as sent, send base64?, words the reason or errors must mention)
    "not-json": ("this is {not JSON", False, ["json"]),
    "base64-of-not-json": (b64("still not JSON ]"), False, ["json"]),
    "array": ('[{"jobId": "' + REJECTED_JOB_ID + '", "userId": "u"}]', False, ["array"]),
    "json-string": ('"just a string"', False, ["object"]),
    "neither-schema": (_neither_schema(), False, ["colour", "pipeline"]),
    "neither-schema-base64": (b64(_neither_schema()), False, ["colour", "pipeline"]),
    "invalid-values": (
        json.dumps({"jobId": "-starts-with-dash", "userId": "", "userDataIds": [1, 1, 0]}),
        False,
        ["jobId", "userId", "userDataIds"],
    ),
    "job-id-too-long": (json.dumps({"jobId": "j" * 101, "userId": "u"}), False, ["jobId"]),
    "custom-bad-timestamp": (
        json.dumps(
            {
                "jobId": REJECTED_JOB_ID,
                "pipeline": "p",
                "requestedBy": "api",
                "requestedAt": "2026-12-04 noon",
            }
        ),
        False,
        ["requestedAt"],
    ),
}


@pytest.mark.parametrize("case", list(PENDING_CASES))
def test_rejected_pending_message_is_dead_lettered(stack: Stack, queues: Queues, case: str) -> None:
    text, as_base64, mentions = PENDING_CASES[case]
    since = datetime.now(UTC)
    sent = queues.send(PENDING, text, as_base64=as_base64)

    [letter] = queues.wait_for(PENDING_POISON)
    assert_dead_letter(letter, original=sent, queue=PENDING, since=since)
    said = (letter["reason"] + " " + " ".join(e["loc"] for e in letter["errors"])).lower()
    for word in mentions:
        assert word.lower() in said, (word, letter)
    if case.startswith("neither-schema"):
        assert letter["errors"], "the field errors of both schemas"

    queues.wait_drained(PENDING)
    assert queues.raw(CUSTOM_START) == []
    assert queues.raw(DEFAULT_START) == []
    assert len(queues.raw(PENDING_POISON)) == 1
    code, _ = stack.host.job_status(REJECTED_JOB_ID)
    assert code == 404, "a rejected message starts no job"


def test_same_job_id_with_different_content_is_dead_lettered(stack: Stack, queues: Queues) -> None:
    job_id = new_job_id("reused")
    queues.send_json(PENDING, {"jobId": job_id, "userId": "first-user"})
    [start] = queues.wait_for(DEFAULT_START)
    assert start["userId"] == "first-user"

    since = datetime.now(UTC)
    second = json.dumps({"jobId": job_id, "userId": "second-user"})
    queues.send(PENDING, second)
    [letter] = queues.wait_for(PENDING_POISON)
    assert_dead_letter(letter, original=second, queue=PENDING, since=since)
    assert job_id in letter["reason"] and "already" in letter["reason"].lower(), letter

    queues.wait_drained(PENDING)
    assert len(queues.raw(DEFAULT_START)) == 1
    assert queues.raw(CUSTOM_START) == []


def test_duplicate_pending_message_is_ignored(stack: Stack, queues: Queues) -> None:
    job_id = new_job_id("dup")
    text = json.dumps({"jobId": job_id, "userId": "double-clicker", "userDataIds": [5, 6]})
    queues.send(PENDING, text)
    queues.wait_for(DEFAULT_START)

    # A redelivery, and the same content from a sender that base64-encodes.
    queues.send(PENDING, text)
    queues.send(PENDING, text, as_base64=True)
    queues.wait_drained(PENDING)

    assert len(queues.raw(DEFAULT_START)) == 1, "no second start message"
    assert queues.raw(PENDING_POISON) == []
    code, status = stack.host.job_status(job_id)
    assert code == 200 and status["runtimeStatus"] in {"Pending", "Running"}, status


def test_simultaneous_duplicates_start_one_job(stack: Stack, queues: Queues) -> None:
    job_id = new_job_id("double-click")
    text = json.dumps({"jobId": job_id, "userId": "fast-clicker"})
    for _ in range(3):
        queues.send(PENDING, text)
    queues.wait_for(DEFAULT_START)
    queues.wait_drained(PENDING)

    assert len(queues.raw(DEFAULT_START)) == 1, "no second start message"
    assert queues.raw(PENDING_POISON) == []


FINISHED_CASES = {
    "not-json": lambda job_id: ("<finished/>", False, ["json"]),
    "array": lambda job_id: (json.dumps([{"jobId": job_id, "status": "Succeeded"}]), False, []),
    # Tabs, CRLF and non-ASCII: the dead letter keeps the original byte for byte.
    "unknown-status": lambda job_id: (
        '\t{"jobId": "' + job_id + '",  "status": "Fertig ✓"}\r\n',
        False,
        ["status"],
    ),
    "missing-status": lambda job_id: (json.dumps({"jobId": job_id}), False, ["status"]),
    "bad-job-id": lambda job_id: (
        json.dumps({"jobId": "no spaces allowed", "status": "Succeeded"}),
        False,
        ["jobId"],
    ),
    "error-too-long": lambda job_id: (
        json.dumps({"jobId": job_id, "status": "Failed", "error": "x" * 4001}),
        False,
        ["error"],
    ),
    "bad-finished-at": lambda job_id: (
        json.dumps({"jobId": job_id, "status": "Failed", "finishedAt": "yesterday"}),
        False,
        ["finishedAt"],
    ),
}


@pytest.mark.parametrize("case", list(FINISHED_CASES))
def test_invalid_finish_report_is_dead_lettered(stack: Stack, queues: Queues, case: str) -> None:
    # A running job that the invalid report must not touch.
    job_id = new_job_id(f"waiting-{case}")
    queues.send_json(PENDING, {"jobId": job_id, "userId": "patient-user"})
    queues.wait_for(DEFAULT_START)

    text, as_base64, mentions = FINISHED_CASES[case](job_id)
    since = datetime.now(UTC)
    sent = queues.send(FINISHED, text, as_base64=as_base64)
    [letter] = queues.wait_for(FINISHED_POISON)
    assert_dead_letter(letter, original=sent, queue=FINISHED, since=since)
    said = (letter["reason"] + " " + " ".join(e["loc"] for e in letter["errors"])).lower()
    for word in mentions:
        assert word.lower() in said, (word, letter)

    queues.wait_drained(FINISHED)
    code, status = stack.host.job_status(job_id)
    assert code == 200
    assert status["runtimeStatus"] in {"Pending", "Running"}, "the job still waits"
    assert stack.standin.calls() == []


@pytest.mark.parametrize("as_base64", [False, True], ids=["plain", "base64"])
def test_report_for_unknown_job_is_dead_lettered(
    stack: Stack, queues: Queues, as_base64: bool
) -> None:
    job_id = new_job_id("nobody")
    since = datetime.now(UTC)
    sent = queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"}, as_base64=as_base64)
    [letter] = queues.wait_for(FINISHED_POISON)
    assert_dead_letter(letter, original=sent, queue=FINISHED, since=since)
    assert job_id in letter["reason"], letter
    queues.wait_drained(FINISHED)
    assert len(queues.raw(FINISHED_POISON)) == 1


def test_job_too_large_to_forward_is_not_dropped(stack: Stack, queues: Queues) -> None:
    """Schema-valid (10,000 distinct ids) and under 64 KiB as sent, but its start message,
    base64-encoded, cannot fit in a queue message: it must still end as a job or a dead
    letter (contract 3.6), never be dropped or half-sent."""
    job_id = new_job_id("huge")
    text = json.dumps(
        {"jobId": job_id, "userId": "big-user", "userDataIds": list(range(10_000, 20_000))},
        separators=(",", ":"),
    )
    assert 48 * 1024 < len(text.encode()) < 64 * 1024
    queues.send(PENDING, text)

    def ended() -> str | None:
        if queues.raw(PENDING_POISON):
            return "dead letter"
        code, status = stack.host.job_status(job_id)
        if code == 200 and status["runtimeStatus"] in {"Failed", "Completed", "Terminated"}:
            return "job"
        return None

    outcome = wait_until(ended, timeout=30, what="the oversized job to end somewhere")
    queues.wait_drained(PENDING)
    assert queues.raw(DEFAULT_START) == []
    if outcome == "dead letter":
        [letter] = queues.read(PENDING_POISON)
        assert letter["queue"] == PENDING
        kept = letter["original"]
        if kept != text:
            # The dead letter has to fit in 64 KiB too: a marked, byte-exact prefix is the best
            # it can do.
            assert "truncat" in (kept[-40:] + letter["reason"]).lower(), letter["reason"]
            same = next(
                (i for i, (a, b) in enumerate(zip(kept, text, strict=False)) if a != b),
                min(len(kept), len(text)),
            )
            assert same > 1000, "the kept part is the original, byte for byte"
            assert len(kept) - same <= 40, "only a short truncation mark is added"
