"""Orchestration episodes: replay through the SDK, turn new actions into history and work.

One episode of an instance takes the events waiting in its inbox, appends ``OrchestratorStarted``
and those events to the history, replays the orchestrator through the real SDK (devhost.replay)
and records, for each action the orchestrator newly asked for, the history event the Durable
extension would write (``TaskScheduled``, ``TimerCreated``, ``SubOrchestrationInstanceCreated``)
with the sequence id the SDK gave that task. The whole episode is committed in one transaction.

Retries (``call_activity_with_retry`` / ``call_sub_orchestrator_with_retry``) are carried out the
way DTFx does, because the SDK's RetryAbleTask replays in lock-step with it: a failed attempt is
followed by a ``TimerCreated`` for the retry interval (next sequence id); when that timer fires
either a new attempt is scheduled (next sequence id) or, once the attempts are used up, nothing
is, and the SDK fails the task. That timer id is allocated while the SDK processes the failure
event, so an episode never goes past such an event: it is always the last of its batch, and the
ids the orchestrator's own new actions took come first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.app_loader import AppFunction
from devhost.durable_store import (
    DurableStore,
    EpisodeCommit,
    InboxEvent,
    InstanceRecord,
    Message,
    NewInstance,
    NewTimer,
    NewWorkItem,
    RuntimeStatus,
    TaskRecord,
)
from devhost.replay import (
    ActionType,
    HistoryEventType,
    ReplayResult,
    format_timestamp,
    make_event,
    parse_timestamp,
    replay,
)

log = logging.getLogger("devhost.orchestration")

_FAILURE_EVENTS = frozenset(
    {int(HistoryEventType.TASK_FAILED), int(HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED)}
)
_UNSUPPORTED_ACTIONS = {
    int(ActionType.CALL_HTTP): "durable HTTP calls (call_http)",
    int(ActionType.CALL_ENTITY): "durable entities (call_entity)",
    int(ActionType.SIGNAL_ENTITY): "durable entities (signal_entity)",
}

KIND_ACTIVITY = "activity"
KIND_SUB_ORCHESTRATION = "suborchestration"
KIND_TIMER = "timer"
KIND_RETRY_TIMER = "retry_timer"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EpisodeOutcome:
    instance_id: str
    name: str
    status: RuntimeStatus
    events_processed: int
    scheduled: dict[str, int]


def orchestrator_failure_message(name: str, error: str) -> str:
    return f"Orchestrator function '{name}' failed: {error}"


@dataclass
class _Plan:
    """The episode's changes, built up action by action."""

    instance: InstanceRecord
    now: datetime
    next_task_id: int
    history: list[dict[str, Any]] = field(default_factory=list)
    work_items: list[NewWorkItem] = field(default_factory=list)
    timers: list[NewTimer] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    retry_states: dict[int, dict[str, Any]] = field(default_factory=dict)
    children: list[NewInstance] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    scheduled: dict[str, int] = field(default_factory=dict)

    def allocate(self) -> int:
        task_id = self.next_task_id
        self.next_task_id += 1
        return task_id

    def count(self, kind: str) -> None:
        self.scheduled[kind] = self.scheduled.get(kind, 0) + 1

    def event(self, event_type: int, event_id: int = -1, **fields: Any) -> None:
        self.history.append(make_event(event_type, timestamp=self.now, event_id=event_id, **fields))

    def to_self(self, event: dict[str, Any]) -> None:
        inst = self.instance
        self.messages.append(Message(inst.instance_id, inst.execution_id, event))


