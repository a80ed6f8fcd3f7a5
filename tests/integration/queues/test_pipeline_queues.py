"""PipelineQueues against a real Storage account (Azurite): queue creation, start messages,
dead letters and the 64 KiB limit (contract 2, 3.4, 3.6)."""

from __future__ import annotations

import base64
from contextlib import suppress
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient, TextBase64DecodePolicy

from schemas.dead_letter import FieldError
from schemas.orchestration import CustomJob, DefaultJob
from schemas.pending import CustomJobRequest, DefaultJobRequest
from services.pipeline_queues import MessageTooLargeError, PipelineQueues
from tests.integration.queues.storage import (
    CONTRACT_QUEUES,
    MAX_QUEUE_MESSAGE_BYTES,
    assert_all_queues_empty,
    only_message,
    read_raw,
    utc_z,
)

CUSTOM_START = "data-pipeline-job-custom-start"
DEFAULT_START = "data-pipeline-job-default-start"
PENDING = "data-pipeline-job-pending"
PENDING_POISON = "data-pipeline-job-pending-poison"
FINISHED = "data-pipeline-job-finished"
FINISHED_POISON = "data-pipeline-job-finished-poison"

# The largest JSON text whose base64 form fits a 64 KiB queue message.
MAX_JSON_BYTES = MAX_QUEUE_MESSAGE_BYTES * 3 // 4
TRUNCATION_MARK = "…[truncated]"

PLUS_ONE = timezone(timedelta(hours=1))
INDIA = timezone(timedelta(hours=5, minutes=30))
STARTED_AT = datetime(2026, 12, 4, 11, 30, 0, tzinfo=PLUS_ONE)


def custom_job(**overrides: Any) -> CustomJob:
    fields: dict[str, Any] = {
        "jobId": "job-custom-1",
        "pipeline": "ingest-orders",
        "requestedBy": "Zoë 山田",
        "requestedAt": "2026-12-04T10:00:00+02:00",
    }
    fields.update(overrides)
    return CustomJob(request=CustomJobRequest.model_validate(fields))


def default_job(**overrides: Any) -> DefaultJob:
    fields: dict[str, Any] = {"jobId": "job-default-1", "userId": "user-42"}
    fields.update(overrides)
    return DefaultJob(request=DefaultJobRequest.model_validate(fields))


def dead_letter(queues: PipelineQueues, original: str, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "poison_queue": PENDING_POISON,
        "source_queue": PENDING,
        "original": original,
        "reason": "The message matches neither job schema.",
        "errors": [FieldError(loc="custom.pipeline", msg="Field required")],
        "at": datetime(2026, 12, 4, 10, 0, 0, tzinfo=INDIA),
    }
    arguments.update(overrides)
    return queues.dead_letter(**arguments)


# --- ensure_queues --------------------------------------------------------------------------


def test_ensure_queues_creates_all_six_contract_queues(queue_service: QueueServiceClient) -> None:
    for name in CONTRACT_QUEUES:
        with suppress(ResourceNotFoundError):
            queue_service.delete_queue(name)
    assert not {q.name for q in queue_service.list_queues()} & set(CONTRACT_QUEUES)

    PipelineQueues(queue_service).ensure_queues()

    assert set(CONTRACT_QUEUES) <= {q.name for q in queue_service.list_queues()}


def test_ensure_queues_is_idempotent_and_keeps_messages(clean_queues: QueueServiceClient) -> None:
    queues = PipelineQueues(clean_queues)
    queues.ensure_queues()
    dead_letter(queues, "kept across ensure_queues")

    queues.ensure_queues()
    PipelineQueues(clean_queues).ensure_queues()  # a second process starting up

    assert set(CONTRACT_QUEUES) <= {q.name for q in clean_queues.list_queues()}
    letter = only_message(clean_queues, PENDING_POISON)
    assert letter.body["original"] == "kept across ensure_queues"


def test_ensure_queues_recreates_a_single_missing_queue(clean_queues: QueueServiceClient) -> None:
    clean_queues.delete_queue(FINISHED_POISON)
    PipelineQueues(clean_queues).ensure_queues()
    assert set(CONTRACT_QUEUES) <= {q.name for q in clean_queues.list_queues()}


# --- start messages -------------------------------------------------------------------------


