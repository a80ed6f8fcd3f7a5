"""De-activation of a user's ``UserData`` rows after a succeeded default job (contract 4.2).

Set-based: one ``UPDATE`` for all of the user's active rows, or one per chunk of ids when the
job names them. SQL Server accepts at most 2,100 parameters per request, so a long id list is
split into ``IN`` lists of ``chunk_size`` ids; all chunks commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Update, false, true, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.elements import ClauseElement

from services.database import USER_ID_LENGTH, check_supported_dialect, user_data

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "UserDataDeactivator",
    "deactivate_statements",
    "statements_for",
]

DEFAULT_CHUNK_SIZE: Final = 1000
# SQL Server's limit is 2,100 parameters; UserId and DeactivatedAt take two, the rest is margin.
MAX_CHUNK_SIZE: Final = 2000


class UserDataDeactivator:
    """Sets ``IsActive = false`` and ``DeactivatedAt`` on a user's active ``UserData`` rows."""

    def __init__(self, engine: Engine, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        check_supported_dialect(engine.dialect)
        _check_chunk_size(chunk_size)
        self._engine = engine
        self._chunk_size = chunk_size

    def deactivate(self, user_id: str, user_data_ids: Sequence[int] | None, at: datetime) -> int:
        """De-activate the user's active rows and return how many were de-activated.

        ``user_data_ids=None`` means all of the user's active rows; a sequence restricts the
        update to those ids (an empty one de-activates nothing). Rows that are already
        inactive or belong to another user are never touched, which also makes a repeated
        call return 0.
        """
        statements = deactivate_statements(user_id, user_data_ids, at, chunk_size=self._chunk_size)
        if not statements:
            return 0
        deactivated = 0
        with self._engine.begin() as connection:
            for statement in statements:
                deactivated += connection.execute(statement).rowcount
        return deactivated


def deactivate_statements(
    user_id: str,
    user_data_ids: Sequence[int] | None,
    at: datetime,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> list[Update]:
    """The ``UPDATE`` statements :meth:`UserDataDeactivator.deactivate` runs, in order."""
    _check_chunk_size(chunk_size)
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= USER_ID_LENGTH:
        raise ValueError(f"user_id must be a string of 1-{USER_ID_LENGTH} characters")
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")

    base = (
        update(user_data)
        .where(user_data.c.UserId == user_id, user_data.c.IsActive == true())
        .values({user_data.c.IsActive: false(), user_data.c.DeactivatedAt: at})
    )
    if user_data_ids is None:
        return [base]
    ids = _distinct_ids(user_data_ids)
    return [
        base.where(user_data.c.Id.in_(ids[start : start + chunk_size]))
        for start in range(0, len(ids), chunk_size)
    ]


def statements_for(
    dialect: Dialect, *, chunk_size: int = DEFAULT_CHUNK_SIZE, id_count: int = 10_000
) -> list[tuple[str, ClauseElement]]:
    """Every statement this module runs, with example values, for compiling on ``dialect``."""
    check_supported_dialect(dialect)
    at = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    named: list[tuple[str, ClauseElement]] = [
        ("user_data:deactivate_all", deactivate_statements("user-1", None, at)[0])
    ]
    chunks = deactivate_statements("user-1", range(1, id_count + 1), at, chunk_size=chunk_size)
    named.extend((f"user_data:deactivate_ids:{n}", s) for n, s in enumerate(chunks))
    return named


def _distinct_ids(user_data_ids: Sequence[int]) -> list[int]:
    for value in user_data_ids:
        # bool is an int subclass; True would silently mean Id 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"user_data_ids must hold integers, got {value!r}")
    # Distinct so no id is sent twice; sorted so chunks cover ascending id ranges, and two
    # overlapping de-activations take their chunks' row locks in the same order.
    return sorted(set(user_data_ids))


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be an integer from 1 to {MAX_CHUNK_SIZE}")
