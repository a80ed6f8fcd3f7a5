"""Field types shared by several messages: the job id and RFC 3339 timestamps."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainSerializer

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"

_JOB_ID = re.compile(JOB_ID_PATTERN)


def _check_job_id(value: str) -> str:
    if not _JOB_ID.fullmatch(value):
        raise ValueError(
            "must be 1-100 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit"
        )
    return value


JobId = Annotated[
    str,
    AfterValidator(_check_job_id),
    Field(
        json_schema_extra={"pattern": JOB_ID_PATTERN, "minLength": 1, "maxLength": 100},
        description="1-100 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit.",
    ),
]

# RFC 3339 demands a date, a time and an offset; pydantic alone would also take
# numbers (epoch seconds) and dates without a time, which the contract does not allow.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _require_rfc3339_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-12-04T10:00:00Z")
    return value


def to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """UTC with a ``Z`` suffix, as every outgoing timestamp is written."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_require_rfc3339_text),
    AfterValidator(to_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
    Field(
        description="RFC 3339 timestamp with an offset; written back in UTC with a Z suffix.",
        # The serializer returns str, which alone would drop the format from output schemas.
        json_schema_extra={"format": "date-time"},
    ),
]
