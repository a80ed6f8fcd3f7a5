"""Real ``azure.functions`` inputs, built the way the Python worker builds them."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Coroutine
from typing import Any

import azure.functions as func
from azure.functions.meta import Datum
from azure.functions.queue import QueueMessageInConverter


def queue_message(
    body: bytes | str, *, dequeue_count: int = 1, datum_type: str = "bytes"
) -> func.QueueMessage:
    """A queue trigger's message as the worker hands it over (``messageEncoding: none``)."""
    value = body.encode("utf-8") if isinstance(body, str) and datum_type == "bytes" else body
    metadata = {
        "Id": Datum(str(uuid.uuid4()), "string"),
        "DequeueCount": Datum(dequeue_count, "int"),
        "InsertionTime": Datum("2026-12-04T10:00:00+00:00", "string"),
        "ExpirationTime": Datum("2026-12-11T10:00:00+00:00", "string"),
        "NextVisibleTime": Datum("2026-12-04T10:00:10+00:00", "string"),
        "PopReceipt": Datum("AgAAAAMAAAAAAAAA", "string"),
    }
    message = QueueMessageInConverter.decode(Datum(value, datum_type), trigger_metadata=metadata)
    assert isinstance(message, func.QueueMessage)
    return message


def b64(text: str) -> str:
    """How Storage Explorer and the Functions output binding send a message."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def http_get(path: str, job_id: str) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET",
        url=f"http://127.0.0.1:7071/api/{path}",
        route_params={"jobId": job_id},
        params={},
        headers={},
        body=b"",
    )


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)
