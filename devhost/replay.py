"""Replay an orchestrator through the real Durable Functions SDK, as the extension does.

The Durable extension never runs orchestrator code itself: it sends the worker a context JSON
(history + input), the SDK replays the generator against that history and answers with the
actions the orchestrator wants next. This module builds that context JSON, calls the real SDK
handle and decodes the answer, so tests (and the local host) drive orchestrators exactly like
Azure does.

Conventions that match what the extension sends:

* Every ``Input`` / ``Result`` in history events is a JSON *string*; the builder methods take
  Python values and encode them.
* Scheduled work (``TaskScheduled``, ``TimerCreated``, ``SubOrchestrationInstanceCreated``) gets
  consecutive sequence ids in the order the orchestrator asked for it; completion events point
  back at those ids (``TaskScheduledId`` / ``TimerId``).
* Events of finished episodes are ``IsPlayed``; the events after the last ``OrchestratorStarted``
  are new.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.functions.decorators.function_app import Function, FunctionBuilder

__all__ = [
    "ActionType",
    "HistoryBuilder",
    "HistoryEventType",
    "ReplayResult",
    "flatten_actions",
    "format_timestamp",
    "make_event",
    "parse_timestamp",
    "replay",
    "resolve_orchestrator_handle",
]

# ReplaySchema V3 (value 2) plus the timer limits of the Azure Storage backend: the SDK then
# splits timers longer than six days into chained three-day timers, as it does on Azure.
UPPER_SCHEMA_VERSION: Final = 2
MAXIMUM_SHORT_TIMER_DURATION: Final = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL_DURATION: Final = "3.00:00:00"

_OUT_OF_PROC_LABEL: Final = "$OutOfProcData$:"
_COMPOUND_ACTION_TYPES: Final = frozenset({int(ActionType.WHEN_ALL), int(ActionType.WHEN_ANY)})
_DEFAULT_START: Final = datetime(2024, 1, 1, tzinfo=UTC)

OrchestratorHandle = Callable[[Any], str]


def format_timestamp(moment: datetime) -> str:
    """Render a moment as the extension does: UTC, ISO 8601, ``Z`` suffix."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: datetime | str) -> datetime:
    """Accept a datetime or an ISO 8601 string; naive values are taken as UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _to_json(value: Any) -> str:
    return json.dumps(value)


def make_event(
    event_type: int,
    *,
    timestamp: datetime | str,
    event_id: int = -1,
    is_played: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """One history event dict in the extension's shape (PascalCase keys)."""
    stamp = timestamp if isinstance(timestamp, str) else format_timestamp(timestamp)
    event: dict[str, Any] = {
        "EventType": int(event_type),
        "EventId": event_id,
        "IsPlayed": is_played,
        "Timestamp": stamp,
    }
    event.update(fields)
    return event


