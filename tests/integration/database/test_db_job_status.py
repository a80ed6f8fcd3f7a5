"""PipelineJobStatusStore against real PostgreSQL and SQLite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.dialects import mysql

from services.database import pipeline_job
from services.job_status import PipelineJobStatusStore, mark_running_statement

from .conftest import job_row, job_rows

T0 = datetime(2026, 12, 4, 10, 0, 0, 123456, tzinfo=UTC)


def test_mark_running_inserts_a_running_row(engine: Engine) -> None:
    PipelineJobStatusStore(engine).mark_running("job-1", T0)

    row = job_row(engine, "job-1")
    assert (row.status, row.updated_at, row.error) == ("Running", T0, None)


def test_mark_running_twice_is_idempotent(engine: Engine) -> None:
    store = PipelineJobStatusStore(engine)
    store.mark_running("job-1", T0)
    store.mark_running("job-1", T0)

    assert [(r.job_id, r.status, r.updated_at) for r in job_rows(engine)] == [
        ("job-1", "Running", T0)
    ]


@pytest.mark.parametrize("status", ["Succeeded", "Failed", "TimedOut"])
def test_record_outcome_updates_status_error_and_moves_updated_at(
    engine: Engine, status: str
) -> None:
    store = PipelineJobStatusStore(engine)
    store.mark_running("job-1", T0)
    later = T0 + timedelta(minutes=5)

    store.record_outcome("job-1", status, "disk full", later)  # type: ignore[arg-type]

    row = job_row(engine, "job-1")
    assert (row.status, row.error, row.updated_at) == (status, "disk full", later)


def test_record_outcome_without_a_running_row_inserts_it(engine: Engine) -> None:
    PipelineJobStatusStore(engine).record_outcome("job-9", "TimedOut", None, T0)

    row = job_row(engine, "job-9")
    assert (row.status, row.error, row.updated_at) == ("TimedOut", None, T0)


def test_record_outcome_redelivered_is_idempotent(engine: Engine) -> None:
    store = PipelineJobStatusStore(engine)
    store.mark_running("job-1", T0)
    at = T0 + timedelta(seconds=30)
    store.record_outcome("job-1", "Failed", "boom", at)
    store.record_outcome("job-1", "Failed", "boom", at)

    assert job_rows(engine) == [job_row(engine, "job-1")]
    row = job_row(engine, "job-1")
    assert (row.status, row.error, row.updated_at) == ("Failed", "boom", at)


def test_record_outcome_without_error_clears_a_previous_error(engine: Engine) -> None:
    store = PipelineJobStatusStore(engine)
    store.record_outcome("job-1", "Failed", "first attempt failed", T0)
    store.record_outcome("job-1", "Succeeded", None, T0 + timedelta(seconds=1))

    row = job_row(engine, "job-1")
    assert (row.status, row.error) == ("Succeeded", None)


def test_error_text_round_trips_unchanged(engine: Engine) -> None:
    error = "Fehler: Datei “x” nicht gefunden ✗\n" + "x" * 3990
    PipelineJobStatusStore(engine).record_outcome("job-1", "Failed", error, T0)

    assert job_row(engine, "job-1").error == error


def test_late_mark_running_keeps_a_final_status_and_its_error(engine: Engine) -> None:
    # At-least-once delivery: the "running" step may be replayed after the outcome is written.
    store = PipelineJobStatusStore(engine)
    store.mark_running("job-1", T0)
    finished = T0 + timedelta(minutes=1)
    store.record_outcome("job-1", "Failed", "boom", finished)

    store.mark_running("job-1", T0)
    store.mark_running("job-1", T0 + timedelta(minutes=2))

    row = job_row(engine, "job-1")
    assert (row.status, row.error, row.updated_at) == ("Failed", "boom", finished)


def test_mark_running_takes_over_a_row_the_platform_created(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(pipeline_job).values(
                JobId="job-1", Status="Queued", UpdatedAt=T0, Error="stale note"
            )
        )
    later = T0 + timedelta(seconds=10)

    PipelineJobStatusStore(engine).mark_running("job-1", later)

    row = job_row(engine, "job-1")
    assert (row.status, row.error, row.updated_at) == ("Running", None, later)


def test_other_jobs_are_not_touched(engine: Engine) -> None:
    store = PipelineJobStatusStore(engine)
    store.mark_running("job-1", T0)
    store.mark_running("job-2", T0)

    store.record_outcome("job-1", "Succeeded", None, T0 + timedelta(seconds=1))

    assert job_row(engine, "job-2").status == "Running"


def test_timestamps_in_any_zone_are_stored_and_returned_as_utc(engine: Engine) -> None:
    tokyo = timezone(timedelta(hours=9))
    at = datetime(2026, 12, 4, 19, 0, 0, 654321, tzinfo=tokyo)

    PipelineJobStatusStore(engine).mark_running("job-1", at)

    updated_at = job_row(engine, "job-1").updated_at
    assert updated_at.tzinfo is UTC
    assert updated_at == datetime(2026, 12, 4, 10, 0, 0, 654321, tzinfo=UTC)


def test_naive_timestamp_is_refused_and_nothing_is_written(engine: Engine) -> None:
    store = PipelineJobStatusStore(engine)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.mark_running("job-1", datetime(2026, 12, 4, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_outcome("job-1", "Failed", None, datetime(2026, 12, 4, 10, 0))

    assert job_rows(engine) == []


@pytest.mark.parametrize("status", ["Running", "succeeded", "Cancelled", ""])
def test_record_outcome_refuses_a_status_outside_the_contract(engine: Engine, status: str) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        PipelineJobStatusStore(engine).record_outcome("job-1", status, None, T0)  # type: ignore[arg-type]
    assert job_rows(engine) == []


@pytest.mark.parametrize("job_id", ["", "x" * 101])
def test_job_id_outside_the_contract_is_refused(engine: Engine, job_id: str) -> None:
    with pytest.raises(ValueError, match="job_id"):
        PipelineJobStatusStore(engine).mark_running(job_id, T0)


def test_concurrent_upserts_of_one_new_job_leave_one_row(engine: Engine) -> None:
    # Several workers handling redeliveries of the same job at once: a read-then-insert
    # would race into a duplicate-key error; a real upsert must not.
    store = PipelineJobStatusStore(engine)
    workers = 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for round_ in range(5):
                if (n + round_) % 2:
                    store.mark_running("job-race", T0)
                else:
                    store.record_outcome("job-race", "Failed", f"worker {n}", T0)
        except BaseException as error:  # collected and re-raised by the test thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert [(row.job_id, row.status) for row in job_rows(engine)] == [("job-race", "Failed")]


def test_unsupported_dialect_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="mysql"):
        mark_running_statement(mysql.dialect(), "job-1", T0)