class OrchestrationRunner:
    """Runs episodes for instances that have events waiting. Not thread-safe: one caller."""

    def __init__(
        self,
        store: DurableStore,
        orchestrators: Mapping[str, AppFunction],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._orchestrators = dict(orchestrators)
        self._clock = clock

    def is_orchestrator(self, name: str) -> bool:
        return name in self._orchestrators

    def run_pending(self, should_stop: Callable[[], bool] = lambda: False) -> list[EpisodeOutcome]:
        outcomes: list[EpisodeOutcome] = []
        for instance_id in self._store.instances_with_inbox():
            if should_stop():
                break
            try:
                outcome = self.run_episode(instance_id)
            except Exception:
                # Nothing was committed: the events stay in the inbox and the next pass retries.
                log.exception("episode of instance %s failed inside devhost", instance_id)
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    # ------------------------------------------------------------------ episode

    def run_episode(self, instance_id: str) -> EpisodeOutcome | None:
        instance = self._store.get_instance(instance_id)
        inbox = self._store.inbox(instance_id)
        if instance is None or instance.status.is_terminal:
            # Late events for a finished (or purged) instance have nobody to go to.
            self._store.discard_inbox(instance_id, [e.id for e in inbox])
            return None
        current = [e for e in inbox if e.execution_id == instance.execution_id]
        stale = [e.id for e in inbox if e.execution_id != instance.execution_id]
        if not current:
            self._store.discard_inbox(instance_id, stale)
            return None
        terminate = next(
            (e for e in current if e.event["EventType"] == HistoryEventType.EXECUTION_TERMINATED),
            None,
        )
        if terminate is not None:
            return self._terminate(instance, [e.id for e in inbox], terminate)

        tasks = self._store.tasks(instance_id)
        batch = self._batch(current, tasks)
        history = self._store.history(instance_id)
        for event in history:
            event["IsPlayed"] = True
        now = self._episode_time(history)
        plan = _Plan(instance=instance, now=now, next_task_id=instance.next_task_id)
        plan.event(HistoryEventType.ORCHESTRATOR_STARTED)
        plan.history.extend(dict(e.event, IsPlayed=False) for e in batch)

        result = self._replay(instance, history + plan.history)
        commit = EpisodeCommit(
            instance_id=instance_id,
            execution_id=instance.execution_id,
            consumed_inbox_ids=[e.id for e in batch] + stale,
            new_history=plan.history,
            status=RuntimeStatus.RUNNING,
            updated_at=now,
            custom_status=None
            if result.custom_status is None
            else json.dumps(result.custom_status),
            actions_seen=instance.actions_seen,
        )
        new_actions = result.new_actions(instance.actions_seen)
        result = _refuse_unsupported(result, new_actions)
        continue_as_new = next(
            (a for a in new_actions if a.get("actionType") == ActionType.CONTINUE_AS_NEW), None
        )
        if result.failed:
            self._finish(plan, commit, RuntimeStatus.FAILED, result)
        elif result.is_done and continue_as_new is not None:
            commit.restart = True
            commit.restart_input = continue_as_new.get("input")
        elif result.is_done:
            self._finish(plan, commit, RuntimeStatus.COMPLETED, result)
        else:
            self._plan_next_steps(plan, commit, result, new_actions, tasks, batch)

        plan.event(HistoryEventType.ORCHESTRATOR_COMPLETED)
        if commit.status.is_terminal:
            plan.history.append(commit_completion_event(commit, plan.now))
        commit.next_task_id = plan.next_task_id
        commit.work_items = plan.work_items
        commit.timers = plan.timers
        commit.tasks = plan.tasks
        commit.retry_states = plan.retry_states
        commit.children = plan.children
        commit.messages = plan.messages
        self._store.commit_episode(commit)
        status = RuntimeStatus.RUNNING if commit.restart else commit.status
        return EpisodeOutcome(instance_id, instance.name, status, len(batch), plan.scheduled)

    def _plan_next_steps(
        self,
        plan: _Plan,
        commit: EpisodeCommit,
        result: ReplayResult,
        new_actions: list[dict[str, Any]],
        tasks: Mapping[int, TaskRecord],
        batch: list[InboxEvent],
    ) -> None:
        """The orchestrator is still running: schedule what it newly asked for, then retries."""
        seen = plan.instance.actions_seen
        for index, action in enumerate(new_actions, start=seen):
            self._schedule(plan, action, index)
        tasks_by_id = {**tasks, **{record.task_id: record for record in plan.tasks}}
        if batch and self._is_retry_event(batch[-1].event, tasks_by_id):
            retry_states = {**self._store.retry_states(plan.instance.instance_id)}
            retry_states.update(plan.retry_states)
            self._continue_retry(plan, batch[-1].event, tasks_by_id, retry_states)
        commit.cancelled_timer_actions = [
            index
            for index, action in enumerate(result.actions[:seen])
            if action.get("actionType") == ActionType.CREATE_TIMER and action.get("isCanceled")
        ]
        commit.actions_seen = len(result.actions)

    def _replay(self, instance: InstanceRecord, history: list[dict[str, Any]]) -> ReplayResult:
        function = self._orchestrators.get(instance.name)
        if function is None:
            error = (
                f"The function '{instance.name}' doesn't exist, is disabled, or is not an"
                " orchestrator function."
            )
            return ReplayResult(False, None, error, None, [], {})
        return replay(
            function.func,
            instance_id=instance.instance_id,
            history=history,
            parent_instance_id=instance.parent_instance_id,
        )

    def _episode_time(self, history: list[dict[str, Any]]) -> datetime:
        # current_utc_datetime must never go backwards, even if the wall clock does.
        now = self._clock()
        for event in reversed(history):
            if event["EventType"] == HistoryEventType.ORCHESTRATOR_STARTED:
                previous = parse_timestamp(event["Timestamp"])
                if now <= previous:
                    now = previous + timedelta(milliseconds=1)
                break
        return now

    @staticmethod
    def _is_retry_event(event: Mapping[str, Any], tasks: Mapping[int, TaskRecord]) -> bool:
        event_type = event.get("EventType")
        if event_type in _FAILURE_EVENTS:
            record = tasks.get(event.get("TaskScheduledId", -1))
            return record is not None and record.retry_key is not None
        if event_type == HistoryEventType.TIMER_FIRED:
            record = tasks.get(event.get("TimerId", -1))
            return record is not None and record.kind == KIND_RETRY_TIMER
        return False

    def _batch(self, events: list[InboxEvent], tasks: Mapping[int, TaskRecord]) -> list[InboxEvent]:
        for position, item in enumerate(events):
            if self._is_retry_event(item.event, tasks):
                return events[: position + 1]
        return events

    # --------------------------------------------------------------- scheduling

    def _schedule(self, plan: _Plan, action: Mapping[str, Any], index: int) -> None:
        action_type = action.get("actionType")
        if action_type == ActionType.CALL_ACTIVITY:
            self._schedule_activity(plan, action["functionName"], action.get("input"), None)
        elif action_type == ActionType.CALL_ACTIVITY_WITH_RETRY:
            task_id = self._schedule_activity(plan, action["functionName"], action.get("input"), -1)
            plan.retry_states[task_id] = _retry_state(action, KIND_ACTIVITY)
        elif action_type == ActionType.CALL_SUB_ORCHESTRATOR:
            self._schedule_child(plan, action, None)
        elif action_type == ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY:
            task_id = self._schedule_child(plan, action, -1)
            plan.retry_states[task_id] = _retry_state(action, KIND_SUB_ORCHESTRATION)
        elif action_type == ActionType.CREATE_TIMER:
            task_id = plan.allocate()
            fire_at = parse_timestamp(action["fireAt"])
            plan.event(HistoryEventType.TIMER_CREATED, task_id, FireAt=action["fireAt"])
            plan.tasks.append(TaskRecord(task_id, KIND_TIMER))
            if not action.get("isCanceled"):
                plan.timers.append(NewTimer(task_id, fire_at, index))
                plan.count("timer")

    @staticmethod
    def _schedule_activity(
        plan: _Plan, name: str, input_json: str | None, retry_key: int | None
    ) -> int:
        task_id = plan.allocate()
        # -1 marks the first attempt of a retried call: its retry key is its own id.
        key = task_id if retry_key == -1 else retry_key
        plan.event(HistoryEventType.TASK_SCHEDULED, task_id, Name=name, Input=input_json)
        plan.work_items.append(NewWorkItem(task_id, name, input_json))
        plan.tasks.append(TaskRecord(task_id, KIND_ACTIVITY, key))
        plan.count("activity")
        return task_id

    def _schedule_child(self, plan: _Plan, action: Mapping[str, Any], retry_key: int | None) -> int:
        task_id = plan.allocate()
        key = task_id if retry_key == -1 else retry_key
        parent = plan.instance
        name = str(action["functionName"])
        child_id = action.get("instanceId") or f"{parent.instance_id}:{task_id:04d}"
        input_json = action.get("input")
        plan.event(
            HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
            task_id,
            Name=name,
            InstanceId=child_id,
            Input=input_json,
        )
        plan.tasks.append(TaskRecord(task_id, KIND_SUB_ORCHESTRATION, key))
        problem = self._child_problem(name, child_id, plan)
        if problem is not None:
            plan.to_self(
                make_event(
                    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                    timestamp=plan.now,
                    TaskScheduledId=task_id,
                    Reason=problem,
                    Details=None,
                )
            )
            return task_id
        plan.children.append(
            NewInstance(
                instance_id=child_id,
                name=name,
                input=input_json,
                parent_instance_id=parent.instance_id,
                parent_execution_id=parent.execution_id,
                parent_task_id=task_id,
            )
        )
        plan.count("sub-orchestration")
        return task_id

    def _child_problem(self, name: str, child_id: str, plan: _Plan) -> str | None:
        if name not in self._orchestrators:
            return (
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator"
                " function."
            )
        existing = self._store.get_instance(child_id)
        busy = existing is not None and not existing.status.is_terminal
        if busy or any(c.instance_id == child_id for c in plan.children):
            return f"An orchestration instance with ID '{child_id}' is already running."
        return None

    def _continue_retry(
        self,
        plan: _Plan,
        event: Mapping[str, Any],
        tasks: Mapping[int, TaskRecord],
        retry_states: dict[int, dict[str, Any]],
    ) -> None:
        if event["EventType"] in _FAILURE_EVENTS:
            record = tasks[event["TaskScheduledId"]]
            assert record.retry_key is not None
            state = retry_states[record.retry_key]
            timer_id = plan.allocate()
            fire_at = plan.now + timedelta(milliseconds=state["interval_ms"])
            plan.event(HistoryEventType.TIMER_CREATED, timer_id, FireAt=format_timestamp(fire_at))
            plan.timers.append(NewTimer(timer_id, fire_at, None))
            plan.tasks.append(TaskRecord(timer_id, KIND_RETRY_TIMER, record.retry_key))
            return
        record = tasks[event["TimerId"]]
        assert record.retry_key is not None
        state = dict(retry_states[record.retry_key])
        if state["attempts"] >= state["max_attempts"]:
            # The SDK fails the task on this timer; nothing more to schedule.
            return
        state["attempts"] += 1
        plan.retry_states[record.retry_key] = state
        if state["kind"] == KIND_ACTIVITY:
            self._schedule_activity(plan, state["name"], state["input"], record.retry_key)
        else:
            child_action = {
                "functionName": state["name"],
                "input": state["input"],
                "instanceId": state["instance_id"],
            }
            self._schedule_child(plan, child_action, record.retry_key)

    # --------------------------------------------------------------- completion

    def _finish(
        self, plan: _Plan, commit: EpisodeCommit, status: RuntimeStatus, result: ReplayResult
    ) -> None:
        instance = plan.instance
        commit.status = status
        if status is RuntimeStatus.COMPLETED:
            commit.output = json.dumps(result.output)
            notice = make_event(
                HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                timestamp=plan.now,
                TaskScheduledId=instance.parent_task_id,
                Result=commit.output,
            )
        else:
            message = orchestrator_failure_message(instance.name, result.error or "unknown error")
            commit.output = json.dumps(message)
            notice = make_event(
                HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                timestamp=plan.now,
                TaskScheduledId=instance.parent_task_id,
                Reason=message,
                Details=None,
            )
        if instance.parent_instance_id is not None:
            plan.messages.append(
                Message(instance.parent_instance_id, instance.parent_execution_id, notice)
            )

    def _terminate(
        self, instance: InstanceRecord, inbox_ids: list[int], request: InboxEvent
    ) -> EpisodeOutcome:
        now = self._episode_time(self._store.history(instance.instance_id))
        reason = request.event.get("Input")
        commit = EpisodeCommit(
            instance_id=instance.instance_id,
            execution_id=instance.execution_id,
            consumed_inbox_ids=inbox_ids,
            new_history=[dict(request.event, IsPlayed=False)],
            status=RuntimeStatus.TERMINATED,
            updated_at=now,
            output=json.dumps(reason),
            custom_status=instance.custom_status,
            actions_seen=instance.actions_seen,
            next_task_id=instance.next_task_id,
        )
        commit.new_history.append(commit_completion_event(commit, now))
        if instance.parent_instance_id is not None:
            commit.messages.append(
                Message(
                    instance.parent_instance_id,
                    instance.parent_execution_id,
                    make_event(
                        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                        timestamp=now,
                        TaskScheduledId=instance.parent_task_id,
                        Reason=f"Orchestration '{instance.instance_id}' was terminated: {reason}",
                        Details=None,
                    ),
                )
            )
        self._store.commit_episode(commit)
        return EpisodeOutcome(instance.instance_id, instance.name, RuntimeStatus.TERMINATED, 1, {})


def _refuse_unsupported(result: ReplayResult, new_actions: list[dict[str, Any]]) -> ReplayResult:
    """Fail the orchestration, with a clear reason, when it uses what the host cannot do."""
    unsupported = next(
        (
            _UNSUPPORTED_ACTIONS[a["actionType"]]
            for a in new_actions
            if a.get("actionType") in _UNSUPPORTED_ACTIONS
        ),
        None,
    )
    if unsupported is None or result.failed:
        return result
    return ReplayResult(
        is_done=False,
        output=None,
        error=f"devhost does not support {unsupported}",
        custom_status=result.custom_status,
        actions=result.actions,
        state=result.state,
    )


def _retry_state(action: Mapping[str, Any], kind: str) -> dict[str, Any]:
    options = action.get("retryOptions") or {}
    return {
        "kind": kind,
        "name": action["functionName"],
        "input": action.get("input"),
        "instance_id": action.get("instanceId"),
        "interval_ms": int(options.get("firstRetryIntervalInMilliseconds", 1000)),
        "max_attempts": int(options.get("maxNumberOfAttempts", 1)),
        "attempts": 1,
    }


def commit_completion_event(commit: EpisodeCommit, now: datetime) -> dict[str, Any]:
    return make_event(
        HistoryEventType.EXECUTION_COMPLETED,
        timestamp=now,
        OrchestrationStatus=commit.status.value,
        Result=commit.output,
    )
