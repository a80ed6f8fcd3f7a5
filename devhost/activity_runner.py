"""Run activity work items and store each result with its work item, atomically.

Inputs and outputs go through the same converter the Python worker uses for ``activityTrigger``
(``ActivityTriggerConverter``), so an activity sees exactly what it would on Azure. A work item
leaves the store only together with its result: an activity that was running when the host died
runs again on the next start (at-least-once, as on Azure).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.app_loader import AppFunction
from devhost.durable_store import DurableStore, WorkItem
from devhost.function_invoker import FunctionInvoker
from devhost.orchestration_runner import utc_now
from devhost.replay import HistoryEventType, make_event
from devhost.worker_pool import DaemonPool

log = logging.getLogger("devhost.activity")


def decode_input(input_json: str | None) -> Any:
    datum = meta.Datum(type="json", value=input_json if input_json is not None else "null")
    return ActivityTriggerConverter.decode(datum, trigger_metadata=None)


def encode_output(value: Any) -> str:
    datum = ActivityTriggerConverter.encode(value, expected_type=None)
    return str(datum.value)


_DEVHOST_DIR = str(Path(__file__).resolve().parent)


def failure_details(exc: BaseException) -> str:
    """The traceback of the app's code only: the host's own frames say nothing useful."""
    trace = traceback.TracebackException.from_exception(exc)
    trace.stack = traceback.StackSummary.from_list(
        [frame for frame in trace.stack if not frame.filename.startswith(_DEVHOST_DIR)]
    )
    return "".join(trace.format())


def failure_reason(name: str, exc: BaseException) -> str:
    return f"Activity function '{name}' failed: {type(exc).__name__}: {exc}"


class ActivityRunner:
    def __init__(
        self,
        *,
        store: DurableStore,
        activities: Mapping[str, AppFunction],
        invoker: FunctionInvoker,
        pool: DaemonPool,
        max_concurrency: int,
        on_result: Callable[[], None],
    ) -> None:
        self._store = store
        self._activities = dict(activities)
        self._invoker = invoker
        self._pool = pool
        self._max = max_concurrency
        self._on_result = on_result
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def dispatch(self) -> int:
        """Start pending work items, up to the concurrency limit. Returns how many started."""
        capacity = self._max - len(self._in_flight)
        if capacity <= 0:
            return 0
        items = await asyncio.to_thread(self._store.pending_work_items)
        started = 0
        for item in items:
            if started >= capacity:
                break
            if item.id in self._in_flight:
                continue
            task = asyncio.create_task(self._run(item), name=f"activity-{item.name}-{item.id}")
            self._in_flight[item.id] = task
            task.add_done_callback(self._forget)
            started += 1
        return started

    def _forget(self, task: asyncio.Task[None]) -> None:
        for key, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[key]

    async def _run(self, item: WorkItem) -> None:
        started = time.monotonic()
        function = self._activities.get(item.name)
        outcome = "completed"
        if function is None:
            outcome = "failed (no such activity)"
            event = make_event(
                HistoryEventType.TASK_FAILED,
                timestamp=utc_now(),
                TaskScheduledId=item.task_id,
                Reason=(
                    f"The function '{item.name}' doesn't exist, is disabled, or is not an"
                    " activity function."
                ),
                Details=None,
            )
        else:
            try:
                value = decode_input(item.input)
                invocation = await self._invoker.invoke(function, value, pool=self._pool)
                result_json = encode_output(invocation.return_value)
            except Exception as exc:
                outcome = f"failed ({type(exc).__name__})"
                event = make_event(
                    HistoryEventType.TASK_FAILED,
                    timestamp=utc_now(),
                    TaskScheduledId=item.task_id,
                    Reason=failure_reason(item.name, exc),
                    Details=failure_details(exc),
                )
            else:
                event = make_event(
                    HistoryEventType.TASK_COMPLETED,
                    timestamp=utc_now(),
                    TaskScheduledId=item.task_id,
                    Result=result_json,
                )
        stored = await asyncio.to_thread(self._store.complete_work_item, item, event)
        elapsed_ms = (time.monotonic() - started) * 1000
        if not stored:
            outcome += ", result dropped: the instance no longer waits for it"
        level = logging.INFO if outcome == "completed" else logging.WARNING
        log.log(
            level,
            "activity %s instance=%s task=%d %s in %.0f ms",
            item.name,
            item.instance_id,
            item.task_id,
            outcome,
            elapsed_ms,
        )
        self._on_result()

    async def drain(self, grace_seconds: float) -> int:
        """Wait for running activities; those still running after the grace are abandoned.

        An abandoned activity keeps its work item, so it runs again on the next start.
        Returns how many were abandoned.
        """
        pending = list(self._in_flight.values())
        if not pending:
            return 0
        _, still_running = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=1)
        return len(still_running)