class HistoryBuilder:
    """Builds a Durable history event list the way the extension hands it to the worker.

    Methods that schedule work return the sequence id the SDK gives that work, so tests can
    complete it later; the others return ``self`` for chaining. The clock starts at
    ``start`` (2024-01-01T00:00:00Z by default); ``orchestrator_started(at)`` moves it, which is
    what ``context.current_utc_datetime`` follows.
    """

    def __init__(self, start: datetime | str | None = None) -> None:
        self._events: list[dict[str, Any]] = []
        self._next_task_id = 0
        self._now = parse_timestamp(start) if start is not None else _DEFAULT_START
        self._timer_fire_at: dict[int, str] = {}

    @property
    def events(self) -> list[dict[str, Any]]:
        """The history so far (copies: mutating them does not change the builder)."""
        return [dict(event) for event in self._events]

    @property
    def now(self) -> datetime:
        return self._now

    @property
    def next_task_id(self) -> int:
        """The sequence id the next scheduled task, timer or sub-orchestration will get."""
        return self._next_task_id

    def advance(self, delta: timedelta) -> HistoryBuilder:
        """Move the clock forward without adding an event."""
        self._now += delta
        return self

    def _add(self, event_type: int, event_id: int = -1, **fields: Any) -> dict[str, Any]:
        event = make_event(event_type, timestamp=self._now, event_id=event_id, **fields)
        self._events.append(event)
        return event

    def _allocate_task_id(self) -> int:
        task_id = self._next_task_id
        self._next_task_id += 1
        return task_id

    def orchestrator_started(self, at: datetime | str | None = None) -> HistoryBuilder:
        """Start an episode; without ``at`` the clock moves one second forward."""
        self._now = parse_timestamp(at) if at is not None else self._now + timedelta(seconds=1)
        self._add(HistoryEventType.ORCHESTRATOR_STARTED)
        return self

    def execution_started(self, name: str, input: Any = None) -> HistoryBuilder:
        self._add(
            HistoryEventType.EXECUTION_STARTED,
            Name=name,
            Input=None if input is None else _to_json(input),
            Version=None,
        )
        return self

    def task_scheduled(self, name: str, input: Any = None) -> int:
        task_id = self._allocate_task_id()
        self._add(
            HistoryEventType.TASK_SCHEDULED,
            task_id,
            Name=name,
            Input=None if input is None else _to_json(input),
        )
        return task_id

    def task_completed(self, task_id: int, result: Any = None) -> HistoryBuilder:
        self._add(HistoryEventType.TASK_COMPLETED, TaskScheduledId=task_id, Result=_to_json(result))
        return self

    def task_failed(self, task_id: int, reason: str, details: str | None = None) -> HistoryBuilder:
        self._add(
            HistoryEventType.TASK_FAILED, TaskScheduledId=task_id, Reason=reason, Details=details
        )
        return self

    def timer_created(self, fire_at: datetime | str) -> int:
        timer_id = self._allocate_task_id()
        stamp = format_timestamp(parse_timestamp(fire_at))
        self._timer_fire_at[timer_id] = stamp
        self._add(HistoryEventType.TIMER_CREATED, timer_id, FireAt=stamp)
        return timer_id

    def timer_fired(self, timer_id: int, fire_at: datetime | str | None = None) -> HistoryBuilder:
        if fire_at is None:
            stamp = self._timer_fire_at.get(timer_id, format_timestamp(self._now))
        else:
            stamp = format_timestamp(parse_timestamp(fire_at))
        self._add(HistoryEventType.TIMER_FIRED, TimerId=timer_id, FireAt=stamp)
        return self

    def sub_orchestration_created(self, name: str, instance_id: str, input: Any = None) -> int:
        task_id = self._allocate_task_id()
        self._add(
            HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
            task_id,
            Name=name,
            InstanceId=instance_id,
            Input=None if input is None else _to_json(input),
        )
        return task_id

    def sub_orchestration_completed(self, task_id: int, result: Any = None) -> HistoryBuilder:
        self._add(
            HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
            TaskScheduledId=task_id,
            Result=_to_json(result),
        )
        return self

    def sub_orchestration_failed(
        self, task_id: int, reason: str, details: str | None = None
    ) -> HistoryBuilder:
        self._add(
            HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
            TaskScheduledId=task_id,
            Reason=reason,
            Details=details,
        )
        return self

    def event_raised(self, name: str, input: Any = None) -> HistoryBuilder:
        self._add(HistoryEventType.EVENT_RAISED, Name=name, Input=_to_json(input))
        return self

    def orchestrator_completed(self) -> HistoryBuilder:
        """End the episode: everything up to here has now been played."""
        self._add(HistoryEventType.ORCHESTRATOR_COMPLETED)
        for event in self._events:
            event["IsPlayed"] = True
        return self


@dataclass(frozen=True)
class ReplayResult:
    """What one replay produced.

    ``is_done`` is the SDK's flag: True only when the orchestrator returned. A raised exception
    gives ``is_done=False`` and ``error`` set (see ``failed``). ``actions`` is every action the
    orchestrator has asked for since it started, in order, with ``WhenAll`` / ``WhenAny``
    expanded into their children; the actions already handled by earlier episodes come first.
    """

    is_done: bool
    output: Any
    error: str | None
    custom_status: Any
    actions: list[dict[str, Any]]
    state: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def finished(self) -> bool:
        """Completed or failed: nothing more will happen in this instance."""
        return self.is_done or self.failed

    def new_actions(self, already_seen: int) -> list[dict[str, Any]]:
        """The actions beyond the first ``already_seen`` ones (those earlier episodes handled)."""
        return [dict(action) for action in self.actions[already_seen:]]


