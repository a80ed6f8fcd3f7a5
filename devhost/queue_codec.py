"""Queue message text <-> bytes, per host.json ``extensions.queues.messageEncoding``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import azure.functions as func


class MessageDecodeError(ValueError):
    """The message text is not in the configured encoding (never carries the text itself)."""


def decode_body(text: str, encoding: str) -> bytes:
    if encoding == "none":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MessageDecodeError(
            "the message is not valid base64; set extensions.queues.messageEncoding to 'none'"
            " in host.json if senders write plain text"
        ) from exc


def encode_body(body: bytes, encoding: str) -> str:
    if encoding == "none":
        return body.decode("utf-8")
    return base64.b64encode(body).decode("ascii")


def output_bodies(value: Any) -> list[bytes]:
    """What a queue output binding sends for a value the function set (one message per item)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [body for item in value for body in output_bodies(item)]
    if isinstance(value, func.QueueMessage):
        return [value.get_body()]
    if isinstance(value, bytes | bytearray):
        return [bytes(value)]
    if isinstance(value, str):
        return [value.encode("utf-8")]
    return [json.dumps(value).encode("utf-8")]
