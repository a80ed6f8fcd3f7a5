"""The scenario helper itself, against tiny orchestrators: the histories it writes are the ones
the SDK expects, so a wrong history cannot make an orchestrator test pass by accident."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.replay import ActionType, HistoryEventType
from tests.orchestrator.scenario import Scenario

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)


def retried(context: df.DurableOrchestrationContext) -> Any:
    try:
        value = yield context.call_activity_with_retry("Flaky", RETRY, context.get_input())
    except Exception as error:
        return {"failed": str(error).split(" \n ")[0]}
    return {"value": value}


def parallel_retried(context: df.DurableOrchestrationContext) -> Any:
    first = context.call_activity_with_retry("A", RETRY, 1)
    second = context.call_activity("B", 2)
    results = yield context.task_all([first, second])
    timer = yield context.create_timer(context.current_utc_datetime + timedelta(seconds=10))
    return [results, timer is None]


def waits(context: df.DurableOrchestrationContext) -> Any:
    event = context.wait_for_external_event("Go")
    timer = context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return event.result
    return "timeout"


def scenario(fn: Any, value: Any = None) -> Scenario:
    return Scenario(fn, name=fn.__name__, instance_id="i", input=value)


def test_retry_succeeds_on_a_later_attempt() -> None:
    run = scenario(retried, "x")
    flaky = run.replay().activity("Flaky")
    run.fail(flaky, "boom")
    assert run.replay().new == []
    run.fire_retry(flaky)
    assert run.replay().new == []  # the extension reschedules, not the SDK
    run.complete(flaky, "fine")

    done = run.replay()

    assert done.output == {"value": "fine"}
    assert flaky.attempts == 2
    assert flaky.task_ids == [0, 2]  # timer 1 sits between the attempts


def test_retry_fails_for_good_only_after_the_timer_following_the_last_attempt() -> None:
    run = scenario(retried, "x")
    flaky = run.replay().activity("Flaky")
    for _ in range(3):
        run.fail(flaky, "boom")
        assert not run.replay().result.finished
        run.fire_retry(flaky)
        episode = run.replay()

    assert episode.output == {"failed": "boom"}
    assert flaky.task_ids == [0, 2, 4]
    types = [e["EventType"] for e in run.history.events]
    assert types.count(HistoryEventType.TASK_SCHEDULED) == 3
    assert types.count(HistoryEventType.TASK_FAILED) == 3
    assert types.count(HistoryEventType.TIMER_CREATED) == 3
    assert types.count(HistoryEventType.TIMER_FIRED) == 3


def test_fail_every_attempt_runs_the_whole_retry_history() -> None:
    run = scenario(retried, "x")
    flaky = run.replay().activity("Flaky")

    episode = run.fail_every_attempt(flaky, "boom")

    assert episode.output == {"failed": "boom"}
    assert flaky.attempts == 3


def test_retry_ids_interleave_with_parallel_work_and_later_timers() -> None:
    run = scenario(parallel_retried)
    first = run.replay()
    a, b = first.activity("A"), first.activity("B")
    run.fail(a, "boom").complete(b, "B!")
    run.replay()
    run.fire_retry(a)
    run.replay()
    run.complete(a, "A!")
    timer = run.replay().timer()

    assert [a.task_ids, b.task_ids, [timer.task_id]] == [[0, 3], [1], [4]]
    done = run.fire(timer).replay()
    assert done.output == [["A!", "B!"], True]


def test_event_wins_race_and_cancelled_timer_is_not_pending() -> None:
    run = scenario(waits)
    first = run.replay()
    assert [w.kind for w in first.new] == ["event", "timer"]
    run.raise_event("Go", {"n": 1})

    done = run.replay()

    assert done.output == {"n": 1}
    assert first.timer().canceled
    assert run.pending() == []


def test_timer_fires_at_its_time() -> None:
    run = scenario(waits)
    timer = run.replay().timer()

    done = run.fire(timer).replay()

    assert done.output == "timeout"
    assert run.now == timer.fire_at


def test_non_deterministic_orchestrator_is_caught() -> None:
    calls = {"n": 0}

    def flip(context: df.DurableOrchestrationContext) -> Any:
        calls["n"] += 1
        yield context.call_activity("A" if calls["n"] == 1 else "B", None)
        yield context.call_activity("C", None)

    run = scenario(flip)
    run.complete(run.replay().activity("A"))

    with pytest.raises(AssertionError, match="non-deterministic"):
        run.replay()


def test_replay_without_new_events_is_refused() -> None:
    run = scenario(retried, "x")
    run.replay()

    with pytest.raises(AssertionError, match="nothing happened"):
        run.replay()


def test_actions_are_recorded_with_their_types() -> None:
    run = scenario(parallel_retried)

    first = run.replay()

    assert first.new_action_types == [ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_ACTIVITY]
    assert first.activity("A").max_attempts == 3
    assert first.activity("A").retry_interval == timedelta(seconds=2)
    assert not first.activity("B").retryable
