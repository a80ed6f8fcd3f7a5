"""The SQL the services send to SQL Server, compiled with the real mssql+pyodbc dialect.

No SQL Server runs here, so every statement is compiled for ``mssql`` and its text checked:
bracket quoting, DATETIME2, the MERGE upsert and the parameter counts of the chunked UPDATEs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from services.database import (
    CompiledStatement,
    UtcDateTime,
    compiled_statements_for,
    create_database_engine,
)
from services.job_status import mark_running_statement
from services.user_data import MAX_CHUNK_SIZE, deactivate_statements

SQL_SERVER_PARAMETER_LIMIT = 2100
AZURE_SQL_URL = (
    "mssql+pyodbc://app:secret@example.database.windows.net:1433/pipeline"
    "?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes"
)


def test_pyodbc_imports() -> None:
    import pyodbc

    assert pyodbc.version


@pytest.fixture(scope="module")
def mssql_engine() -> Engine:
    # Creating the engine loads pyodbc and the real dialect but opens no connection.
    return create_database_engine(AZURE_SQL_URL)


@pytest.fixture(scope="module")
def statements(mssql_engine: Engine) -> dict[str, CompiledStatement]:
    compiled = compiled_statements_for(mssql_engine.dialect)
    return {statement.name: statement for statement in compiled}


def test_the_engine_uses_pyodbc_with_fast_executemany(mssql_engine: Engine) -> None:
    assert mssql_engine.dialect.driver == "pyodbc"
    assert mssql_engine.dialect.paramstyle == "qmark"
    assert mssql_engine.dialect.fast_executemany is True  # type: ignore[attr-defined]
    assert mssql_engine.pool._pre_ping is True
    assert mssql_engine.pool._recycle == 1800


def test_every_statement_is_listed(statements: dict[str, CompiledStatement]) -> None:
    assert sorted(statements) == sorted(
        [
            "ddl:CreateTable:PipelineJob",
            "ddl:CreateTable:UserData",
            "ddl:CreateIndex:IX_UserData_UserId",
            "job_status:mark_running",
            "job_status:record_outcome",
            "user_data:deactivate_all",
            *(f"user_data:deactivate_ids:{n}" for n in range(10)),
        ]
    )


def test_identifiers_are_bracket_quoted(statements: dict[str, CompiledStatement]) -> None:
    for statement in statements.values():
        assert '"' not in statement.sql, statement.name
        for name in ("PipelineJob", "UserData", "JobId", "UserId", "IsActive"):
            bare = re.search(rf"(?<![\[\w]){name}(?![\]\w])", statement.sql)
            assert bare is None, (statement.name, name)


def _squash(sql: str) -> str:
    return " ".join(sql.split())


def test_create_table_statements(statements: dict[str, CompiledStatement]) -> None:
    assert _squash(statements["ddl:CreateTable:PipelineJob"].sql) == (
        "CREATE TABLE [PipelineJob] ( [JobId] VARCHAR(100) NOT NULL, "
        "[Status] VARCHAR(20) NOT NULL, [UpdatedAt] DATETIME2 NOT NULL, "
        "[Error] NVARCHAR(max) NULL, PRIMARY KEY ([JobId]) )"
    )
    assert _squash(statements["ddl:CreateTable:UserData"].sql) == (
        "CREATE TABLE [UserData] ( [Id] INTEGER NOT NULL IDENTITY, "
        "[UserId] NVARCHAR(200) NOT NULL, [IsActive] BIT NOT NULL, "
        "[DeactivatedAt] DATETIME2 NULL, PRIMARY KEY ([Id]) )"
    )
    assert statements["ddl:CreateIndex:IX_UserData_UserId"].sql == (
        "CREATE INDEX [IX_UserData_UserId] ON [UserData] ([UserId])"
    )


_MERGE_HEAD = (
    "MERGE INTO [PipelineJob] WITH (HOLDLOCK) AS [target] USING (SELECT "
    "CAST(? AS VARCHAR(100)) AS [JobId], CAST(? AS VARCHAR(20)) AS [Status], "
    "CAST(? AS DATETIME2) AS [UpdatedAt], CAST(? AS NVARCHAR(max)) AS [Error]) AS [source] "
    "ON [target].[JobId] = [source].[JobId] "
)
_MERGE_TAIL = (
    "THEN UPDATE SET [Status] = [source].[Status], [UpdatedAt] = [source].[UpdatedAt], "
    "[Error] = [source].[Error] "
    "WHEN NOT MATCHED THEN INSERT ([JobId], [Status], [UpdatedAt], [Error]) "
    "VALUES ([source].[JobId], [source].[Status], [source].[UpdatedAt], [source].[Error]);"
)


def test_mark_running_is_a_merge_that_keeps_final_statuses(
    statements: dict[str, CompiledStatement],
) -> None:
    statement = statements["job_status:mark_running"]
    assert statement.sql == (
        _MERGE_HEAD + "WHEN MATCHED AND ([target].[Status] IS NULL OR [target].[Status] "
        "NOT IN ('Succeeded', 'Failed', 'TimedOut')) " + _MERGE_TAIL
    )
    assert statement.positional == (
        "job-1",
        "Running",
        datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        None,
    )


def test_record_outcome_is_an_unconditional_merge(
    statements: dict[str, CompiledStatement],
) -> None:
    statement = statements["job_status:record_outcome"]
    assert statement.sql == _MERGE_HEAD + "WHEN MATCHED " + _MERGE_TAIL
    assert statement.positional == (
        "job-1",
        "Failed",
        datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        "it broke",
    )


_UPDATE = (
    "UPDATE [UserData] SET [IsActive]=0, [DeactivatedAt]=? "
    "WHERE [UserData].[UserId] = ? AND [UserData].[IsActive] = 1"
)


def test_deactivate_all_is_one_update(statements: dict[str, CompiledStatement]) -> None:
    statement = statements["user_data:deactivate_all"]
    assert statement.sql == _UPDATE
    assert statement.positional == (datetime(2026, 12, 4, 10, 0, tzinfo=UTC), "user-1")


def test_ten_thousand_ids_make_ten_updates_under_the_parameter_limit(
    statements: dict[str, CompiledStatement],
) -> None:
    chunks = [statements[f"user_data:deactivate_ids:{n}"] for n in range(10)]
    seen: list[int] = []
    for chunk in chunks:
        assert chunk.sql == _UPDATE + " AND [UserData].[Id] IN (" + ", ".join(["?"] * 1000) + ")"
        assert chunk.parameter_count == 1002
        assert chunk.positional is not None
        seen.extend(chunk.positional[2:])
    assert seen == list(range(1, 10_001))
    assert all(s.parameter_count < SQL_SERVER_PARAMETER_LIMIT for s in statements.values())


def test_the_largest_allowed_chunk_still_fits(mssql_engine: Engine) -> None:
    largest = compiled_statements_for(
        mssql_engine.dialect, chunk_size=MAX_CHUNK_SIZE, id_count=MAX_CHUNK_SIZE
    )
    chunk = next(s for s in largest if s.name == "user_data:deactivate_ids:0")
    assert chunk.parameter_count == MAX_CHUNK_SIZE + 2 < SQL_SERVER_PARAMETER_LIMIT
    with pytest.raises(ValueError, match="chunk_size"):
        deactivate_statements("u", [1], datetime.now(UTC), chunk_size=MAX_CHUNK_SIZE + 1)


def test_datetime2_receives_the_utc_wall_clock_time(mssql_engine: Engine) -> None:
    at = datetime(2026, 12, 4, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    dialect = mssql_engine.dialect

    # What pyodbc is handed: naive, in UTC (datetime2 has no offset to carry).
    assert UtcDateTime().process_bind_param(at, dialect) == datetime(2026, 12, 4, 10, 0, 0, 123456)
    literal = mark_running_statement(dialect, "job-1", at).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True}
    )
    assert "CAST('2026-12-04 10:00:00.123456' AS DATETIME2) AS [UpdatedAt]" in str(literal)
    # Read back from datetime2 (naive), the value is UTC again.
    assert UtcDateTime().process_result_value(datetime(2026, 12, 4, 10, 0), dialect) == datetime(
        2026, 12, 4, 10, 0, tzinfo=UTC
    )