def flatten_actions(action_groups: Iterable[Any]) -> list[dict[str, Any]]:
    """Flatten the SDK's ``actions`` payload (lists of lists, compound actions) in order."""
    flat: list[dict[str, Any]] = []

    def visit(item: Any) -> None:
        if isinstance(item, list):
            for child in item:
                visit(child)
        elif isinstance(item, Mapping):
            if item.get("actionType") in _COMPOUND_ACTION_TYPES:
                for child in item.get("compoundActions", []):
                    visit(child)
            else:
                flat.append(dict(item))

    visit(list(action_groups))
    return flat


def resolve_orchestrator_handle(orchestrator: Any) -> OrchestratorHandle:
    """Find the SDK handle behind whatever form the orchestrator was given in.

    Accepted: the handle ``df.Orchestrator.create(fn)`` returns (what ``DFApp`` registers and
    ``Function.get_user_function()`` gives back), the ``FunctionBuilder`` / ``Function`` the
    ``@app.orchestration_trigger`` decorator leaves in the module, or a plain generator function.
    """
    if isinstance(orchestrator, FunctionBuilder):
        orchestrator = orchestrator._function
    if isinstance(orchestrator, Function):
        orchestrator = orchestrator.get_user_function()
    if callable(orchestrator) and hasattr(orchestrator, "orchestrator_function"):
        handle: OrchestratorHandle = orchestrator
        return handle
    if callable(orchestrator):
        created: OrchestratorHandle = df.Orchestrator.create(orchestrator)
        return created
    raise TypeError(f"not an orchestrator: {orchestrator!r}")


def _execution_started_input(history: list[dict[str, Any]]) -> Any:
    for event in history:
        if event.get("EventType") == HistoryEventType.EXECUTION_STARTED:
            return event.get("Input")
    return None


def build_context_json(
    *,
    instance_id: str,
    history: list[dict[str, Any]],
    input_json: str | None,
    parent_instance_id: str | None,
) -> str:
    """The orchestration trigger payload the extension sends the Python worker."""
    context = {
        "history": history,
        "instanceId": instance_id,
        "isReplaying": any(event.get("IsPlayed") for event in history),
        "parentInstanceId": parent_instance_id,
        # The extension hands over the input as the JSON text the client sent; the SDK's
        # get_input() decodes it.
        "input": input_json,
        "upperSchemaVersion": UPPER_SCHEMA_VERSION,
        "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
        "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL_DURATION,
    }
    return json.dumps(context)


def _result_from_state(state: dict[str, Any], error: str | None = None) -> ReplayResult:
    return ReplayResult(
        is_done=bool(state.get("isDone", False)) and error is None,
        output=state.get("output"),
        error=error,
        custom_status=state.get("customStatus"),
        actions=flatten_actions(state.get("actions", [])),
        state=state,
    )


def _result_from_exception(exc: Exception) -> ReplayResult:
    message = str(exc)
    head, label, payload = message.rpartition(_OUT_OF_PROC_LABEL)
    if label:
        try:
            state = json.loads(payload)
        except json.JSONDecodeError:
            state = None
        if isinstance(state, dict):
            error = state.get("error") or head.rstrip() or type(exc).__name__
            return _result_from_state(state, error=str(error))
    # Raised before the SDK could build its state (not a generator, malformed history).
    return _result_from_state({}, error=message or type(exc).__name__)


def replay(
    orchestrator: Any,
    *,
    instance_id: str,
    history: Iterable[Mapping[str, Any]],
    input: Any = None,
    parent_instance_id: str | None = None,
) -> ReplayResult:
    """Replay ``orchestrator`` over ``history`` through the real SDK.

    ``input`` is the orchestration input as a Python value; when omitted (None) the ``Input``
    of the history's ``ExecutionStarted`` event is used, which is what the host does. An
    exception raised by the orchestrator becomes a result with ``error`` set instead of
    propagating.
    """
    handle = resolve_orchestrator_handle(orchestrator)
    events = [dict(event) for event in history]
    input_json = _execution_started_input(events) if input is None else _to_json(input)
    body = build_context_json(
        instance_id=instance_id,
        history=events,
        input_json=input_json,
        parent_instance_id=parent_instance_id,
    )
    try:
        state_json = handle(func.OrchestrationContext(body))
    except Exception as exc:  # the orchestrator failing is a result, not an error here
        return _result_from_exception(exc)
    return _result_from_state(json.loads(state_json))
