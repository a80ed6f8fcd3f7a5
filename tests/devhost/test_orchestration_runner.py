"""Episodes over the real SDK and a real SQLite store; the test plays activities and the clock."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from tests.devhost.durable_helpers import Harness

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)


def fan_out(context: df.DurableOrchestrationContext) -> Any:
    results = yield context.task_all(
        [
            context.call_activity_with_retry("Flaky", RETRY, "x"),
            context.call_activity("Work", 1),
            context.call_activity("Work", 2),
        ]
    )
    return results


def interleaved(context: df.DurableOrchestrationContext) -> Any:
    retried = context.call_activity_with_retry("Flaky", RETRY, "x")
    step = context.call_activity("Work", 1)
    yield context.task_any([step, retried])
    extra = context.call_activity("Work", 2)
    results = yield context.task_all([extra, retried])
    return results


def waiter(context: df.DurableOrchestrationContext) -> Any:
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
    finished = context.wait_for_external_event("Finished")
    winner = yield context.task_any([finished, timeout])
    if winner == finished:
        timeout.cancel()
        return {"event": finished.result}
    return "timed out"


def parent(context: df.DurableOrchestrationContext) -> Any:
    try:
        result = yield context.call_sub_orchestrator("child", context.get_input())
    except Exception as exc:
        return f"child failed: {exc}"
    return {"child": result}


def child(context: df.DurableOrchestrationContext) -> Any:
    value = context.get_input()
    if value == "boom":
        raise ValueError("child exploded")
    doubled = yield context.call_activity("Double", value)
    return doubled


def give_up(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_activity_with_retry(
            "Flaky",
            df.RetryOptions(first_retry_interval_in_milliseconds=500, max_number_of_attempts=2),
        )
    except Exception as exc:
        return f"gave up: {str(exc).splitlines()[0]}"
    return "ok"


def counter(context: df.DurableOrchestrationContext) -> Any:
    count = context.get_input()
    yield context.call_activity("Tick", count)
    if count < 2:
        context.continue_as_new(count + 1)
        return None
    return count


def test_fan_out_with_a_retrying_failure_keeps_sdk_and_host_ids_in_step(tmp_path: Path) -> None:
    h = Harness(tmp_path, fan_out)
    h.start("fan_out", "f")
    h.settle()
    work = h.work("f")
    assert sorted(work) == [0, 1, 2]

    h.fail(work[0], "flaky down")
    h.settle()
    assert h.scheduling("f")[-1] == ("TIMER_CREATED", 3)

    h.complete(work[1], "one")
    h.settle()
    assert h.fire_timers(1.1) == 1
    h.settle()
    retry_attempt = h.work("f")
    assert sorted(retry_attempt) == [2, 4]
    assert retry_attempt[4].name == "Flaky"

    h.complete(retry_attempt[4], "flaky")
    h.complete(retry_attempt[2], "two")
    h.settle()

    assert h.status("f") == "Completed"
    instance = h.store.get_instance("f")
    assert instance is not None and json.loads(instance.output or "") == ["flaky", "one", "two"]
    assert h.scheduling("f") == [
        ("TASK_SCHEDULED", 0),
        ("TASK_SCHEDULED", 1),
        ("TASK_SCHEDULED", 2),
        ("TIMER_CREATED", 3),
        ("TASK_SCHEDULED", 4),
    ]


@pytest.mark.parametrize("failure_first", [True, False])
def test_failure_and_completion_in_one_inbox_batch(tmp_path: Path, failure_first: bool) -> None:
    """The completion lets the orchestrator schedule new work in the same replay as the failure
    the retry timer is for: whichever order they arrive in, both sides must number alike."""
    h = Harness(tmp_path, interleaved)
    h.start("interleaved", "i")
    h.settle()
    by_name = {w.name: w for w in h.work("i").values()}
    # task_any([step, retried]) numbers its children in order: step 0, the retried call 1.
    assert (by_name["Work"].task_id, by_name["Flaky"].task_id) == (0, 1)
    if failure_first:
        h.fail(by_name["Flaky"], "flaky down")
        h.complete(by_name["Work"], "one")
    else:
        h.complete(by_name["Work"], "one")
        h.fail(by_name["Flaky"], "flaky down")
    # An episode ends with a retry-relevant event, so the failure-first order takes two.
    assert h.settle() == (2 if failure_first else 1)
    expected = (
        [("TIMER_CREATED", 2), ("TASK_SCHEDULED", 3)]
        if failure_first
        else [("TASK_SCHEDULED", 2), ("TIMER_CREATED", 3)]
    )
    assert h.scheduling("i")[2:] == expected

    extra = next(w for w in h.work("i").values() if w.name == "Work")
    h.complete(extra, "two")
    h.fire_timers(1.1)
    h.settle()
    (attempt,) = h.work("i").values()
    assert (attempt.name, attempt.task_id) == ("Flaky", 4)
    h.complete(attempt, "flaky")
    h.settle()

    instance = h.store.get_instance("i")
    assert instance is not None
    assert instance.status.value == "Completed"
    assert json.loads(instance.output or "") == ["two", "flaky"]


def test_retries_give_up_after_the_timer_that_follows_the_last_attempt(tmp_path: Path) -> None:
    h = Harness(tmp_path, give_up)
    h.start("give_up", "g")
    h.settle()
    for attempt in range(2):
        (item,) = h.work("g").values()
        h.fail(item, f"failure {attempt}")
        h.settle()
        assert h.status("g") == "Running"
        assert h.fire_timers(0.6) == 1
        h.settle()

    assert h.work("g") == {}
    assert h.status("g") == "Completed"
    instance = h.store.get_instance("g")
    assert instance is not None and instance.output == json.dumps("gave up: failure 1 ")
    assert [kind for kind, _ in h.scheduling("g")] == [
        "TASK_SCHEDULED",
        "TIMER_CREATED",
        "TASK_SCHEDULED",
        "TIMER_CREATED",
    ]


def test_event_raised_before_the_orchestrator_waits_is_delivered(tmp_path: Path) -> None:
    from devhost.replay import HistoryEventType, make_event

    h = Harness(tmp_path, waiter)
    h.start("waiter", "w")
    early = make_event(
        HistoryEventType.EVENT_RAISED, timestamp=h.clock(), Name="Finished", Input='"early"'
    )
    h.store.deliver("w", early)
    h.settle()

    assert h.status("w") == "Completed"
    instance = h.store.get_instance("w")
    assert instance is not None and json.loads(instance.output or "") == {"event": "early"}


def test_event_wins_the_race_and_cancels_the_timer(tmp_path: Path) -> None:
    from devhost.replay import HistoryEventType, make_event

    h = Harness(tmp_path, waiter)
    h.start("waiter", "w")
    h.settle()
    assert h.store.next_timer_due() is not None

    h.store.deliver(
        "w",
        make_event(HistoryEventType.EVENT_RAISED, timestamp=h.clock(), Name="Finished", Input="7"),
    )
    h.settle()

    assert h.status("w") == "Completed"
    assert h.store.next_timer_due() is None
    assert h.fire_timers(60) == 0


def test_timer_wins_the_race(tmp_path: Path) -> None:
    h = Harness(tmp_path, waiter)
    h.start("waiter", "w")
    h.settle()
    assert h.fire_timers(29) == 0
    assert h.fire_timers(1) == 1
    h.settle()

    instance = h.store.get_instance("w")
    assert instance is not None
    assert (instance.status.value, instance.output) == ("Completed", json.dumps("timed out"))


def test_sub_orchestration_result_reaches_the_parent(tmp_path: Path) -> None:
    h = Harness(tmp_path, parent, child)
    h.start("parent", "p", 21)
    h.settle()
    (item,) = h.work().values()
    assert item.instance_id == "p:0000"
    h.complete(item, 42)
    h.settle()

    assert h.status("p:0000") == "Completed"
    parent_instance = h.store.get_instance("p")
    assert parent_instance is not None
    assert parent_instance.status.value == "Completed"
    assert json.loads(parent_instance.output or "") == {"child": 42}


def test_failed_sub_orchestration_raises_in_the_parent(tmp_path: Path) -> None:
    h = Harness(tmp_path, parent, child)
    h.start("parent", "p", "boom")
    h.settle()

    child_instance = h.store.get_instance("p:0000")
    assert child_instance is not None and child_instance.status.value == "Failed"
    assert json.loads(child_instance.output or "") == (
        "Orchestrator function 'child' failed: child exploded"
    )
    parent_instance = h.store.get_instance("p")
    assert parent_instance is not None and parent_instance.status.value == "Completed"
    assert "child exploded" in json.loads(parent_instance.output or "")


def test_termination_stops_the_instance_and_drops_its_work(tmp_path: Path) -> None:
    from devhost.replay import HistoryEventType, make_event

    h = Harness(tmp_path, fan_out)
    h.start("fan_out", "t")
    h.settle()
    work = h.work("t")
    h.store.deliver(
        "t", make_event(HistoryEventType.EXECUTION_TERMINATED, timestamp=h.clock(), Input="enough")
    )
    h.settle()

    assert h.status("t") == "Terminated"
    assert h.work("t") == {}
    event = make_event(
        HistoryEventType.TASK_COMPLETED, timestamp=h.clock(), TaskScheduledId=1, Result="1"
    )
    assert not h.store.complete_work_item(work[1], event)


def test_continue_as_new_restarts_with_the_new_input(tmp_path: Path) -> None:
    h = Harness(tmp_path, counter)
    h.start("counter", "c", 0)
    for _ in range(3):
        h.settle()
        (item,) = h.work("c").values()
        h.complete(item, None)
    h.settle()

    instance = h.store.get_instance("c")
    assert instance is not None
    assert (instance.status.value, instance.output, instance.input) == ("Completed", "2", "2")


def test_a_restarted_host_carries_on_from_the_committed_state(tmp_path: Path) -> None:
    h = Harness(tmp_path, fan_out)
    h.start("fan_out", "r")
    h.settle()
    work = h.work("r")
    h.complete(work[1], "one")
    h.reopen()

    h.settle()
    work = h.work("r")
    assert sorted(work) == [0, 2], "completed work must not run again, the rest must"
    h.complete(work[0], "flaky")
    h.complete(work[2], "two")
    h.reopen()
    h.settle()

    instance = h.store.get_instance("r")
    assert instance is not None
    assert json.loads(instance.output or "") == ["flaky", "one", "two"]


def test_unknown_orchestrator_fails_the_instance(tmp_path: Path) -> None:
    h = Harness(tmp_path, fan_out)
    h.start("nope", "n")
    h.settle()

    instance = h.store.get_instance("n")
    assert instance is not None and instance.status.value == "Failed"
    assert "'nope' doesn't exist" in (instance.output or "")


def durable_http(context: df.DurableOrchestrationContext) -> Any:
    response = yield context.call_http("GET", "https://example.invalid/")
    return response


def test_unsupported_durable_features_fail_the_instance_with_a_reason(tmp_path: Path) -> None:
    h = Harness(tmp_path, durable_http)
    h.start("durable_http", "h")
    h.settle()

    instance = h.store.get_instance("h")
    assert instance is not None and instance.status.value == "Failed"
    assert "devhost does not support durable HTTP calls" in (instance.output or "")
    assert h.work("h") == {}
