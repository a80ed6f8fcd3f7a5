"""The two tables of contract 4.3, the engine factory and table creation.

The platform owns ``PipelineJob`` and ``UserData``: the app works against the tables it finds
and only creates them when they are missing (a fresh local SQLite file, a new test database).
The same Core statements run on SQL Server (Azure SQL, ``mssql+pyodbc``), PostgreSQL and SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Unicode,
    UnicodeText,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.dialects import mssql, postgresql
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable, ExecutableDDLElement
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "JOB_ID_LENGTH",
    "STATUS_LENGTH",
    "SUPPORTED_DIALECTS",
    "USER_ID_LENGTH",
    "CompiledStatement",
    "SchemaMismatchError",
    "UtcDateTime",
    "check_supported_dialect",
    "compiled_statements_for",
    "create_database_engine",
    "ddl_statements",
    "ensure_tables",
    "metadata",
    "pipeline_job",
    "user_data",
]

logger = logging.getLogger(__name__)

JOB_ID_LENGTH = 100
STATUS_LENGTH = 20
USER_ID_LENGTH = 200

SUPPORTED_DIALECTS = frozenset({"mssql", "postgresql", "sqlite"})


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and always returned as an aware UTC ``datetime``.

    Bound values must be timezone-aware: a naive one is ambiguous and is refused rather than
    guessed at. SQL Server gets ``datetime2`` (the platform's column type; ``datetimeoffset``
    would not match it), PostgreSQL gets ``timestamptz``, SQLite stores naive UTC text. Values read
    back from columns without a zone (``datetime2``, SQLite, or a platform-made PostgreSQL
    ``timestamp``) are UTC by this convention and get ``tzinfo=UTC`` attached.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "mssql":
            # The mssql type classes are unannotated in SQLAlchemy.
            return dialect.type_descriptor(mssql.DATETIME2())  # type: ignore[no-untyped-call]
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
        utc = value.astimezone(UTC)
        # Only timestamptz understands an offset; elsewhere a zone would be dropped or, on
        # datetime2 through ODBC, rejected, so the UTC wall-clock time is what gets stored.
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

# Mixed-case names are quoted explicitly so PostgreSQL never folds them to lower case: the
# platform's tables are "PipelineJob"/"UserData", not pipelinejob/userdata.
pipeline_job = Table(
    "PipelineJob",
    metadata,
    Column("JobId", String(JOB_ID_LENGTH), primary_key=True, autoincrement=False, quote=True),
    Column("Status", String(STATUS_LENGTH), nullable=False, quote=True),
    Column("UpdatedAt", UtcDateTime(), nullable=False, quote=True),
    # NVARCHAR(max) on SQL Server: the pipeline's error text is free-form and may be non-ASCII,
    # and plain UnicodeText would compile to the deprecated NTEXT unless a connection has told
    # the dialect the server's version.
    Column(
        "Error",
        UnicodeText().with_variant(mssql.NVARCHAR(), "mssql"),
        nullable=True,
        quote=True,
    ),
    quote=True,
)

user_data = Table(
    "UserData",
    metadata,
    Column("Id", Integer, primary_key=True, quote=True),
    # NVARCHAR on SQL Server, so a non-ASCII user id is matched exactly instead of being
    # narrowed to the database's code page.
    Column("UserId", Unicode(USER_ID_LENGTH), nullable=False, quote=True),
    Column("IsActive", Boolean(create_constraint=False), nullable=False, quote=True),
    Column("DeactivatedAt", UtcDateTime(), nullable=True, quote=True),
    Index("IX_UserData_UserId", "UserId", quote=True),
    quote=True,
)


class SchemaMismatchError(RuntimeError):
    """An existing table cannot be used by the app (a column it needs is missing, ...)."""


def create_database_engine(url: str | URL, **overrides: Any) -> Engine:
    """Build the process-wide engine for ``DATABASE_URL``.

    ``overrides`` go to :func:`sqlalchemy.create_engine` last, for callers that know better
    (e.g. a different pool size).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    connect_args: dict[str, Any] = {}

    if backend == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in database
        is_uri = str(parsed.query.get("uri", "")).lower() in ("true", "1")
        if not in_memory and not is_uri:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Activities run on worker threads, and the pooled connection of one may be checked
        # out by another: sqlite3's same-thread check would refuse that.
        connect_args["check_same_thread"] = False
        # Writers from parallel activities wait for the file lock instead of failing at once
        # with "database is locked".
        connect_args["timeout"] = 30
        if in_memory:
            # One shared connection, or every thread would see its own empty database.
            kwargs["poolclass"] = StaticPool
    elif backend in ("mssql", "postgresql"):
        # Azure SQL's gateway and most cloud PostgreSQL proxies drop idle connections after
        # ~30 minutes; recycling earlier avoids a failed first statement after a quiet spell.
        kwargs["pool_recycle"] = 1800
        kwargs["pool_size"] = 5
        kwargs["max_overflow"] = 10
        if parsed.get_driver_name() == "pyodbc":
            # Only executemany() uses it (bulk inserts, e.g. seeding UserData); the services'
            # own statements are single executions and unaffected.
            kwargs["fast_executemany"] = True

    if connect_args:
        kwargs["connect_args"] = connect_args
    kwargs.update(overrides)
    engine = create_engine(parsed, **kwargs)

    if backend == "postgresql":
        event.listen(engine, "connect", _set_postgresql_session_utc)
    return engine


