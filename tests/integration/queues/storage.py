"""Reading and resetting the contract's six queues on a real Storage account (Azurite).

Messages are read *raw* (a QueueClient without a decode policy) and decoded by hand, so a test
sees exactly what a consumer of the queue gets: base64 text whose bytes are UTF-8 JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueServiceClient

# Spelled out, not imported from the app: these names are the contract (section 2).
CONTRACT_QUEUES = (
    "data-pipeline-job-pending",
    "data-pipeline-job-custom-start",
    "data-pipeline-job-default-start",
    "data-pipeline-job-finished",
    "data-pipeline-job-pending-poison",
    "data-pipeline-job-finished-poison",
)

# A queue message is at most 64 KiB (contract 2).
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawMessage:
    """One message as it sits on the queue."""

    text: str  # what the service stores: the base64 text
    payload: bytes  # the base64-decoded bytes
    body: Any  # the JSON value of the payload, decoded as strict UTF-8


def reset_queues(service: QueueServiceClient) -> None:
    """Make sure the six contract queues exist and hold no messages."""
    for name in CONTRACT_QUEUES:
        client = service.get_queue_client(name)
        with suppress(ResourceExistsError):
            client.create_queue()
        client.clear_messages()


def read_raw(service: QueueServiceClient, queue: str) -> list[RawMessage]:
    """Every message on ``queue`` (peeked, so they stay), decoded by hand."""
    client = service.get_queue_client(queue)  # no decode policy: the stored text as it is
    messages = []
    for message in client.peek_messages(max_messages=32):
        text = message.content
        assert isinstance(text, str)
        try:
            payload = base64.b64decode(text, validate=True)
        except binascii.Error as error:  # pragma: no cover - a failure message
            raise AssertionError(f"message on {queue} is not base64: {text[:80]!r}") from error
        body = json.loads(payload.decode("utf-8"))  # strict: must be UTF-8
        messages.append(RawMessage(text=text, payload=payload, body=body))
    return messages


def queue_contents(service: QueueServiceClient) -> dict[str, list[Any]]:
    """The JSON bodies on each of the six queues."""
    return {name: [m.body for m in read_raw(service, name)] for name in CONTRACT_QUEUES}


def only_message(service: QueueServiceClient, queue: str) -> RawMessage:
    """The single message on ``queue``, asserting that every other queue is empty."""
    contents = queue_contents(service)
    others = {name: bodies for name, bodies in contents.items() if name != queue and bodies}
    assert others == {}, f"unexpected messages on other queues: {others}"
    messages = read_raw(service, queue)
    assert len(messages) == 1, f"expected one message on {queue}, got {len(messages)}"
    return messages[0]


def assert_all_queues_empty(service: QueueServiceClient) -> None:
    contents = queue_contents(service)
    assert {name: bodies for name, bodies in contents.items() if bodies} == {}


def utc_z(value: str) -> bool:
    """An RFC 3339 timestamp in UTC with a ``Z`` suffix (and no other offset)."""
    if not isinstance(value, str) or not value.endswith("Z") or "+" in value:
        return False
    datetime.fromisoformat(value)  # raises when it is no timestamp at all
    return True
