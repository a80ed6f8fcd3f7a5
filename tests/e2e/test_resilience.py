"""Services going away and the host itself dying: jobs still end the way the contract says."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import pytest
import redis

from tests.e2e.conftest import HostFactory, prepare_database
from tests.e2e.support import (
    CLEAN_EXIT_CODES,
    CONTRACT_QUEUES,
    CUSTOM_START,
    DEFAULT_START,
    FINISHED,
    FINISHED_POISON,
    PENDING,
    PENDING_POISON,
    STOP_TIMEOUT,
    Database,
    Queues,
    account_key_of,
    new_job_id,
    wait_until,
)
from tests.fixtures.redis_server import StoppableRedis
from tests.support.search_standin import Reply, SearchStandIn

pytestmark = pytest.mark.e2e

INDEXERS = ("docs-indexer", "users-indexer")


def custom_request(job_id: str) -> dict[str, str]:
    return {
        "jobId": job_id,
        "pipeline": "long-runner",
        "requestedBy": "platform-api",
        "requestedAt": "2026-12-04T10:00:00Z",
    }


def test_redis_down_fails_only_the_cache_step(
    host_factory: HostFactory,
    queues: Queues,
    stoppable_redis: StoppableRedis,
    search_standin: SearchStandIn,
) -> None:
    for name in INDEXERS:
        search_standin.script(name)
    settings = host_factory.settings(
        REDIS_URL=stoppable_redis.url,
        SEARCH_ENDPOINT=search_standin.endpoint,
        SEARCH_API_KEY=search_standin.api_key or "",
        SEARCH_INDEXERS=",".join(INDEXERS),
    )
    db = prepare_database(settings["DATABASE_URL"])
    user = f"user-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(stoppable_redis.url)
    try:
        client.set(f"search:{user}:q1", "cached")
        rows = db.add_user_data(user, active=3)
        host = host_factory.start(settings)
        job_id = new_job_id("redis-down")

        queues.send_json(PENDING, {"jobId": job_id, "userId": user})
        queues.wait_for(DEFAULT_START)
        stoppable_redis.stop()
        assert not stoppable_redis.running
        queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})

        done = host.wait_for_runtime_status(job_id, "Completed", timeout=60)
        post = done["output"]["postProcessing"]
        assert post["cache"]["ok"] is False, post
        assert isinstance(post["cache"].get("error"), str) and post["cache"]["error"], post
        assert post["searchIndexers"]["ok"] is True, post
        assert post["userData"] == {**post["userData"], "ok": True, "deactivated": 3}
        assert not any(r["IsActive"] for r in db.user_data(rows).values())
        for name in INDEXERS:
            assert [c.status for c in search_standin.calls(name)] == [202]
    finally:
        client.close()
        db.dispose()


def test_killed_host_carries_on_after_restart(host_factory: HostFactory, queues: Queues) -> None:
    settings = host_factory.settings()
    db = prepare_database(settings["DATABASE_URL"])
    state_dir = host_factory.base_dir / "durable-state"
    try:
        first = host_factory.start(settings, state_dir=state_dir)
        job_id = new_job_id("survivor")
        queues.send_json(PENDING, custom_request(job_id))
        queues.wait_for(CUSTOM_START)
        db.wait_for_job_row(job_id, "Running")
        first.wait_for_runtime_status(job_id, "Running")
        queues.wait_drained(PENDING)

        first.kill()
        assert not first.running

        second = host_factory.start(settings, state_dir=state_dir)
        code, status = second.job_status(job_id)
        assert code == 200 and status["runtimeStatus"] == "Running", status

        queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
        done = second.wait_for_runtime_status(job_id, "Completed", timeout=45)
        assert done["output"]["pipelineStatus"] == "Succeeded"
        db.wait_for_job_row(job_id, "Succeeded")
        assert len(queues.raw(CUSTOM_START)) == 1, "the restart sent no second start message"
        assert queues.raw(PENDING_POISON) == []
        assert queues.raw(FINISHED_POISON) == []
    finally:
        db.dispose()


def test_fresh_environment_gets_its_queues_and_tables(
    host_factory: HostFactory, queue_access: Queues
) -> None:
    """Contract 2 and 4.3: the app creates missing queues and tables.

    The input queues must exist once the host is up (or nobody could send the first job);
    all six at the latest once that first job has been handled. The database file, its folder
    and its tables do not exist before the first job either.
    """
    queue_access.delete_all()
    wait_until(
        lambda: not any(queue_access.exists(q) for q in CONTRACT_QUEUES),
        timeout=10,
        what="the queues to be deleted",
    )
    database_url = f"sqlite:///{host_factory.base_dir / 'not-yet' / 'fresh.sqlite3'}"
    host = host_factory.start(host_factory.settings(DATABASE_URL=database_url))
    missing: list[str] = []

    def all_exist(queues: tuple[str, ...]) -> bool:
        missing[:] = [q for q in queues if not queue_access.exists(q)]
        return not missing

    wait_until(
        lambda: all_exist((PENDING, FINISHED)),
        timeout=20,
        what="the host to create the queues it listens on",
        describe=lambda: f"still missing: {missing}\n{host.tail()}",
    )
    job_id = new_job_id("fresh-account")
    queue_access.send_json(PENDING, custom_request(job_id))
    [start] = queue_access.wait_for(CUSTOM_START)
    assert start["jobId"] == job_id
    assert all_exist(CONTRACT_QUEUES), f"still missing after the first job: {missing}"

    db = Database(database_url)
    try:
        db.wait_for_job_row(job_id, "Running")
    finally:
        db.dispose()


def test_queues_live_in_the_pipeline_storage_account(
    host_factory: HostFactory, queues: Queues, other_storage: str
) -> None:
    """AzureWebJobsStorage is another account: the six queues are PipelineStorage's alone."""
    settings = host_factory.settings(AzureWebJobsStorage=other_storage)
    db = prepare_database(settings["DATABASE_URL"])
    other = Queues(other_storage)
    try:
        host = host_factory.start(
            settings, extra_secrets={"the other account's key": account_key_of(other_storage) or ""}
        )
        job_id = new_job_id("routed")
        queues.send_json(PENDING, custom_request(job_id))
        queues.wait_for(CUSTOM_START)
        queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
        done = host.wait_for_runtime_status(job_id, "Completed")
        assert done["output"]["pipelineStatus"] == "Succeeded"
        db.wait_for_job_row(job_id, "Succeeded")
        assert [q for q in CONTRACT_QUEUES if other.exists(q)] == []
    finally:
        other.close()
        db.dispose()


