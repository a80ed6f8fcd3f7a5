"""ensure_tables and create_database_engine against real PostgreSQL and SQLite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from services.database import SchemaMismatchError, create_database_engine, ensure_tables
from services.job_status import PipelineJobStatusStore
from services.user_data import UserDataDeactivator

from .conftest import job_row, user_rows

AT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def _columns(engine: Engine, table: str) -> list[str]:
    return [column["name"] for column in inspect(engine).get_columns(table)]


def _indexes(engine: Engine, table: str) -> list[tuple[str | None, list[Any]]]:
    return sorted(
        (index["name"], list(index["column_names"])) for index in inspect(engine).get_indexes(table)
    )


def test_ensure_tables_creates_the_contract_tables(database_engine: Engine) -> None:
    ensure_tables(database_engine)

    inspector = inspect(database_engine)
    assert {"PipelineJob", "UserData"} <= set(inspector.get_table_names())
    assert _columns(database_engine, "PipelineJob") == ["JobId", "Status", "UpdatedAt", "Error"]
    assert _columns(database_engine, "UserData") == ["Id", "UserId", "IsActive", "DeactivatedAt"]
    assert inspector.get_pk_constraint("PipelineJob")["constrained_columns"] == ["JobId"]
    assert inspector.get_pk_constraint("UserData")["constrained_columns"] == ["Id"]
    assert _indexes(database_engine, "UserData") == [("IX_UserData_UserId", ["UserId"])]
    nullable = {c["name"]: c["nullable"] for c in inspector.get_columns("PipelineJob")}
    assert nullable == {"JobId": False, "Status": False, "UpdatedAt": False, "Error": True}


def test_postgresql_tables_use_the_quoted_mixed_case_names(postgres_engine: Engine) -> None:
    ensure_tables(postgres_engine)

    with postgres_engine.connect() as connection:
        names = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        assert sorted(names) == ["PipelineJob", "UserData"]
        kinds = {
            name: kind
            for name, kind in connection.execute(
                text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'PipelineJob'"
                )
            )
        }
    assert kinds["UpdatedAt"] == "timestamp with time zone"


def test_ensure_tables_twice_is_harmless(database_engine: Engine) -> None:
    ensure_tables(database_engine)
    PipelineJobStatusStore(database_engine).mark_running("job-1", AT)
    tables = sorted(inspect(database_engine).get_table_names())

    ensure_tables(database_engine)

    assert sorted(inspect(database_engine).get_table_names()) == tables
    assert job_row(database_engine, "job-1").status == "Running"


def test_concurrent_ensure_tables_on_an_empty_database(database_url: str) -> None:
    # Several workers may start on an empty database at once; every one must come up.
    engines = [create_database_engine(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            barrier.wait(timeout=30)
            ensure_tables(engine)
        except BaseException as error:  # re-raised by the test thread below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert {"PipelineJob", "UserData"} <= set(inspect(engines[0]).get_table_names())
    finally:
        for engine in engines:
            engine.dispose()


# Tables as the platform might have made them: extra columns (with defaults the app never
# sets), a naive timestamp type, an index of its own and no index on UserId.
_PLATFORM_DDL = {
    "postgresql": [
        'CREATE TABLE "PipelineJob" ("JobId" varchar(100) PRIMARY KEY, '
        '"Status" varchar(20) NOT NULL, "UpdatedAt" timestamp NOT NULL, "Error" text, '
        '"RequestedBy" varchar(200) NOT NULL DEFAULT \'platform-api\', "Attempt" integer)',
        'CREATE TABLE "UserData" ("Id" integer PRIMARY KEY, "UserId" varchar(200) NOT NULL, '
        '"IsActive" boolean NOT NULL, "DeactivatedAt" timestamp, "Payload" text, '
        "\"Region\" varchar(20) NOT NULL DEFAULT 'eu')",
        'CREATE INDEX "IX_Platform_Region" ON "UserData" ("Region")',
    ],
    "sqlite": [
        'CREATE TABLE "PipelineJob" ("JobId" varchar(100) PRIMARY KEY, '
        '"Status" varchar(20) NOT NULL, "UpdatedAt" datetime NOT NULL, "Error" text, '
        '"RequestedBy" varchar(200) NOT NULL DEFAULT \'platform-api\', "Attempt" integer)',
        'CREATE TABLE "UserData" ("Id" integer PRIMARY KEY, "UserId" varchar(200) NOT NULL, '
        '"IsActive" boolean NOT NULL, "DeactivatedAt" datetime, "Payload" text, '
        "\"Region\" varchar(20) NOT NULL DEFAULT 'eu')",
        'CREATE INDEX "IX_Platform_Region" ON "UserData" ("Region")',
    ],
}

_PLATFORM_ROWS = [
    'INSERT INTO "PipelineJob" ("JobId", "Status", "UpdatedAt", "Error", '
    "\"RequestedBy\", \"Attempt\") VALUES ('old-job', 'Succeeded', '2025-05-01 12:00:00', "
    "NULL, 'someone', 3)",
    'INSERT INTO "UserData" ("Id", "UserId", "IsActive", "Payload", "Region") '
    "VALUES (1, 'alice', true, 'p1', 'us'), (2, 'alice', true, 'p2', 'us'), "
    "(3, 'bob', true, 'p3', 'us')",
]


def _create_platform_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        for statement in _PLATFORM_DDL[engine.dialect.name] + _PLATFORM_ROWS:
            connection.execute(text(statement))


def _extras(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            "jobs": [
                tuple(r)
                for r in connection.execute(
                    text('SELECT "JobId", "RequestedBy", "Attempt" FROM "PipelineJob" ORDER BY 1')
                )
            ],
            "users": [
                tuple(r)
                for r in connection.execute(
                    text('SELECT "Id", "Payload", "Region" FROM "UserData" ORDER BY 1')
                )
            ],
        }


def test_existing_platform_tables_are_used_as_they_are(database_engine: Engine) -> None:
    _create_platform_tables(database_engine)
    columns = {t: _columns(database_engine, t) for t in ("PipelineJob", "UserData")}
    indexes = _indexes(database_engine, "UserData")

    ensure_tables(database_engine)
    ensure_tables(database_engine)

    # Nothing was added, dropped or re-created.
    assert {t: _columns(database_engine, t) for t in columns} == columns
    assert _indexes(database_engine, "UserData") == indexes
    assert _extras(database_engine) == {
        "jobs": [("old-job", "someone", 3)],
        "users": [(1, "p1", "us"), (2, "p2", "us"), (3, "p3", "us")],
    }

    store = PipelineJobStatusStore(database_engine)
    store.mark_running("new-job", AT)
    store.record_outcome("old-job", "Failed", "re-run failed", AT)
    assert UserDataDeactivator(database_engine).deactivate("alice", None, AT) == 2

    assert job_row(database_engine, "new-job").status == "Running"
    old = job_row(database_engine, "old-job")
    assert (old.status, old.error, old.updated_at) == ("Failed", "re-run failed", AT)
    rows = user_rows(database_engine)
    assert [(rows[i].is_active, rows[i].deactivated_at) for i in (1, 2, 3)] == [
        (False, AT),
        (False, AT),
        (True, None),
    ]
    # The platform's columns keep their values, and a new row gets the platform's defaults.
    assert _extras(database_engine) == {
        "jobs": [("new-job", "platform-api", None), ("old-job", "someone", 3)],
        "users": [(1, "p1", "us"), (2, "p2", "us"), (3, "p3", "us")],
    }


def test_a_table_missing_a_needed_column_is_reported(database_engine: Engine) -> None:
    with database_engine.begin() as connection:
        connection.execute(
            text('CREATE TABLE "UserData" ("Id" integer PRIMARY KEY, "UserId" varchar(200))')
        )

    with pytest.raises(SchemaMismatchError, match=r"UserData.*IsActive, DeactivatedAt"):
        ensure_tables(database_engine)


def test_postgresql_table_with_a_folded_name_is_reported(postgres_engine: Engine) -> None:
    # Unquoted, PostgreSQL folds the name to pipelinejob: a different table from "PipelineJob".
    with postgres_engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE PipelineJob (JobId varchar(100) PRIMARY KEY, Status varchar(20), "
                "UpdatedAt timestamptz, Error text)"
            )
        )

    with pytest.raises(SchemaMismatchError, match="pipelinejob"):
        ensure_tables(postgres_engine)
    assert "PipelineJob" not in inspect(postgres_engine).get_table_names()


def test_postgresql_naive_timestamp_column_gets_utc_whatever_the_server_zone(
    postgres_database_url: str,
) -> None:
    # A platform-made "timestamp" column on a server whose default zone is not UTC.
    url = make_url(postgres_database_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE \"{url.database}\" SET timezone TO 'America/New_York'")
        admin.execute(
            'CREATE TABLE "PipelineJob" ("JobId" varchar(100) PRIMARY KEY, '
            '"Status" varchar(20) NOT NULL, "UpdatedAt" timestamp NOT NULL, "Error" text)'
        )
    engine = create_database_engine(postgres_database_url)
    try:
        ensure_tables(engine)
        PipelineJobStatusStore(engine).mark_running("job-1", AT)
        assert job_row(engine, "job-1").updated_at == AT
    finally:
        engine.dispose()

    with psycopg.connect(dsn) as reader:
        stored = reader.execute('SELECT "UpdatedAt"::text FROM "PipelineJob"').fetchone()
    assert stored == ("2026-12-04 10:00:00",)


def test_sqlite_engine_creates_the_folder_and_works_across_threads(sqlite_url: str) -> None:
    folder = Path(make_url(sqlite_url).database or "").parent
    assert not folder.exists()

    engine = create_database_engine(sqlite_url)
    try:
        assert folder.is_dir()
        ensure_tables(engine)
        store = PipelineJobStatusStore(engine)
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                store.mark_running(f"job-{n}", AT)
            except BaseException as error:  # re-raised by the test thread below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        with engine.connect() as connection:
            count = connection.execute(text('SELECT count(*) FROM "PipelineJob"')).scalar()
        assert count == 8
    finally:
        engine.dispose()


def test_in_memory_sqlite_is_one_database_for_all_threads() -> None:
    engine = create_database_engine("sqlite://")
    try:
        ensure_tables(engine)
        done = threading.Event()

        def work() -> None:
            PipelineJobStatusStore(engine).mark_running("from-a-thread", AT)
            done.set()

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(timeout=30)
        assert done.is_set()
        assert job_row(engine, "from-a-thread").status == "Running"
    finally:
        engine.dispose()


def test_engines_check_connections_before_use(database_engine: Engine) -> None:
    assert database_engine.pool._pre_ping is True
