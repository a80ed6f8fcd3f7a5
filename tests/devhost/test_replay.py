"""The replay driver against the real SDK, with tiny orchestrators."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.replay import ActionType, HistoryBuilder, HistoryEventType, replay


def chain(context: df.DurableOrchestrationContext) -> Any:
    first = yield context.call_activity("Hello", context.get_input())
    second = yield context.call_activity("Hello", first)
    return [first, second]


def fan_out(context: df.DurableOrchestrationContext) -> Any:
    tasks = [context.call_activity("Work", n) for n in range(3)]
    results = yield context.task_all(tasks)
    return sum(results)


def race(context: df.DurableOrchestrationContext) -> Any:
    deadline = context.current_utc_datetime + timedelta(seconds=30)
    timeout = context.create_timer(deadline)
    finished = context.wait_for_external_event("Finished")
    winner = yield context.task_any([finished, timeout])
    if winner == finished:
        timeout.cancel()
        return {"event": finished.result}
    return "timed out"


RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=2)


def with_retry(context: df.DurableOrchestrationContext) -> Any:
    try:
        result = yield context.call_activity_with_retry("Flaky", RETRY, "x")
    except Exception as exc:
        return f"gave up: {exc}"
    return result


def parent(context: df.DurableOrchestrationContext) -> Any:
    child = yield context.call_sub_orchestrator("Child", {"n": 1}, "parent:child")
    return {"child": child}


def broken(context: df.DurableOrchestrationContext) -> Any:
    value = yield context.call_activity("Hello", None)
    raise ValueError(f"cannot use {value}")


def start(name: str, input_: Any = None) -> HistoryBuilder:
    builder = HistoryBuilder()
    builder.orchestrator_started().execution_started(name, input_)
    return builder


def test_first_episode_schedules_first_activity_with_input_from_history() -> None:
    history = start("chain", {"who": "ada"})

    result = replay(chain, instance_id="job-1", history=history.events)

    assert not result.is_done
    assert result.error is None
    assert result.actions == [
        {"actionType": ActionType.CALL_ACTIVITY, "functionName": "Hello", "input": '{"who": "ada"}'}
    ]


def test_explicit_input_overrides_history() -> None:
    history = start("chain", {"who": "ada"})

    result = replay(chain, instance_id="job-1", history=history.events, input="bob")

    assert result.actions[0]["input"] == '"bob"'


def test_activity_chain_completes_and_new_actions_skips_seen_ones() -> None:
    history = start("chain", "a")
    first = history.task_scheduled("Hello", "a")
    history.orchestrator_completed().orchestrator_started().task_completed(first, "A!")

    middle = replay(chain, instance_id="job-1", history=history.events)
    assert len(middle.actions) == 2
    assert middle.new_actions(1) == [
        {"actionType": ActionType.CALL_ACTIVITY, "functionName": "Hello", "input": '"A!"'}
    ]

    second = history.task_scheduled("Hello", "A!")
    history.orchestrator_completed().orchestrator_started().task_completed(second, "A!!")
    done = replay(chain, instance_id="job-1", history=history.events)

    assert done.is_done
    assert done.output == ["A!", "A!!"]
    assert done.new_actions(2) == []


def test_fan_out_is_flattened_in_scheduling_order() -> None:
    history = start("fan_out")

    result = replay(fan_out, instance_id="f", history=history.events)

    assert [a["input"] for a in result.actions] == ["0", "1", "2"]
    assert all(a["actionType"] == ActionType.CALL_ACTIVITY for a in result.actions)


def test_fan_out_completes_whatever_order_results_arrive_in() -> None:
    history = start("fan_out")
    ids = [history.task_scheduled("Work", n) for n in range(3)]
    history.orchestrator_completed().orchestrator_started()
    for task_id in reversed(ids):
        history.task_completed(task_id, task_id * 10)

    result = replay(fan_out, instance_id="f", history=history.events)

    assert result.is_done
    assert result.output == 30


def test_race_event_wins_and_timer_is_cancelled() -> None:
    history = start("race")
    fire_at = history.now + timedelta(seconds=30)
    history.timer_created(fire_at)
    history.orchestrator_completed().orchestrator_started().event_raised("Finished", {"ok": True})

    result = replay(race, instance_id="r", history=history.events)

    assert result.is_done
    assert result.output == {"event": {"ok": True}}
    timer = next(a for a in result.actions if a["actionType"] == ActionType.CREATE_TIMER)
    assert timer["isCanceled"] is True


def test_race_timer_wins() -> None:
    history = start("race")
    timer = history.timer_created(history.now + timedelta(seconds=30))
    history.orchestrator_completed()
    history.orchestrator_started(history.now + timedelta(seconds=31)).timer_fired(timer)

    result = replay(race, instance_id="r", history=history.events)

    assert result.is_done
    assert result.output == "timed out"


def test_event_raised_before_the_orchestrator_waits_is_kept_for_later() -> None:
    history = start("race").event_raised("Finished", "early")

    result = replay(race, instance_id="r", history=history.events)

    assert result.is_done
    assert result.output == {"event": "early"}


def test_retry_reschedules_after_the_retry_timer() -> None:
    history = start("with_retry")
    first = history.task_scheduled("Flaky", "x")
    history.orchestrator_completed().orchestrator_started()
    history.task_failed(first, "boom", "trace")
    retry_timer = history.timer_created(history.now + timedelta(seconds=1))
    history.orchestrator_completed().orchestrator_started(history.now + timedelta(seconds=2))
    history.timer_fired(retry_timer)
    second = history.task_scheduled("Flaky", "x")
    history.orchestrator_completed().orchestrator_started().task_completed(second, "fine")

    result = replay(with_retry, instance_id="w", history=history.events)

    assert (first, retry_timer, second) == (0, 1, 2)
    assert result.is_done
    assert result.output == "fine"
    assert [a["actionType"] for a in result.actions] == [ActionType.CALL_ACTIVITY_WITH_RETRY]


def test_retry_gives_up_only_after_the_timer_following_the_last_attempt() -> None:
    history = start("with_retry")
    first = history.task_scheduled("Flaky", "x")
    history.orchestrator_completed().orchestrator_started().task_failed(first, "boom 1")
    timer = history.timer_created(history.now + timedelta(seconds=1))
    history.orchestrator_completed().orchestrator_started(history.now + timedelta(seconds=2))
    history.timer_fired(timer)
    second = history.task_scheduled("Flaky", "x")
    history.orchestrator_completed().orchestrator_started().task_failed(second, "boom 2")

    after_last_failure = replay(with_retry, instance_id="w", history=history.events)
    assert not after_last_failure.finished, "the SDK still waits for one more retry timer"

    extra_timer = history.timer_created(history.now + timedelta(seconds=1))
    history.orchestrator_completed().orchestrator_started(history.now + timedelta(seconds=2))
    history.timer_fired(extra_timer)
    result = replay(with_retry, instance_id="w", history=history.events)

    assert (first, timer, second, extra_timer) == (0, 1, 2, 3)
    assert result.is_done
    assert result.output.startswith("gave up: boom 2")


def test_sub_orchestration_result_flows_back() -> None:
    history = start("parent")
    first = replay(parent, instance_id="parent", history=history.events)
    assert first.actions == [
        {
            "actionType": ActionType.CALL_SUB_ORCHESTRATOR,
            "functionName": "Child",
            "input": '{"n": 1}',
            "instanceId": "parent:child",
            "version": None,
        }
    ]
    child = history.sub_orchestration_created("Child", "parent:child", {"n": 1})
    history.orchestrator_completed().orchestrator_started()
    history.sub_orchestration_completed(child, 42)

    result = replay(parent, instance_id="parent", history=history.events)

    assert result.is_done
    assert result.output == {"child": 42}


def test_sub_orchestration_failure_raises_in_parent() -> None:
    history = start("parent")
    child = history.sub_orchestration_created("Child", "parent:child")
    history.orchestrator_completed().orchestrator_started()
    history.sub_orchestration_failed(child, "child broke", "details")

    result = replay(parent, instance_id="parent", history=history.events)

    assert result.failed
    assert not result.is_done
    assert "child broke" in (result.error or "")


def test_orchestrator_exception_is_a_failed_result() -> None:
    history = start("broken")
    task = history.task_scheduled("Hello")
    history.orchestrator_completed().orchestrator_started().task_completed(task, "it")

    result = replay(broken, instance_id="b", history=history.events)

    assert result.failed
    assert result.finished
    assert result.error == "cannot use it"
    assert len(result.actions) == 1


def test_custom_status_and_timestamps_follow_the_history_clock() -> None:
    def stamp(context: df.DurableOrchestrationContext) -> Any:
        context.set_custom_status({"at": context.current_utc_datetime.isoformat()})
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=5))
        return "ok"

    history = HistoryBuilder(start="2030-05-01T12:00:00Z")
    history.orchestrator_started().execution_started("stamp")

    result = replay(stamp, instance_id="s", history=history.events)

    assert result.custom_status == {"at": "2030-05-01T12:00:01+00:00"}
    assert result.actions[0]["fireAt"] == "2030-05-01T12:00:06.000000Z"


def test_builder_marks_finished_episodes_played_and_numbers_tasks() -> None:
    history = start("x")
    assert history.task_scheduled("A") == 0
    assert history.timer_created(history.now) == 1
    assert history.sub_orchestration_created("C", "c") == 2
    history.orchestrator_completed().orchestrator_started()
    events = history.events

    assert [e["IsPlayed"] for e in events] == [True] * 6 + [False]
    assert events[0]["EventType"] == HistoryEventType.ORCHESTRATOR_STARTED
    assert [e["EventId"] for e in events[2:5]] == [0, 1, 2]


def test_accepts_what_dfapp_registered() -> None:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def Registered(context: df.DurableOrchestrationContext) -> Any:
        value = yield context.call_activity("Hello", context.get_input())
        return value

    (function,) = app.get_functions()
    history = start("Registered", 7)
    task = history.task_scheduled("Hello", 7)
    history.orchestrator_completed().orchestrator_started().task_completed(task, 8)

    for form in (Registered, function, function.get_user_function()):
        result = replay(form, instance_id="d", history=history.events)
        assert result.output == 8


def test_rejects_non_orchestrators() -> None:
    with pytest.raises(TypeError):
        replay(42, instance_id="x", history=start("x").events)
