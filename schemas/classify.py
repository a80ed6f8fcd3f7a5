"""Pure classification of a pending queue message: custom job, default job, or rejection.

No I/O here: the queue trigger decodes the message, calls :func:`classify_pending` and acts
on the result.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.dead_letter import FieldError, field_errors
from schemas.pending import CustomJobRequest, DefaultJobRequest, JobRequest


@dataclass(frozen=True)
class Rejection:
    """Why a message cannot be used, with the field errors that say what to fix."""

    reason: str
    errors: list[FieldError] = field(default_factory=list)


class UndecodableMessageError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_message_text(body: bytes | str) -> Any:
    """The JSON value of a queue message that arrived plain or base64-encoded.

    Senders differ (the Storage SDK v12 sends plain text, Storage Explorer and the Functions
    output binding send base64), so both are accepted. Plain JSON is tried first: no JSON text
    is valid base64 of anything meaningful, and a valid base64 string is never a JSON object.
    """
    text = _utf8(body)
    try:
        return json.loads(text)
    except json.JSONDecodeError as plain_error:
        decoded = _base64_text(text)
        if decoded is None:
            raise UndecodableMessageError(
                f"The message is not JSON (neither plain nor base64-encoded): {plain_error.msg} "
                f"at line {plain_error.lineno} column {plain_error.colno}."
            ) from None
        try:
            return json.loads(decoded)
        except json.JSONDecodeError as error:
            raise UndecodableMessageError(
                f"The message is base64-encoded but its content is not JSON: {error.msg} "
                f"at line {error.lineno} column {error.colno}."
            ) from None


def _utf8(body: bytes | str) -> str:
    # A byte-order mark is legal at the start of UTF-8 text but not of JSON.
    if isinstance(body, str):
        return body.removeprefix("\ufeff")
    try:
        return body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise UndecodableMessageError(
            f"The message is not UTF-8 text (invalid byte at position {error.start})."
        ) from None


def _base64_text(text: str) -> str | None:
    compact = text.strip()
    if not compact or not compact.isascii():
        return None
    try:
        raw = base64.b64decode(compact, validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def classify_pending(body: bytes | str) -> JobRequest | Rejection:
    """Custom when the message validates against the custom schema, default when against the
    default schema, otherwise a rejection carrying the field errors of both."""
    try:
        value = decode_message_text(body)
    except UndecodableMessageError as error:
        return Rejection(reason=error.reason)
    if not isinstance(value, dict):
        return Rejection(
            reason=f"The message must be a JSON object, not a JSON {_json_type(value)}."
        )
    try:
        return CustomJobRequest.model_validate(value)
    except ValidationError as error:
        custom_errors = field_errors(error.errors(), prefix="custom")
    try:
        return DefaultJobRequest.model_validate(value)
    except ValidationError as error:
        default_errors = field_errors(error.errors(), prefix="default")
    return Rejection(
        reason=(
            "The message matches neither job schema. "
            f"As a custom job: {_summary(custom_errors)}. "
            f"As a default job: {_summary(default_errors)}."
        ),
        errors=custom_errors + default_errors,
    )


def _summary(errors: list[FieldError]) -> str:
    return "; ".join(f"{e.loc.partition('.')[2] or e.loc}: {e.msg}" for e in errors)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
