"""Drive the store + orchestration runner by hand: the test plays the activity workers and clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from devhost.activity_runner import encode_output
from devhost.app_loader import AppFunction, index_functions
from devhost.durable_store import DurableStore, NewInstance, WorkItem
from devhost.orchestration_runner import OrchestrationRunner
from devhost.replay import HistoryEventType, make_event

SCHEDULING_EVENTS = {
    HistoryEventType.TASK_SCHEDULED,
    HistoryEventType.TIMER_CREATED,
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def orchestrators(*functions: Callable[..., Any]) -> dict[str, AppFunction]:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    for function in functions:
        app.orchestration_trigger(context_name="context")(function)
    return {f.name: f for f in index_functions(app)}


class Harness:
    def __init__(self, state_dir: Path, *functions: Callable[..., Any]) -> None:
        self.state_dir = state_dir
        self.clock = Clock()
        self.functions = orchestrators(*functions)
        self.store = DurableStore(state_dir)
        self.runner = OrchestrationRunner(self.store, self.functions, clock=self.clock)

    def reopen(self) -> None:
        """What a restarted host sees: a fresh store and runner on the same state directory."""
        self.store.close()
        self.store = DurableStore(self.state_dir)
        self.runner = OrchestrationRunner(self.store, self.functions, clock=self.clock)

    def start(self, name: str, instance_id: str, input_: Any = None) -> None:
        import json

        new = NewInstance(instance_id, name, None if input_ is None else json.dumps(input_))
        self.store.create_instance(new, self.clock())

    def settle(self) -> int:
        """Run episodes until no inbox has events; returns how many episodes ran."""
        total = 0
        for _ in range(100):
            outcomes = self.runner.run_pending()
            if not outcomes and not self.store.instances_with_inbox():
                return total
            total += len(outcomes)
        raise AssertionError("episodes never settled")

    def work(self, instance_id: str | None = None) -> dict[int, WorkItem]:
        return {
            w.task_id: w
            for w in self.store.pending_work_items()
            if instance_id is None or w.instance_id == instance_id
        }

    def complete(self, item: WorkItem, result: Any) -> None:
        event = make_event(
            HistoryEventType.TASK_COMPLETED,
            timestamp=self.clock(),
            TaskScheduledId=item.task_id,
            Result=encode_output(result),
        )
        assert self.store.complete_work_item(item, event)

    def fail(self, item: WorkItem, reason: str) -> None:
        event = make_event(
            HistoryEventType.TASK_FAILED,
            timestamp=self.clock(),
            TaskScheduledId=item.task_id,
            Reason=reason,
            Details=None,
        )
        assert self.store.complete_work_item(item, event)

    def fire_timers(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return self.store.fire_due_timers(self.clock())

    def scheduling(self, instance_id: str) -> list[tuple[str, int]]:
        """(event type, sequence id) of every scheduling event in the history, in order."""
        return [
            (HistoryEventType(e["EventType"]).name, e["EventId"])
            for e in self.store.history(instance_id)
            if e["EventType"] in SCHEDULING_EVENTS
        ]

    def status(self, instance_id: str) -> str:
        instance = self.store.get_instance(instance_id)
        assert instance is not None
        return instance.status.value
