"""``PipelineJobDefaultFinished`` as registered in ``function_app``, replayed through the real SDK.

Post-processing of a succeeded default job: the search indexers, the cache and the UserData
rows run in parallel, each reports its own outcome, and one failing never stops the others.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from devhost.replay import ActionType, HistoryEventType, flatten_actions
from schemas.orchestration import (
    ClearUserCache,
    DeactivateUserData,
    IndexerRetry,
    PostProcessingOutcome,
    RunSearchIndexer,
)
from tests.orchestrator import jobs
from tests.orchestrator.scenario import Episode, Scenario, Work

NAME = "PipelineJobDefaultFinished"
INSTANCE = f"default-job-1:{NAME}"
DOCS, USERS = jobs.INDEXERS
USER_DATA_OK = {"ok": True, "deactivated": 2}
CACHE_OK = {"ok": True, "deletedKeys": 3}
STARTED = {
    name: jobs.indexer_answer(name, "started", 202, "indexer run accepted")
    for name in (
        DOCS,
        USERS,
    )
}


def post_processing(default_finished: Any, ids: list[int] | None = None, **post: Any) -> Scenario:
    return Scenario(
        default_finished,
        name=NAME,
        instance_id=INSTANCE,
        input=jobs.finished_input(ids, **post),
        parent_instance_id="default-job-1",
    )


def indexer(episode: Episode, name: str) -> Work:
    found = [w for w in episode.activities("RunSearchIndexer") if w.input["indexer"] == name]
    assert len(found) == 1, episode.new
    return found[0]


def count_scheduled(run: Scenario, name: str) -> int:
    return sum(
        1
        for e in run.history.events
        if e["EventType"] == HistoryEventType.TASK_SCHEDULED and e["Name"] == name
    )


def complete_all_ok(run: Scenario, first: Episode) -> None:
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    if first.activities("ClearUserCache"):
        run.complete(first.activity("ClearUserCache"), CACHE_OK)
    for work in first.activities("RunSearchIndexer"):
        run.complete(work, STARTED[work.input["indexer"]])


def validated(output: Any) -> PostProcessingOutcome:
    outcome = PostProcessingOutcome.model_validate(output)
    # Contract 5: each step has ok (and error on failure); cache and userData have counts.
    for step in ("searchIndexers", "cache", "userData"):
        assert isinstance(output[step]["ok"], bool)
        if not output[step]["ok"]:
            assert output[step]["error"]
    assert isinstance(output["cache"]["deletedKeys"], int)
    assert isinstance(output["userData"]["deactivated"], int)
    return outcome


# --- the three branches -----------------------------------------------------------------------


def test_all_branches_are_scheduled_at_once_in_the_first_episode(default_finished: Any) -> None:
    run = post_processing(default_finished, [7, 8])

    first = run.replay()

    assert not first.is_done
    assert [(w.name, w.input) for w in first.new] == [
        (
            "DeactivateUserData",
            {"jobId": "default-job-1", "userId": "user-42", "userDataIds": [7, 8]},
        ),
        (
            "ClearUserCache",
            {"jobId": "default-job-1", "userId": "user-42", "patterns": jobs.PATTERNS},
        ),
        ("RunSearchIndexer", {"jobId": "default-job-1", "indexer": DOCS}),
        ("RunSearchIndexer", {"jobId": "default-job-1", "indexer": USERS}),
    ]
    models: dict[str, type[BaseModel]] = {
        "DeactivateUserData": DeactivateUserData,
        "ClearUserCache": ClearUserCache,
        "RunSearchIndexer": RunSearchIndexer,
    }
    for work in first.new:
        models[work.name or ""].model_validate(work.input)
    # Yielded together: one WhenAll (task_all) holds all four.
    (top_level,) = first.result.state["actions"]
    assert len(top_level) == 1
    assert top_level[0]["actionType"] == ActionType.WHEN_ALL
    assert [a["functionName"] for a in flatten_actions(top_level)] == [w.name for w in first.new]


def test_all_branches_succeed(default_finished: Any) -> None:
    run = post_processing(default_finished, [7, 8])
    first = run.replay()
    complete_all_ok(run, first)

    done = run.replay()

    assert done.is_done
    assert done.output == {
        "searchIndexers": {
            "ok": True,
            "skipped": False,
            "indexers": {
                DOCS: {"ok": True, "attempts": 1},
                USERS: {"ok": True, "attempts": 1},
            },
        },
        "cache": {"ok": True, "skipped": False, "deletedKeys": 3},
        "userData": {"ok": True, "skipped": False, "deactivated": 2},
    }
    validated(done.output)


def test_branches_may_finish_in_any_order_and_in_separate_episodes(default_finished: Any) -> None:
    run = post_processing(default_finished, [7, 8])
    first = run.replay()

    run.complete(indexer(first, USERS), STARTED[USERS])
    assert run.replay().new == []
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    run.complete(indexer(first, DOCS), STARTED[DOCS])
    assert not run.replay().is_done
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    done = run.replay()

    assert done.is_done
    assert done.output["userData"]["deactivated"] == 2
    assert done.output["searchIndexers"]["indexers"][USERS]["ok"] is True


def test_no_user_data_ids_means_all_rows(default_finished: Any) -> None:
    first = post_processing(default_finished, None).replay()

    assert first.activity("DeactivateUserData").input["userDataIds"] is None


def test_cache_is_skipped_when_disabled(default_finished: Any) -> None:
    run = post_processing(default_finished, [7], cache=False)
    first = run.replay()
    assert first.activities("ClearUserCache") == []
    assert [w.name for w in first.new] == [
        "DeactivateUserData",
        "RunSearchIndexer",
        "RunSearchIndexer",
    ]
    complete_all_ok(run, first)

    done = run.replay()

    assert done.output["cache"] == {"ok": True, "skipped": True, "deletedKeys": 0}
    assert done.output["searchIndexers"]["ok"] is True
    assert done.output["userData"]["ok"] is True
    assert count_scheduled(run, "ClearUserCache") == 0


def test_search_is_skipped_when_disabled(default_finished: Any) -> None:
    run = post_processing(default_finished, [7], search=False)
    first = run.replay()
    assert first.activities("RunSearchIndexer") == []
    assert [w.name for w in first.new] == ["DeactivateUserData", "ClearUserCache"]
    complete_all_ok(run, first)

    done = run.replay()

    assert done.output["searchIndexers"] == {"ok": True, "skipped": True, "indexers": {}}
    assert done.output["cache"]["deletedKeys"] == 3
    assert count_scheduled(run, "RunSearchIndexer") == 0


def test_both_skipped_leaves_user_data_alone(default_finished: Any) -> None:
    run = post_processing(default_finished, [7], search=False, cache=False)
    first = run.replay()
    assert [w.name for w in first.new] == ["DeactivateUserData"]
    run.complete(first.activity("DeactivateUserData"), {"ok": True, "deactivated": 1})

    done = run.replay()

    assert done.output["searchIndexers"]["skipped"] is True
    assert done.output["cache"]["skipped"] is True
    assert done.output["userData"] == {"ok": True, "skipped": False, "deactivated": 1}


def test_search_enabled_without_indexers_runs_none(default_finished: Any) -> None:
    run = post_processing(default_finished, [7], indexers=[])
    first = run.replay()
    assert first.activities("RunSearchIndexer") == []
    complete_all_ok(run, first)

    done = run.replay()

    assert done.output["searchIndexers"] == {"ok": True, "skipped": False, "indexers": {}}


def test_activities_are_retried_but_indexer_runs_are_not(default_finished: Any) -> None:
    first = post_processing(default_finished, [7]).replay()

    for name in ("DeactivateUserData", "ClearUserCache"):
        work = first.activity(name)
        assert work.action_type == ActionType.CALL_ACTIVITY_WITH_RETRY
        assert work.action["retryOptions"] == {
            "firstRetryIntervalInMilliseconds": 5000,
            "maxNumberOfAttempts": 3,
        }
    # The orchestrator owns the indexer retry loop (409 / 5xx answers, on durable timers).
    for work in first.activities("RunSearchIndexer"):
        assert work.action_type == ActionType.CALL_ACTIVITY
        assert "retryOptions" not in work.action


# --- one branch failing -----------------------------------------------------------------------


def test_user_data_failing_after_its_retries_hides_nothing(default_finished: Any) -> None:
    run = post_processing(default_finished, [7, 8])
    first = run.replay()
    user_data = first.activity("DeactivateUserData")
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    run.complete(indexer(first, DOCS), STARTED[DOCS])
    # users-indexer still running while DeactivateUserData fails for good
    reason = "Could not de-activate UserData rows: OperationalError: database is locked"
    after_retries = run.fail_every_attempt(user_data, reason)
    assert not after_retries.is_done

    run.complete(indexer(first, USERS), STARTED[USERS])
    done = run.replay()

    assert done.is_done
    assert user_data.attempts == 3
    assert count_scheduled(run, "DeactivateUserData") == 3
    assert done.output["userData"] == {
        "ok": False,
        "skipped": False,
        "error": reason,
        "deactivated": 0,
    }
    assert done.output["cache"] == {"ok": True, "skipped": False, "deletedKeys": 3}
    assert done.output["searchIndexers"]["ok"] is True
    assert done.output["searchIndexers"]["indexers"] == {
        DOCS: {"ok": True, "attempts": 1},
        USERS: {"ok": True, "attempts": 1},
    }
    validated(done.output)


def test_cache_failing_after_its_retries_hides_nothing(default_finished: Any) -> None:
    run = post_processing(default_finished, [7, 8])
    first = run.replay()
    cache = first.activity("ClearUserCache")
    reason = "Could not clear the cache: ConnectionError: Connection refused"
    run.fail_every_attempt(cache, reason)
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    for name in (DOCS, USERS):
        run.complete(indexer(first, name), STARTED[name])

    done = run.replay()

    assert done.is_done
    assert done.output["cache"] == {
        "ok": False,
        "skipped": False,
        "error": reason,
        "deletedKeys": 0,
    }
    assert done.output["userData"] == {"ok": True, "skipped": False, "deactivated": 2}
    assert done.output["searchIndexers"]["ok"] is True
    validated(done.output)


def test_an_activity_that_succeeds_on_retry_counts_as_ok(default_finished: Any) -> None:
    run = post_processing(default_finished, [7, 8], search=False)
    first = run.replay()
    user_data = first.activity("DeactivateUserData")
    run.fail(user_data, "Could not de-activate UserData rows: timeout")
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    run.replay()
    run.fire_retry(user_data)
    run.replay()
    run.complete(user_data, USER_DATA_OK)

    done = run.replay()

    assert user_data.attempts == 2
    assert done.output["userData"] == {"ok": True, "skipped": False, "deactivated": 2}


def test_every_branch_failing_still_reports_each(default_finished: Any) -> None:
    run = post_processing(default_finished, [7], indexers=[DOCS])
    first = run.replay()
    run.fail_every_attempt(first.activity("DeactivateUserData"), "db down")
    run.fail_every_attempt(first.activity("ClearUserCache"), "redis down")
    run.fail(indexer(first, DOCS), "RunSearchIndexer crashed")

    done = run.replay()

    assert done.is_done
    assert done.output["userData"]["error"] == "db down"
    assert done.output["cache"]["error"] == "redis down"
    assert done.output["searchIndexers"]["ok"] is False
    assert done.output["searchIndexers"]["indexers"] == {
        DOCS: {"ok": False, "attempts": 1, "error": "RunSearchIndexer crashed"}
    }
    validated(done.output)


# --- search indexers --------------------------------------------------------------------------


def test_busy_indexer_is_retried_after_a_timer_and_then_starts(default_finished: Any) -> None:
    run = post_processing(default_finished, [7])
    first = run.replay()
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    run.complete(indexer(first, DOCS), STARTED[DOCS])
    run.complete(indexer(first, USERS), jobs.indexer_answer(USERS, "busy", 409, "already running"))

    waiting = run.replay()
    timer = waiting.timer()
    assert len(waiting.new) == 1
    assert timer.fire_at == run.now + timedelta(seconds=jobs.INDEXER_RETRY.firstIntervalSeconds)

    run.fire(timer)
    again = run.replay()
    retry = again.activity("RunSearchIndexer")
    assert retry.input == {"jobId": "default-job-1", "indexer": USERS}
    assert len(again.new) == 1

    run.complete(retry, STARTED[USERS])
    done = run.replay()
    assert done.is_done
    assert done.output["searchIndexers"] == {
        "ok": True,
        "skipped": False,
        "indexers": {DOCS: {"ok": True, "attempts": 1}, USERS: {"ok": True, "attempts": 2}},
    }
    assert count_scheduled(run, "RunSearchIndexer") == 3


def test_transient_indexer_error_is_retried(default_finished: Any) -> None:
    run = post_processing(default_finished, [7], indexers=[DOCS])
    first = run.replay()
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    run.complete(indexer(first, DOCS), jobs.indexer_answer(DOCS, "transient", 503, "unavailable"))

    timer = run.replay().timer()
    retry = run.fire(timer).replay().activity("RunSearchIndexer")
    run.complete(retry, STARTED[DOCS])
    done = run.replay()

    assert done.output["searchIndexers"]["indexers"] == {DOCS: {"ok": True, "attempts": 2}}


def test_busy_indexers_are_retried_together(default_finished: Any) -> None:
    run = post_processing(default_finished, [7])
    first = run.replay()
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    for name in (DOCS, USERS):
        run.complete(indexer(first, name), jobs.indexer_answer(name, "busy", 409))

    timer = run.replay().timer()
    again = run.fire(timer).replay()

    assert sorted(w.input["indexer"] for w in again.activities("RunSearchIndexer")) == [DOCS, USERS]


def test_indexer_not_found_fails_at_once_without_retry(default_finished: Any) -> None:
    run = post_processing(default_finished, [7])
    first = run.replay()
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    run.complete(indexer(first, DOCS), STARTED[DOCS])
    run.complete(
        indexer(first, USERS), jobs.indexer_answer(USERS, "failed", 404, "No indexer named users")
    )

    done = run.replay()

    assert done.is_done
    assert done.new == []  # no timer, no second attempt
    assert count_scheduled(run, "RunSearchIndexer") == 2
    search = done.output["searchIndexers"]
    assert search["ok"] is False
    assert search["indexers"][USERS] == {
        "ok": False,
        "attempts": 1,
        "error": "HTTP 404: No indexer named users",
    }
    assert search["indexers"][DOCS] == {"ok": True, "attempts": 1}
    assert USERS in search["error"]
    assert "HTTP 404" in search["error"]
    assert DOCS not in search["error"]
    assert done.output["cache"]["ok"] is True
    assert done.output["userData"]["ok"] is True


def test_indexer_busy_until_the_retry_window_closes_gives_up(default_finished: Any) -> None:
    # firstInterval 5 s, doubling, at most 20 s, within 60 s of the first answers.
    run = post_processing(default_finished, [7], indexers=[DOCS])
    first = run.replay()
    run.complete(first.activity("DeactivateUserData"), USER_DATA_OK)
    run.complete(first.activity("ClearUserCache"), CACHE_OK)
    busy = jobs.indexer_answer(DOCS, "busy", 409, "Another indexer invocation is in progress")
    run.complete(indexer(first, DOCS), busy)
    episode = run.replay()
    window_opened = run.now

    delays = []
    while episode.timers():
        timer = episode.timer()
        assert timer.fire_at is not None
        assert timer.fire_at <= window_opened + timedelta(seconds=60)
        delays.append((timer.fire_at - run.now).total_seconds())
        retry = run.fire(timer).replay().activity("RunSearchIndexer")
        run.complete(retry, busy)  # one second after the timer fired
        episode = run.replay()

    assert delays == [5, 10, 20, 20]
    assert episode.is_done
    outcome = episode.output["searchIndexers"]["indexers"][DOCS]
    assert outcome["ok"] is False
    assert outcome["attempts"] == 5
    assert outcome["error"] == (
        "gave up after 5 attempts within 60 seconds; "
        "last answer: HTTP 409: Another indexer invocation is in progress"
    )
    assert episode.output["searchIndexers"]["ok"] is False
    assert episode.output["userData"]["ok"] is True
    assert count_scheduled(run, "RunSearchIndexer") == 5


@pytest.mark.parametrize("window", [1, 4])
def test_window_shorter_than_the_first_interval_gives_up_after_one_attempt(
    default_finished: Any, window: float
) -> None:
    policy = IndexerRetry(firstIntervalSeconds=5, maxIntervalSeconds=20, windowSeconds=window)
    run = post_processing(default_finished, [7], indexers=[DOCS], indexer_retry=policy)
    first = run.replay()
    complete_ok = {"DeactivateUserData": USER_DATA_OK, "ClearUserCache": CACHE_OK}
    for name, value in complete_ok.items():
        run.complete(first.activity(name), value)
    run.complete(indexer(first, DOCS), jobs.indexer_answer(DOCS, "transient", 502))

    done = run.replay()

    assert done.is_done
    assert done.output["searchIndexers"]["indexers"][DOCS] == {
        "ok": False,
        "attempts": 1,
        "error": f"gave up after 1 attempt within {window} seconds; last answer: HTTP 502",
    }
