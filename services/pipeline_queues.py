"""Writes start messages and dead letters to the pipeline's Storage queues.

Outgoing messages are UTF-8 JSON, base64-encoded, which is what a Functions queue trigger
with the default ``messageEncoding`` expects on the other side.
"""

import json
from contextlib import suppress
from datetime import datetime
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
        start: CustomJobStart | DefaultJobStart
        if isinstance(job, CustomJob):
            start = CustomJobStart(**job.request.model_dump(), startedAt=started_at)
            queue = CUSTOM_START_QUEUE
        else:
            start = DefaultJobStart(**job.request.model_dump(), startedAt=started_at)
            queue = DEFAULT_START_QUEUE
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
        body = letter.model_dump(mode="json")
        overflow = len(_encode(body)) - _MAX_JSON_BYTES
        if overflow > 0:
            # A message near the 64 KiB limit no longer fits once wrapped and base64-encoded.
            # Keeping the dead letter (with a clear mark) beats losing the message altogether.
            kept = original.encode("utf-8")[: max(0, len(original.encode("utf-8")) - overflow - 64)]
            letter = letter.model_copy(
                update={
                    "original": kept.decode("utf-8", errors="ignore") + _TRUNCATION_MARK,
                    "reason": reason + " (The original message was too large to keep whole "
                    "in a dead letter and was truncated.)",
                }
            )
            body = letter.model_dump(mode="json")
        self._send(poison_queue, body)
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


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
