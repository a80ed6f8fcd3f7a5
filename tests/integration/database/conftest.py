"""Fixtures shared by the database tests: engines with the app's tables, and small helpers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from services.database import create_database_engine, ensure_tables, pipeline_job, user_data


@pytest.fixture
def engine(database_engine: Engine) -> Engine:
    """A fresh database of each backend with the app's tables created by ``ensure_tables``."""
    ensure_tables(database_engine)
    return database_engine


@pytest.fixture
def postgres_engine(postgres_database_url: str) -> Iterator[Engine]:
    """For PostgreSQL-only behaviour (case-sensitive names, session time zone)."""
    engine = create_database_engine(postgres_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass(frozen=True)
class JobRow:
    job_id: str
    status: str
    updated_at: datetime
    error: str | None


@dataclass(frozen=True)
class UserRow:
    id: int
    user_id: str
    is_active: bool
    deactivated_at: datetime | None


def job_rows(engine: Engine) -> list[JobRow]:
    with engine.connect() as connection:
        rows = connection.execute(select(pipeline_job).order_by(pipeline_job.c.JobId)).all()
    return [JobRow(r.JobId, r.Status, r.UpdatedAt, r.Error) for r in rows]


def job_row(engine: Engine, job_id: str) -> JobRow:
    matches = [row for row in job_rows(engine) if row.job_id == job_id]
    assert len(matches) == 1, f"expected one row for {job_id}, got {matches}"
    return matches[0]


def user_rows(engine: Engine) -> dict[int, UserRow]:
    with engine.connect() as connection:
        rows = connection.execute(select(user_data).order_by(user_data.c.Id)).all()
    return {r.Id: UserRow(r.Id, r.UserId, r.IsActive, r.DeactivatedAt) for r in rows}


def seed_users(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``UserData`` rows (keys ``Id``, ``UserId``, ``IsActive``, ``DeactivatedAt``)."""
    full = [{"DeactivatedAt": None, **row} for row in rows]
    with engine.begin() as connection:
        connection.execute(insert(user_data), full)