def _set_postgresql_session_utc(dbapi_connection: Any, _connection_record: Any) -> None:
    # A platform-made ``timestamp`` (without time zone) column receives our aware UTC values
    # through a cast that uses the session time zone; pinning the session to UTC makes the
    # stored wall-clock time UTC whatever the server's default zone is. SET is transactional in
    # PostgreSQL, so it runs in autocommit mode to survive the pool's rollback on check-in.
    previous = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET TIME ZONE 'UTC'")
        finally:
            cursor.close()
    finally:
        dbapi_connection.autocommit = previous


def ensure_tables(engine: Engine) -> None:
    """Create ``PipelineJob`` and ``UserData`` (with the ``UserId`` index) where missing.

    Existing tables are never altered: extra columns, other indexes and rows stay as they are.
    An existing table that lacks a column the app writes is reported with
    :class:`SchemaMismatchError`, so a wrong database fails at start-up, not mid-job.
    """
    check_supported_dialect(engine.dialect)
    for table in metadata.sorted_tables:
        if not _find_existing(engine, table):
            try:
                with engine.begin() as connection:
                    table.create(connection, checkfirst=False)
                logger.info("created table %s", table.name)
            except DBAPIError:
                # Several workers may start on an empty database at once; losing that race
                # is fine as long as the table is there now.
                if not _find_existing(engine, table):
                    raise
                logger.info("table %s was created concurrently", table.name)
        _check_columns(engine, table)


def _find_existing(engine: Engine, table: Table) -> bool:
    inspector = inspect(engine)
    if inspector.has_table(table.name, schema=table.schema):
        return True
    names = inspector.get_table_names(schema=table.schema)
    if table.name in names:  # created by another worker since has_table() looked
        return True
    folded = [name for name in names if _fold(name) == _fold(table.name)]
    if folded:
        # PostgreSQL folds unquoted names to lower case, so a table made with an unquoted
        # CREATE TABLE PipelineJob is "pipelinejob": creating "PipelineJob" beside it would
        # silently split the data across two tables.
        raise SchemaMismatchError(
            f"found table {folded[0]!r} but the app uses {table.name!r} (case-sensitive on "
            f"{engine.dialect.name}); rename it or recreate it with a quoted name"
        )
    return False


def _check_columns(engine: Engine, table: Table) -> None:
    existing = [column["name"] for column in inspect(engine).get_columns(table.name, table.schema)]
    # Only PostgreSQL distinguishes "IsActive" from isactive; SQL Server's usual collations
    # and SQLite match column names case-insensitively.
    if engine.dialect.name == "postgresql":
        missing = [c.name for c in table.columns if c.name not in existing]
    else:
        lowered = {_fold(name) for name in existing}
        missing = [c.name for c in table.columns if _fold(c.name) not in lowered]
    if missing:
        raise SchemaMismatchError(
            f"table {table.name!r} exists but lacks column(s) {', '.join(missing)}"
        )


def _fold(name: str) -> str:
    # str.lower itself: a quoted_name (every name in this metadata, quote=True) overrides
    # .lower() to return the name unchanged.
    return str.lower(name)


def check_supported_dialect(dialect: Dialect) -> None:
    """Refuse a dialect the services have no statements for, naming the supported ones."""
    if dialect.name not in SUPPORTED_DIALECTS:
        raise NotImplementedError(
            f"database dialect {dialect.name!r} is not supported; "
            f"use one of {', '.join(sorted(SUPPORTED_DIALECTS))}"
        )


def ddl_statements() -> list[ExecutableDDLElement]:
    """The DDL that :func:`ensure_tables` runs for tables that are missing."""
    statements: list[ExecutableDDLElement] = []
    for table in metadata.sorted_tables:
        statements.append(CreateTable(table))
        statements.extend(CreateIndex(index) for index in sorted(table.indexes, key=_index_name))
    return statements


def _index_name(index: Index) -> str:
    return str(index.name)


@dataclass(frozen=True)
class CompiledStatement:
    """One statement the database layer runs, compiled for a given dialect."""

    name: str
    sql: str
    params: Mapping[str, Any]
    positional: tuple[Any, ...] | None

    @property
    def parameter_count(self) -> int:
        """Bound parameters the driver receives (what SQL Server's 2,100 limit counts)."""
        if self.positional is not None:
            return len(self.positional)
        return len(self.params)


def compiled_statements_for(
    dialect: Dialect,
    *,
    chunk_size: int = 1000,
    id_count: int = 10_000,
) -> list[CompiledStatement]:
    """Compile every statement the services run, with representative values, for ``dialect``.

    It lets the SQL Server text be checked where no SQL Server runs: DDL, the status upserts
    and the chunked de-activation of ``id_count`` ids plus the all-rows variant. The SQL keeps
    its placeholders, expanded per element, so parameter counts are the ones the driver sees.
    """
    # Imported here because both service modules import this one.
    from services.job_status import statements_for as job_status_statements
    from services.user_data import statements_for as user_data_statements

    named: list[tuple[str, ClauseElement]] = [
        (f"ddl:{_ddl_name(statement)}", statement) for statement in ddl_statements()
    ]
    named.extend(job_status_statements(dialect))
    named.extend(user_data_statements(dialect, chunk_size=chunk_size, id_count=id_count))
    return [_compile(name, statement, dialect) for name, statement in named]


def _ddl_name(statement: ExecutableDDLElement) -> str:
    target = getattr(statement, "element", None)
    label = target.name if isinstance(target, Table | Index) else str(target)
    return f"{type(statement).__name__}:{label}"


def _compile(name: str, statement: ClauseElement, dialect: Dialect) -> CompiledStatement:
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    # DDL compilers have neither parameters nor a positional order.
    params: dict[str, Any] = dict(compiled.params or {})
    order = getattr(compiled, "positiontup", None)
    positional = None if order is None else tuple(params[key] for key in order)
    return CompiledStatement(name=name, sql=str(compiled), params=params, positional=positional)
