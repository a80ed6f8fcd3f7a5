"""Status rows of custom jobs in ``PipelineJob`` (contract 4.1).

Activities run at least once, so every write is an idempotent upsert keyed by ``JobId``:
PostgreSQL and SQLite use ``INSERT ... ON CONFLICT DO UPDATE``, SQL Server a
``MERGE ... WITH (HOLDLOCK)`` (the lock hint closes the gap between MERGE's existence check
and its insert, in which two concurrent calls could otherwise both insert).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from sqlalchemy import ColumnElement, Insert, TextClause, bindparam, or_, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.elements import ClauseElement

from services.database import JOB_ID_LENGTH, check_supported_dialect, pipeline_job

__all__ = [
    "OUTCOME_STATUSES",
    "TERMINAL_STATUSES",
    "JobStatus",
    "OutcomeStatus",
    "PipelineJobStatusStore",
    "UpsertStatement",
    "mark_running_statement",
    "record_outcome_statement",
    "statements_for",
]

logger = logging.getLogger(__name__)

JobStatus = Literal["Running", "Succeeded", "Failed", "TimedOut"]
OutcomeStatus = Literal["Succeeded", "Failed", "TimedOut"]

# What the builders return: an INSERT ... ON CONFLICT, or the SQL Server MERGE as text.
UpsertStatement = Insert | TextClause

RUNNING: Final = "Running"
OUTCOME_STATUSES: Final[frozenset[str]] = frozenset(get_args(OutcomeStatus))
TERMINAL_STATUSES: Final[tuple[str, ...]] = ("Succeeded", "Failed", "TimedOut")


class PipelineJobStatusStore:
    """Writes the status of custom jobs to ``PipelineJob``."""

    def __init__(self, engine: Engine) -> None:
        check_supported_dialect(engine.dialect)
        self._engine = engine

    def mark_running(self, job_id: str, at: datetime) -> None:
        """Upsert the job's row with ``Status = 'Running'``, ``UpdatedAt = at``, no ``Error``.

        A row that already holds a final status (``Succeeded``, ``Failed``, ``TimedOut``) is
        left untouched: a late re-delivery of this step must not turn a finished job back into
        a running one.
        """
        statement = mark_running_statement(self._engine.dialect, job_id, at)
        with self._engine.begin() as connection:
            changed = connection.execute(statement).rowcount
        if changed == 0:
            logger.info("job %s already has a final status; left as it is", job_id)

    def record_outcome(
        self, job_id: str, status: OutcomeStatus, error: str | None, at: datetime
    ) -> None:
        """Upsert the job's final ``Status``, ``Error`` (``None`` clears it) and ``UpdatedAt``."""
        statement = record_outcome_statement(self._engine.dialect, job_id, status, error, at)
        with self._engine.begin() as connection:
            connection.execute(statement)


def mark_running_statement(dialect: Dialect, job_id: str, at: datetime) -> UpsertStatement:
    """The upsert :meth:`PipelineJobStatusStore.mark_running` runs on ``dialect``."""
    values: dict[str, Any] = {
        "JobId": _checked_job_id(job_id),
        "Status": RUNNING,
        "UpdatedAt": _checked(at),
        "Error": None,
    }
    return _upsert(dialect, values, keep_terminal=True)


def record_outcome_statement(
    dialect: Dialect, job_id: str, status: OutcomeStatus, error: str | None, at: datetime
) -> UpsertStatement:
    """The upsert :meth:`PipelineJobStatusStore.record_outcome` runs on ``dialect``."""
    if status not in OUTCOME_STATUSES:
        raise ValueError(f"status must be one of {sorted(OUTCOME_STATUSES)}, got {status!r}")
    if error is not None and not isinstance(error, str):
        raise TypeError(f"error must be a string or None, got {type(error).__name__}")
    values: dict[str, Any] = {
        "JobId": _checked_job_id(job_id),
        "Status": status,
        "UpdatedAt": _checked(at),
        "Error": error,
    }
    return _upsert(dialect, values, keep_terminal=False)


def statements_for(dialect: Dialect) -> list[tuple[str, ClauseElement]]:
    """Every statement this module runs, with example values, for compiling on ``dialect``."""
    at = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    return [
        ("job_status:mark_running", mark_running_statement(dialect, "job-1", at)),
        (
            "job_status:record_outcome",
            record_outcome_statement(dialect, "job-1", "Failed", "it broke", at),
        ),
    ]


def _upsert(dialect: Dialect, values: dict[str, Any], *, keep_terminal: bool) -> UpsertStatement:
    check_supported_dialect(dialect)
    if dialect.name == "mssql":
        return _mssql_merge(dialect, values, keep_terminal=keep_terminal)
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    statement = insert(pipeline_job).values(values)
    where: ColumnElement[bool] | None = None
    if keep_terminal:
        status = pipeline_job.c.Status
        where = or_(status.is_(None), status.not_in(TERMINAL_STATUSES))
    return statement.on_conflict_do_update(
        index_elements=[pipeline_job.c.JobId],
        set_={name: statement.excluded[name] for name in values if name != "JobId"},
        where=where,
    )


def _mssql_merge(
    dialect: Dialect, values: dict[str, Any], *, keep_terminal: bool
) -> UpsertStatement:
    # SQLAlchemy Core has no MERGE construct, so the text is assembled here; every identifier
    # comes from the Table and is quoted by the dialect, every value is a bound parameter.
    quote = dialect.identifier_preparer.quote_identifier
    table = dialect.identifier_preparer.format_table(pipeline_job)
    type_of = dialect.type_compiler_instance.process
    names = list(values)
    # Each value is CAST to its column's type so SQL Server never has to guess the type of a
    # parameter in the USING select (a NULL Error or a datetime would otherwise be ambiguous).
    source = ", ".join(
        f"CAST(:{name} AS {type_of(pipeline_job.c[name].type)}) AS {quote(name)}" for name in names
    )
    key = quote("JobId")
    updates = ", ".join(f"{quote(n)} = [source].{quote(n)}" for n in names if n != "JobId")
    matched = "WHEN MATCHED"
    if keep_terminal:
        status = quote("Status")
        terminal = ", ".join(f"'{s}'" for s in TERMINAL_STATUSES)
        matched += f" AND ([target].{status} IS NULL OR [target].{status} NOT IN ({terminal}))"
    # S608: the only interpolated text is dialect-quoted identifiers, column types and the
    # module's own status constants; all caller data travels as bound parameters.
    sql = (
        f"MERGE INTO {table} WITH (HOLDLOCK) AS [target] "  # noqa: S608
        f"USING (SELECT {source}) AS [source] "
        f"ON [target].{key} = [source].{key} "
        f"{matched} THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join(f'[source].{quote(n)}' for n in names)});"
    )
    return text(sql).bindparams(
        *(bindparam(name, values[name], type_=pipeline_job.c[name].type) for name in names)
    )


def _checked_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not 1 <= len(job_id) <= JOB_ID_LENGTH:
        raise ValueError(f"job_id must be a string of 1-{JOB_ID_LENGTH} characters")
    return job_id


def _checked(at: datetime) -> datetime:
    # Checked here as well as by the column type so the error names the argument up front,
    # before a connection is taken.
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")
    return at