def test_sigterm_during_an_activity_then_restart_finishes_the_job(
    host_factory: HostFactory, queues: Queues, search_standin: SearchStandIn
) -> None:
    # The indexer answers only after 15 s: SIGTERM arrives while the activity is in flight.
    search_standin.script("slow-indexer", Reply(202, delay=15), then=202)
    settings = host_factory.settings(
        SEARCH_ENDPOINT=search_standin.endpoint,
        SEARCH_API_KEY=search_standin.api_key or "",
        SEARCH_INDEXERS="slow-indexer",
    )
    state_dir = host_factory.base_dir / "durable-state"
    first = host_factory.start(settings, state_dir=state_dir)
    job_id = new_job_id("interrupted")
    queues.send_json(PENDING, {"jobId": job_id, "userId": "someone"})
    queues.wait_for(DEFAULT_START)
    queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
    assert len(search_standin.wait_for_calls(1, "slow-indexer", timeout=30)) == 1

    stopped_at = time.monotonic()
    code = first.stop()  # asserts it exits within a few seconds
    assert code in CLEAN_EXIT_CODES, first.tail()
    assert time.monotonic() - stopped_at < STOP_TIMEOUT

    second = host_factory.start(settings, state_dir=state_dir)
    done = second.wait_for_runtime_status(job_id, "Completed", timeout=45)
    search = done["output"]["postProcessing"]["searchIndexers"]
    assert search["ok"] is True, search
    assert len(search_standin.calls("slow-indexer")) >= 2, "the interrupted run was done again"


def test_timeout_timer_survives_a_killed_host(host_factory: HostFactory, queues: Queues) -> None:
    settings = host_factory.settings(PIPELINE_JOB_TIMEOUT_SECONDS="3")
    db = prepare_database(settings["DATABASE_URL"])
    state_dir = host_factory.base_dir / "durable-state"
    try:
        first = host_factory.start(settings, state_dir=state_dir)
        job_id = new_job_id("orphan")
        queues.send_json(PENDING, custom_request(job_id))
        queues.wait_for(CUSTOM_START)
        db.wait_for_job_row(job_id, "Running")
        first.kill()

        second = host_factory.start(settings, state_dir=state_dir)
        done = second.wait_for_job(
            job_id,
            lambda body: (body.get("output") or {}).get("pipelineStatus") == "TimedOut",
            timeout=30,
            what="the timeout after a restart",
        )
        assert done["output"]["jobId"] == job_id
        db.wait_for_job_row(job_id, "TimedOut")
        assert len(queues.raw(CUSTOM_START)) == 1
    finally:
        db.dispose()


def test_sigint_stops_the_host_cleanly(host_factory: HostFactory) -> None:
    host = host_factory.start(host_factory.settings())
    assert host.process is not None
    host.process.send_signal(signal.SIGINT)
    try:
        code = host.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"devhost still runs {STOP_TIMEOUT}s after SIGINT\n{host.tail()}")
    assert code in (0, 128 + signal.SIGINT), host.tail()


def test_unconfigured_steps_are_reported_as_skipped(
    host_factory: HostFactory, queues: Queues
) -> None:
    """Contract 6: REDIS_URL and SEARCH_ENDPOINT empty: those steps are reported as skipped."""
    settings = host_factory.settings(REDIS_URL="", SEARCH_ENDPOINT="", SEARCH_INDEXERS="a,b")
    db = prepare_database(settings["DATABASE_URL"])
    try:
        rows = db.add_user_data("lonely-user", active=2)
        host = host_factory.start(settings)
        job_id = new_job_id("bare")
        queues.send_json(PENDING, {"jobId": job_id, "userId": "lonely-user"})
        queues.wait_for(DEFAULT_START)
        queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
        post = host.wait_for_runtime_status(job_id, "Completed")["output"]["postProcessing"]
        assert post["cache"]["ok"] is True and post["cache"].get("skipped") is True, post
        assert post["searchIndexers"]["ok"] is True, post
        assert post["searchIndexers"].get("skipped") is True, post
        assert post["userData"] == {**post["userData"], "ok": True, "deactivated": 2}
        assert not any(r["IsActive"] for r in db.user_data(rows).values())
    finally:
        db.dispose()