def test_custom_start_message_is_normalized_base64_utf8_json_on_the_custom_queue(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    returned = pipeline_queues.send_start(custom_job(), started_at=STARTED_AT)

    message = only_message(clean_queues, CUSTOM_START)
    assert base64.b64encode(message.payload).decode("ascii") == message.text
    assert message.body == {
        "jobId": "job-custom-1",
        "pipeline": "ingest-orders",
        "requestedBy": "Zoë 山田",
        "requestedAt": "2026-12-04T08:00:00Z",
        "parameters": {},
        "startedAt": "2026-12-04T10:30:00Z",
    }
    assert returned.model_dump(mode="json") == message.body


def test_custom_start_message_keeps_parameters_and_converts_offsets_to_utc(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    parameters = {"region": "eu", "limits": {"rows": 1000, "strict": True}, "tags": ["a", None]}
    job = custom_job(requestedAt="2026-12-03T23:15:00.250-05:00", parameters=parameters)
    started = datetime(2026, 12, 4, 10, 0, 0, 123456, tzinfo=UTC)

    pipeline_queues.send_start(job, started_at=started)

    body = only_message(clean_queues, CUSTOM_START).body
    assert body["parameters"] == parameters
    assert body["requestedAt"] == "2026-12-04T04:15:00.250000Z"
    assert body["startedAt"] == "2026-12-04T10:00:00.123456Z"
    assert utc_z(body["requestedAt"])
    assert utc_z(body["startedAt"])


@pytest.mark.parametrize(
    ("overrides", "expected_ids"),
    [({}, None), ({"userDataIds": [30, 10, 20]}, [30, 10, 20])],
    ids=["all-rows", "listed-rows"],
)
def test_default_start_message_goes_to_the_default_queue(
    pipeline_queues: PipelineQueues,
    clean_queues: QueueServiceClient,
    overrides: dict[str, Any],
    expected_ids: list[int] | None,
) -> None:
    pipeline_queues.send_start(default_job(**overrides), started_at=STARTED_AT)

    message = only_message(clean_queues, DEFAULT_START)
    assert message.body == {
        "jobId": "job-default-1",
        "userId": "user-42",
        "userDataIds": expected_ids,
        "startedAt": "2026-12-04T10:30:00Z",
    }


def test_start_message_is_readable_by_a_default_encoding_queue_trigger(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    """The pipeline's side reads with base64 decoding, as a Functions trigger does by default."""
    pipeline_queues.send_start(custom_job(), started_at=STARTED_AT)

    reader = clean_queues.get_queue_client(
        CUSTOM_START, message_decode_policy=TextBase64DecodePolicy()
    )
    (message,) = list(reader.peek_messages(max_messages=32))
    assert '"requestedBy":"Zoë 山田"' in message.content


def test_start_message_at_exactly_64_kib_is_sent_and_one_byte_more_raises(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    # Measure the envelope with a small blob, then fill the message up to the limit.
    pipeline_queues.send_start(custom_job(parameters={"blob": ""}), started_at=STARTED_AT)
    envelope = len(only_message(clean_queues, CUSTOM_START).payload)
    clean_queues.get_queue_client(CUSTOM_START).clear_messages()
    fits = "x" * (MAX_JSON_BYTES - envelope)

    pipeline_queues.send_start(custom_job(parameters={"blob": fits}), started_at=STARTED_AT)
    message = only_message(clean_queues, CUSTOM_START)
    assert len(message.payload) == MAX_JSON_BYTES
    assert len(message.text) == MAX_QUEUE_MESSAGE_BYTES
    assert message.body["parameters"]["blob"] == fits
    clean_queues.get_queue_client(CUSTOM_START).clear_messages()

    with pytest.raises(MessageTooLargeError, match=CUSTOM_START):
        pipeline_queues.send_start(
            custom_job(parameters={"blob": fits + "x"}), started_at=STARTED_AT
        )
    assert_all_queues_empty(clean_queues)


def test_default_start_message_over_64_kib_raises_and_sends_nothing(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    ids = list(range(1_000_000, 1_010_000))  # 10,000 ids, about 80 KB of JSON
    with pytest.raises(MessageTooLargeError):
        pipeline_queues.send_start(default_job(userDataIds=ids), started_at=STARTED_AT)
    assert_all_queues_empty(clean_queues)


# --- dead letters ---------------------------------------------------------------------------

ORIGINALS = {
    "unicode": '{"jobId": "ü☃😀", "note": "Zoë 山田 — ✓"}',
    "whitespace": '  \n\t{ "jobId" : "a" }\r\n \t ',
    "base64-text": base64.b64encode(b'{"jobId":"job-1","userId":"u"}').decode("ascii"),
    "invalid-json": '{"jobId": "job-1", "userId": ',
    "empty": "",
    "escapes": 'quote " backslash \\ slash / control \x01 nul \x00 del \x7f',
    "replacement-char": "not utf-8: \ufffd\ufffd",
    "json-array": '[{"jobId": "job-1"}]',
}


@pytest.mark.parametrize("original", ORIGINALS.values(), ids=ORIGINALS.keys())
def test_dead_letter_keeps_the_original_byte_for_byte(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient, original: str
) -> None:
    returned = dead_letter(pipeline_queues, original)

    message = only_message(clean_queues, PENDING_POISON)
    assert message.body["original"] == original
    assert message.body["original"].encode("utf-8") == original.encode("utf-8")
    assert returned.model_dump(mode="json") == message.body


def test_dead_letter_has_reason_errors_queue_and_utc_timestamp(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    dead_letter(
        pipeline_queues,
        '{"jobId": 1}',
        poison_queue=FINISHED_POISON,
        source_queue=FINISHED,
        reason="The finish report is invalid: jobId: Input should be a valid string.",
        errors=[
            FieldError(loc="jobId", msg="Input should be a valid string"),
            FieldError(loc="status", msg="Field required"),
        ],
    )

    message = only_message(clean_queues, FINISHED_POISON)
    assert message.body == {
        "reason": "The finish report is invalid: jobId: Input should be a valid string.",
        "errors": [
            {"loc": "jobId", "msg": "Input should be a valid string"},
            {"loc": "status", "msg": "Field required"},
        ],
        "original": '{"jobId": 1}',
        "queue": FINISHED,
        "deadLetteredAt": "2026-12-04T04:30:00Z",
    }
    assert utc_z(message.body["deadLetteredAt"])


def test_dead_letter_with_no_errors_has_an_empty_list(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    dead_letter(pipeline_queues, "nope", errors=[], reason="The message is not JSON.")
    body = only_message(clean_queues, PENDING_POISON).body
    assert body["errors"] == []
    assert body["reason"] == "The message is not JSON."


def test_dead_letter_that_exactly_fits_is_kept_whole(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    dead_letter(pipeline_queues, "")
    envelope = len(only_message(clean_queues, PENDING_POISON).payload)
    clean_queues.get_queue_client(PENDING_POISON).clear_messages()
    original = "a" * (MAX_JSON_BYTES - envelope)

    dead_letter(pipeline_queues, original)

    message = only_message(clean_queues, PENDING_POISON)
    assert len(message.text) == MAX_QUEUE_MESSAGE_BYTES
    assert message.body["original"] == original
    assert message.body["reason"] == "The message matches neither job schema."


OVERSIZED = {
    "one-byte-too-many": "a" * 49_200,
    "ascii-64-kib": "a" * MAX_QUEUE_MESSAGE_BYTES,
    "two-byte-chars": "é" * (MAX_QUEUE_MESSAGE_BYTES // 2),
    "four-byte-chars": "😀" * (MAX_QUEUE_MESSAGE_BYTES // 4),
    "json-quotes": '"' * MAX_QUEUE_MESSAGE_BYTES,
    "control-chars": "\x01" * 20_000,
    "much-larger": '{"jobId": "job-1", "blob": "' + "z" * 300_000 + '"}',
}


@pytest.mark.parametrize("original", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_oversized_original_is_truncated_with_a_mark_and_the_dead_letter_fits(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient, original: str
) -> None:
    returned = dead_letter(pipeline_queues, original)

    message = only_message(clean_queues, PENDING_POISON)
    assert len(message.text) <= MAX_QUEUE_MESSAGE_BYTES
    body = message.body
    assert body["original"].endswith(TRUNCATION_MARK)
    kept = body["original"].removesuffix(TRUNCATION_MARK)
    assert kept
    assert original.startswith(kept)
    # Truncated only as far as needed: the letter still uses most of the room it has.
    assert len(message.payload) > MAX_JSON_BYTES * 0.9
    assert body["reason"].startswith("The message matches neither job schema.")
    assert "truncated" in body["reason"].removeprefix("The message matches neither job schema.")
    assert body["errors"] == [{"loc": "custom.pipeline", "msg": "Field required"}]
    assert body["queue"] == PENDING
    assert body["deadLetteredAt"] == "2026-12-04T04:30:00Z"
    assert returned.model_dump(mode="json") == body


def test_dead_letter_with_thousands_of_field_errors_still_fits(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    """A 15 KB message with 3,000 bad ids yields ~150 KB of reason and errors."""
    errors = [
        FieldError(loc=f"default.userDataIds[{i}]", msg="Input should be a valid integer")
        for i in range(3000)
    ]
    reason = "The message matches neither job schema. As a default job: " + "; ".join(
        f"{e.loc}: {e.msg}" for e in errors
    )
    original = (
        '{"jobId": "job-1", "userId": "u", "userDataIds": [' + ", ".join(['"x"'] * 3000) + "]}"
    )

    dead_letter(pipeline_queues, original, reason=reason, errors=errors)

    message = only_message(clean_queues, PENDING_POISON)
    assert len(message.text) <= MAX_QUEUE_MESSAGE_BYTES
    body = message.body
    assert body["original"] == original
    kept = body["errors"]
    assert 0 < len(kept) < len(errors)
    assert kept == [e.model_dump() for e in errors[: len(kept)]]
    assert body["reason"].startswith("The message matches neither job schema. As a default job: ")
    assert f"{len(errors) - len(kept)} more" in body["reason"]


def test_dead_letters_go_only_to_the_poison_queue_they_name(
    pipeline_queues: PipelineQueues, clean_queues: QueueServiceClient
) -> None:
    dead_letter(pipeline_queues, "pending one")
    dead_letter(
        pipeline_queues, "finished one", poison_queue=FINISHED_POISON, source_queue=FINISHED
    )

    assert [m.body["original"] for m in read_raw(clean_queues, PENDING_POISON)] == ["pending one"]
    assert [m.body["queue"] for m in read_raw(clean_queues, PENDING_POISON)] == [PENDING]
    assert [m.body["original"] for m in read_raw(clean_queues, FINISHED_POISON)] == ["finished one"]
    assert [m.body["queue"] for m in read_raw(clean_queues, FINISHED_POISON)] == [FINISHED]
    for name in (PENDING, CUSTOM_START, DEFAULT_START, FINISHED):
        assert read_raw(clean_queues, name) == []
