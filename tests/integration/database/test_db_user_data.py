"""UserDataDeactivator against real PostgreSQL and SQLite."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from services.user_data import MAX_CHUNK_SIZE, UserDataDeactivator

from .conftest import seed_users, user_rows

AT = datetime(2026, 12, 4, 10, 0, 0, 500000, tzinfo=UTC)
EARLIER = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """alice: 1-5 active, 6 already inactive; bob: 7-9 active, 10 inactive."""
    rows: list[dict[str, Any]] = [
        {"Id": i, "UserId": "alice", "IsActive": True} for i in range(1, 6)
    ]
    rows.append({"Id": 6, "UserId": "alice", "IsActive": False, "DeactivatedAt": EARLIER})
    rows.extend({"Id": i, "UserId": "bob", "IsActive": True} for i in range(7, 10))
    rows.append({"Id": 10, "UserId": "bob", "IsActive": False, "DeactivatedAt": EARLIER})
    seed_users(engine, rows)
    return engine


def _snapshot(engine: Engine) -> dict[int, tuple[str, bool, datetime | None]]:
    return {i: (r.user_id, r.is_active, r.deactivated_at) for i, r in user_rows(engine).items()}


def test_without_ids_all_of_the_users_active_rows_are_deactivated(seeded: Engine) -> None:
    before = _snapshot(seeded)

    assert UserDataDeactivator(seeded).deactivate("alice", None, AT) == 5

    after = _snapshot(seeded)
    assert {i: after[i] for i in range(1, 6)} == {i: ("alice", False, AT) for i in range(1, 6)}
    # Already inactive rows keep their original DeactivatedAt; other users are untouched.
    assert {i: after[i] for i in range(6, 11)} == {i: before[i] for i in range(6, 11)}


def test_a_second_run_deactivates_nothing_and_keeps_the_first_timestamp(seeded: Engine) -> None:
    deactivator = UserDataDeactivator(seeded)
    assert deactivator.deactivate("alice", None, AT) == 5
    first = _snapshot(seeded)

    assert deactivator.deactivate("alice", None, AT + timedelta(hours=1)) == 0
    assert deactivator.deactivate("alice", [1, 2, 3], AT + timedelta(hours=1)) == 0

    assert _snapshot(seeded) == first


def test_with_ids_only_the_users_active_rows_among_them_are_deactivated(seeded: Engine) -> None:
    before = _snapshot(seeded)

    # 2 and 4 qualify; 6 is already inactive, 7 is bob's, 999 does not exist.
    count = UserDataDeactivator(seeded).deactivate("alice", [4, 2, 6, 7, 999], AT)

    assert count == 2
    after = _snapshot(seeded)
    assert after[2] == after[4] == ("alice", False, AT)
    assert {i: after[i] for i in after if i not in (2, 4)} == {
        i: before[i] for i in before if i not in (2, 4)
    }


def test_an_empty_id_list_deactivates_nothing(seeded: Engine) -> None:
    before = _snapshot(seeded)

    assert UserDataDeactivator(seeded).deactivate("alice", [], AT) == 0

    assert _snapshot(seeded) == before


def test_repeated_ids_are_counted_once(seeded: Engine) -> None:
    assert UserDataDeactivator(seeded, chunk_size=2).deactivate("alice", [3, 3, 1, 3, 1], AT) == 2


def test_an_unknown_user_deactivates_nothing(seeded: Engine) -> None:
    before = _snapshot(seeded)

    assert UserDataDeactivator(seeded).deactivate("ALICE", None, AT) == 0
    assert UserDataDeactivator(seeded).deactivate("*", None, AT) == 0

    assert _snapshot(seeded) == before


def test_deactivated_at_is_stored_and_returned_as_utc(seeded: Engine) -> None:
    new_york = timezone(timedelta(hours=-5))
    at = datetime(2026, 12, 4, 5, 0, 0, 250000, tzinfo=new_york)

    UserDataDeactivator(seeded).deactivate("alice", [1], at)

    deactivated_at = user_rows(seeded)[1].deactivated_at
    assert deactivated_at is not None
    assert deactivated_at.tzinfo is UTC
    assert deactivated_at == datetime(2026, 12, 4, 10, 0, 0, 250000, tzinfo=UTC)


@dataclass
class _Recorder:
    """What the engine sent to the database, seen through SQLAlchemy's own events."""

    updates: list[int] = field(default_factory=list)  # parameters per UPDATE
    commits: int = 0


