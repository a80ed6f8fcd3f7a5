"""Dead letters written to the ``-poison`` queues (contract 3.6)."""

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict
from pydantic_core import ErrorDetails

from schemas.fields import UtcTimestamp


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid", title="FieldError")

    loc: str
    msg: str


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", title="DeadLetter")

    reason: str
    errors: list[FieldError]
    original: str
    queue: str
    deadLetteredAt: UtcTimestamp


def field_errors(errors: Iterable[ErrorDetails], prefix: str = "") -> list[FieldError]:
    """Pydantic's errors without the offending input values (they may hold secrets)."""
    return [
        FieldError(
            loc=format_loc(prefix, error["loc"]), msg=error["msg"].removeprefix("Value error, ")
        )
        for error in errors
    ]


def format_loc(prefix: str, loc: Sequence[int | str]) -> str:
    """``custom.userDataIds[3]``-style paths; the bare prefix when the whole message is at fault."""
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(message)"
