"""Writes start messages and dead letters to the pipeline's Storage queues.

Outgoing messages are UTF-8 JSON, base64-encoded, which is what a Functions queue trigger
with the default ``messageEncoding`` expects on the other side.
"""

import json
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from schemas.dead_letter import DeadLetter, FieldError
from schemas.orchestration import CustomJob, Job
from schemas.queues import (
    ALL_QUEUES,
    CUSTOM_START_QUEUE,
    DEFAULT_START_QUEUE,
    MAX_MESSAGE_BYTES,
)
from schemas.start import CustomJobStart, DefaultJobStart

# base64 grows text by 4/3; the Storage limit applies to what is sent.
_MAX_JSON_BYTES = MAX_MESSAGE_BYTES * 3 // 4
_TRUNCATION_MARK = "…[truncated]"
_TRUNCATED_NOTE = (
    " (The original message was too large to keep whole in a dead letter and was truncated.)"
)
# A message can yield thousands of field errors; an over-large dead letter keeps the first ones.
_MAX_KEPT_ERRORS = 100
_MAX_KEPT_REASON_CHARS = 4000


class MessageTooLargeError(ValueError):
    pass


class PipelineQueues:
    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._clients: dict[str, QueueClient] = {}

    def ensure_queues(self) -> None:
        """Create any of the app's queues that are missing."""
        for name in ALL_QUEUES:
            with suppress(ResourceExistsError):
                self._client(name).create_queue()

    def send_start(self, job: Job, started_at: datetime) -> CustomJobStart | DefaultJobStart:
        start, queue = _start_message(job, started_at)
        self._send(queue, start.model_dump(mode="json"))
        return start

    def dead_letter(
        self,
        *,
        poison_queue: str,
        source_queue: str,
        original: str,
        reason: str,
        errors: list[FieldError],
        at: datetime,
    ) -> DeadLetter:
        letter = DeadLetter(
            reason=reason, errors=errors, original=original, queue=source_queue, deadLetteredAt=at
        )
        if _json_size(letter) > _MAX_JSON_BYTES:
            # A message near the 64 KiB limit no longer fits once wrapped and base64-encoded.
            # Keeping the dead letter (with a clear mark) beats losing the message altogether.
            letter = _fitted(letter)
        self._send(poison_queue, letter.model_dump(mode="json"))
        return letter

    def _send(self, queue: str, body: dict[str, Any]) -> None:
        text = _encode(body)
        if len(text) > _MAX_JSON_BYTES:
            raise MessageTooLargeError(
                f"A message for {queue} is {len(text)} bytes of JSON; at most {_MAX_JSON_BYTES} "
                "fit in a 64 KiB queue message once base64-encoded."
            )
        self._client(queue).send_message(text.decode("utf-8"))

    def _client(self, queue: str) -> QueueClient:
        client = self._clients.get(queue)
        if client is None:
            client = self._service.get_queue_client(
                queue, message_encode_policy=TextBase64EncodePolicy()
            )
            self._clients[queue] = client
        return client


def start_message_overflow(job: Job) -> int:
    """How many bytes the job's start message is over the queue limit (0 when it fits).

    Checked when the job arrives, so a request too large to forward is dead-lettered at once
    instead of failing the job later.
    """
    start, _ = _start_message(job, datetime(2000, 1, 1, tzinfo=UTC))
    return max(0, len(_encode(start.model_dump(mode="json"))) - _MAX_JSON_BYTES)


def _start_message(job: Job, started_at: datetime) -> tuple[CustomJobStart | DefaultJobStart, str]:
    if isinstance(job, CustomJob):
        return (
            CustomJobStart(**job.request.model_dump(), startedAt=started_at),
            CUSTOM_START_QUEUE,
        )
    return DefaultJobStart(**job.request.model_dump(), startedAt=started_at), DEFAULT_START_QUEUE


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_size(letter: DeadLetter) -> int:
    return len(_encode(letter.model_dump(mode="json")))


def _escaped_size(text: str) -> int:
    """Bytes ``text`` takes inside a JSON string (escaping is per character, so it adds up)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def _fitted(letter: DeadLetter) -> DeadLetter:
    """The dead letter cut down to one queue message: at most the first field errors, a capped
    reason, and as much of the original as still fits, followed by the truncation mark."""
    reason, errors = letter.reason, letter.errors
    omitted = max(0, len(errors) - _MAX_KEPT_ERRORS)
    if len(reason) > _MAX_KEPT_REASON_CHARS:
        reason = reason[:_MAX_KEPT_REASON_CHARS] + _TRUNCATION_MARK
    if omitted:
        reason += f" ({omitted} more field errors are not listed.)"
    letter = letter.model_copy(update={"reason": reason, "errors": errors[:_MAX_KEPT_ERRORS]})
    if _json_size(letter) <= _MAX_JSON_BYTES:
        return letter
    frame = letter.model_copy(
        update={"reason": reason + _TRUNCATED_NOTE, "original": _TRUNCATION_MARK}
    )
    room = _MAX_JSON_BYTES - _json_size(frame)
    original = letter.original
    low, high = 0, len(original)  # the longest prefix whose escaped form fits in ``room``
    while low < high:
        middle = (low + high + 1) // 2
        if _escaped_size(original[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return frame.model_copy(update={"original": original[:low] + _TRUNCATION_MARK})
