"""Default jobs end to end: start message, then search indexers, Redis cache and UserData."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis

from tests.e2e.conftest import Stack
from tests.e2e.support import (
    CUSTOM_START,
    DEFAULT_START,
    FINISHED,
    FINISHED_POISON,
    PENDING,
    PENDING_POISON,
    Queues,
    new_job_id,
    parse_utc,
)
from tests.support.search_standin import Reply

pytestmark = pytest.mark.e2e

# CACHE_KEY_PATTERNS of the stack: "search:{userId}:*,profile:{userId}".


def seed_cache(client: redis.Redis, user: str, other: str) -> tuple[set[bytes], set[bytes]]:
    """Keys of ``user`` the patterns match, and keys they must leave alone."""
    mine = {f"search:{user}:q1", f"search:{user}:q2:page:3", f"profile:{user}"}
    others = {
        f"search:{other}:q1",
        f"profile:{other}",
        f"search:{user}",  # no ':' after the user id: not matched by search:{userId}:*
        f"profile:{user}:extra",  # profile:{userId} is an exact key, not a prefix
        f"unrelated:{user}:q1",
    }
    for key in mine | others:
        client.set(key, "cached")
    return {k.encode() for k in mine}, {k.encode() for k in others}


def existing(client: redis.Redis, keys: set[bytes]) -> set[bytes]:
    return {key for key in keys if client.exists(key)}


def users() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"user-{suffix}", f"other-{suffix}"


def assert_one_run_per_indexer(stack: Stack) -> None:
    for name in stack.indexers:
        calls = stack.standin.calls(name)
        assert [c.status for c in calls] == [202], (name, calls)
        assert calls[0].api_key_ok is True, "the indexer runs with the SEARCH_API_KEY"


def test_default_job_cleans_up_all_of_the_users_data(stack: Stack, queues: Queues) -> None:
    user, other = users()
    mine, others = seed_cache(stack.redis, user, other)
    active = stack.db.add_user_data(user, active=3, inactive=1)
    already_inactive = active.pop()
    other_rows = stack.db.add_user_data(other, active=2)
    job_id = new_job_id("default-all")
    sent_at = datetime.now(UTC)

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    [start] = queues.wait_for(DEFAULT_START)
    assert start["jobId"] == job_id
    assert start["userId"] == user
    assert start.get("userDataIds") is None, "absent means all of the user's active rows"
    assert set(start) <= {"jobId", "userId", "userDataIds", "startedAt"}, start
    assert sent_at.timestamp() - 1 <= parse_utc(start["startedAt"]).timestamp() <= time.time() + 1
    assert queues.raw(CUSTOM_START) == []
    assert stack.standin.calls() == [], "nothing runs before the pipeline reports"

    queues.send_json(FINISHED, {"jobId": job_id, "status": "SUCCEEDED"})
    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    output = done["output"]
    assert output["jobId"] == job_id
    assert output["schema"] == "default"
    assert output["pipelineStatus"] == "Succeeded"
    post = output["postProcessing"]

    assert post["searchIndexers"]["ok"] is True, post
    assert_one_run_per_indexer(stack)

    assert post["cache"]["ok"] is True, post
    assert post["cache"]["deletedKeys"] == len(mine)
    assert existing(stack.redis, mine) == set()
    assert existing(stack.redis, others) == others

    assert post["userData"]["ok"] is True, post
    assert post["userData"]["deactivated"] == len(active)
    rows = stack.db.user_data([*active, already_inactive, *other_rows])
    finished_at = time.time()
    for row_id in active:
        assert rows[row_id]["IsActive"] is False, rows[row_id]
        deactivated_at = rows[row_id]["DeactivatedAt"]
        assert deactivated_at is not None
        assert sent_at.timestamp() - 1 <= deactivated_at.timestamp() <= finished_at + 1
    assert rows[already_inactive] == {"UserId": user, "IsActive": False, "DeactivatedAt": None}
    for row_id in other_rows:
        assert rows[row_id] == {"UserId": other, "IsActive": True, "DeactivatedAt": None}
    assert queues.raw(FINISHED_POISON) == []
    assert queues.raw(PENDING_POISON) == []


def test_default_job_with_user_data_ids_deactivates_only_those(
    stack: Stack, queues: Queues
) -> None:
    user, other = users()
    rows_of_user = stack.db.add_user_data(user, active=4, inactive=1)
    already_inactive = rows_of_user.pop()
    [row_of_other] = stack.db.add_user_data(other, active=1)
    # Another user's id and an already inactive row: neither is touched nor counted.
    chosen = [rows_of_user[2], rows_of_user[0], row_of_other, already_inactive]
    job_id = new_job_id("default-ids")

    queues.send_json(
        PENDING, {"jobId": job_id, "userId": user, "userDataIds": chosen}, as_base64=True
    )
    [start] = queues.wait_for(DEFAULT_START)
    assert start["jobId"] == job_id
    assert sorted(start["userDataIds"]) == sorted(chosen)

    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"}, as_base64=True)
    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    user_data = done["output"]["postProcessing"]["userData"]
    assert user_data == {**user_data, "ok": True, "deactivated": 2}

    rows = stack.db.user_data([*rows_of_user, row_of_other, already_inactive])
    assert [rows[i]["IsActive"] for i in rows_of_user] == [False, True, False, True]
    assert rows[already_inactive] == {"UserId": user, "IsActive": False, "DeactivatedAt": None}
    assert rows[rows_of_user[0]]["DeactivatedAt"] is not None
    assert rows[rows_of_user[1]]["DeactivatedAt"] is None
    assert rows[row_of_other] == {"UserId": other, "IsActive": True, "DeactivatedAt": None}


def test_failed_default_job_runs_no_post_processing(stack: Stack, queues: Queues) -> None:
    user, other = users()
    mine, others = seed_cache(stack.redis, user, other)
    rows_of_user = stack.db.add_user_data(user, active=2)
    job_id = new_job_id("default-failed")

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    queues.wait_for(DEFAULT_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Failed", "error": "boom"})
    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    assert done["output"]["pipelineStatus"] == "Failed"
    assert done["output"]["schema"] == "default"

    assert stack.standin.calls(operation=None) == [], "no search request at all"
    assert existing(stack.redis, mine | others) == mine | others
    rows = stack.db.user_data(rows_of_user)
    assert all(row["IsActive"] and row["DeactivatedAt"] is None for row in rows.values()), rows


def test_user_id_with_glob_characters_matches_only_itself(stack: Stack, queues: Queues) -> None:
    # Contract 4.2: a userId of "*" must match only the literal "*".
    star_keys = {b"search:*:q1", b"profile:*"}
    bystanders = {
        f"search:bystander-{uuid.uuid4().hex[:6]}:q1".encode(),
        f"profile:bystander-{uuid.uuid4().hex[:6]}".encode(),
        b"search:?:q1",
        b"search:[*]:q1",
    }
    for key in star_keys | bystanders:
        stack.redis.set(key, "cached")
    job_id = new_job_id("default-star")

    queues.send_json(PENDING, {"jobId": job_id, "userId": "*"})
    queues.wait_for(DEFAULT_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    done = stack.host.wait_for_runtime_status(job_id, "Completed")

    cache = done["output"]["postProcessing"]["cache"]
    assert cache["ok"] is True, cache
    assert cache["deletedKeys"] == len(star_keys)
    assert existing(stack.redis, star_keys) == set()
    assert existing(stack.redis, bystanders) == bystanders


def test_busy_indexer_is_retried_until_it_runs(stack: Stack, queues: Queues) -> None:
    busy, other = stack.indexers
    stack.standin.script(busy, 409, 409, then=202)
    user, _ = users()
    job_id = new_job_id("default-busy")

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    queues.wait_for(DEFAULT_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    # The app's backoff starts at 5 s and doubles: the third attempt comes ~15 s in.
    done = stack.host.wait_for_runtime_status(job_id, "Completed", timeout=60)

    search = done["output"]["postProcessing"]["searchIndexers"]
    assert search["ok"] is True, search
    assert [c.status for c in stack.standin.calls(busy)] == [409, 409, 202]
    assert [c.status for c in stack.standin.calls(other)] == [202]
    attempts = [c.at for c in stack.standin.calls(busy)]
    assert attempts[1] > attempts[0] and attempts[2] > attempts[1]


def test_unknown_indexer_fails_alone(stack: Stack, queues: Queues) -> None:
    present, missing = stack.indexers
    stack.standin.forget(missing)  # the service answers 404
    user, other = users()
    mine, _ = seed_cache(stack.redis, user, other)
    rows_of_user = stack.db.add_user_data(user, active=2)
    job_id = new_job_id("default-404")

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    queues.wait_for(DEFAULT_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    done = stack.host.wait_for_runtime_status(job_id, "Completed", timeout=45)
    post = done["output"]["postProcessing"]

    search = post["searchIndexers"]
    assert search["ok"] is False, search
    assert isinstance(search.get("error"), str) and missing in search["error"], search
    assert [c.status for c in stack.standin.calls(missing)] == [404], "a 404 is not retried"
    assert [c.status for c in stack.standin.calls(present)] == [202]

    assert post["cache"] == {**post["cache"], "ok": True, "deletedKeys": len(mine)}
    assert existing(stack.redis, mine) == set()
    assert post["userData"] == {**post["userData"], "ok": True, "deactivated": 2}
    assert not any(row["IsActive"] for row in stack.db.user_data(rows_of_user).values())


def test_second_finish_report_does_not_post_process_again(stack: Stack, queues: Queues) -> None:
    user, other = users()
    seed_cache(stack.redis, user, other)
    stack.db.add_user_data(user, active=1)
    job_id = new_job_id("default-twice")

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    queues.wait_for(DEFAULT_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    first = stack.host.wait_for_runtime_status(job_id, "Completed")
    assert_one_run_per_indexer(stack)

    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"}, as_base64=True)
    queues.wait_drained(FINISHED)

    assert queues.raw(FINISHED_POISON) == [], "a repeat report is ignored, not dead-lettered"
    assert_one_run_per_indexer(stack)
    code, again = stack.host.job_status(job_id)
    assert code == 200
    assert again["output"] == first["output"]


def test_report_during_post_processing_is_ignored(stack: Stack, queues: Queues) -> None:
    slow = stack.indexers[0]
    # The indexer answers after 6 s, which keeps the job in post-processing meanwhile.
    stack.standin.script(slow, Reply(202, delay=6), then=202)
    user, _ = users()
    job_id = new_job_id("default-busy-report")

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    queues.wait_for(DEFAULT_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    assert len(stack.standin.wait_for_calls(1, slow, timeout=20)) == 1
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Failed", "error": "again"})
    queues.wait_drained(FINISHED)
    code, status = stack.host.job_status(job_id)
    assert code == 200 and status["runtimeStatus"] == "Running", "still post-processing"

    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    assert done["output"]["pipelineStatus"] == "Succeeded"
    assert_one_run_per_indexer(stack)
    assert queues.raw(FINISHED_POISON) == []


def test_two_reports_at_once_post_process_once(stack: Stack, queues: Queues) -> None:
    user, _ = users()
    job_id = new_job_id("default-double")

    queues.send_json(PENDING, {"jobId": job_id, "userId": user})
    queues.wait_for(DEFAULT_START)
    report = {"jobId": job_id, "status": "Succeeded"}
    queues.send_json(FINISHED, report)
    queues.send_json(FINISHED, report)
    done = stack.host.wait_for_runtime_status(job_id, "Completed")
    queues.wait_drained(FINISHED)

    assert done["output"]["postProcessing"]["searchIndexers"]["ok"] is True
    assert_one_run_per_indexer(stack)
    assert queues.raw(FINISHED_POISON) == []