@pytest.fixture
def recorder(engine: Engine) -> Iterator[_Recorder]:
    seen = _Recorder()

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any):
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.updates.append(len(params))

    def commit(_conn: Any) -> None:
        seen.commits += 1

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    event.listen(engine, "commit", commit)
    yield seen
    event.remove(engine, "before_cursor_execute", before_cursor_execute)
    event.remove(engine, "commit", commit)


def _seed_many(engine: Engine, count: int) -> None:
    rows: list[dict[str, Any]] = [
        {"Id": i, "UserId": "alice", "IsActive": True} for i in range(1, count + 1)
    ]
    # Interleaved rows of another user and some already inactive rows of alice's.
    rows.extend({"Id": count + i, "UserId": "bob", "IsActive": True} for i in range(1, 501))
    for row in rows[:count:97]:
        row.update(IsActive=False, DeactivatedAt=EARLIER)
    seed_users(engine, rows)


def test_ten_thousand_ids_go_in_chunks_in_one_transaction(
    engine: Engine, recorder: _Recorder
) -> None:
    _seed_many(engine, 10_000)
    ids = [*range(1, 10_001), 10_001, 10_002]  # the last two are bob's
    random.Random(7).shuffle(ids)
    already_inactive = len(range(0, 10_000, 97))
    commits_before = recorder.commits

    count = UserDataDeactivator(engine, chunk_size=1000).deactivate("alice", ids, AT)

    assert count == 10_000 - already_inactive
    # 10,002 ids in chunks of 1,000: 11 statements, each with the ids plus UserId and
    # DeactivatedAt, all well under SQL Server's 2,100 parameters, and a single commit.
    assert recorder.updates == [1002] * 10 + [4]
    assert recorder.commits - commits_before == 1
    rows = user_rows(engine)
    assert all(not rows[i].is_active for i in range(1, 10_001))
    assert all(rows[i].is_active for i in range(10_001, 10_501))


def _install_refusing_trigger(engine: Engine, refused_id: int) -> None:
    """Make the database itself refuse to update one row, to fail a late chunk."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    'CREATE TRIGGER refuse_update BEFORE UPDATE ON "UserData" '
                    f"WHEN OLD.\"Id\" = {refused_id} BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
            )
            connection.execute(
                text(
                    'CREATE TRIGGER refuse_update BEFORE UPDATE ON "UserData" FOR EACH ROW '
                    f'WHEN (OLD."Id" = {refused_id}) EXECUTE FUNCTION refuse_update()'
                )
            )


def test_a_failing_chunk_rolls_back_the_chunks_before_it(engine: Engine) -> None:
    _seed_many(engine, 3_000)
    before = _snapshot(engine)
    _install_refusing_trigger(engine, refused_id=2_999)  # in the third chunk of 1,000

    with pytest.raises(DBAPIError, match="refused"):
        UserDataDeactivator(engine, chunk_size=1000).deactivate("alice", range(1, 3_001), AT)

    assert _snapshot(engine) == before


@pytest.mark.parametrize("chunk_size", [0, -1, MAX_CHUNK_SIZE + 1])
def test_chunk_sizes_that_break_sql_servers_limit_are_refused(
    engine: Engine, chunk_size: int
) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        UserDataDeactivator(engine, chunk_size=chunk_size)


def test_invalid_arguments_are_refused_before_anything_is_written(seeded: Engine) -> None:
    before = _snapshot(seeded)
    deactivator = UserDataDeactivator(seeded)

    with pytest.raises(TypeError, match="integers"):
        deactivator.deactivate("alice", [1, True], AT)
    with pytest.raises(TypeError, match="integers"):
        deactivator.deactivate("alice", ["1"], AT)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="timezone-aware"):
        deactivator.deactivate("alice", None, datetime(2026, 12, 4))
    with pytest.raises(ValueError, match="user_id"):
        deactivator.deactivate("", None, AT)

    assert _snapshot(seeded) == before
