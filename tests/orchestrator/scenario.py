"""Drive an orchestrator episode by episode through the real SDK, as the Durable extension does.

A :class:`Scenario` owns a history (``devhost.replay.HistoryBuilder``). Each call to
:meth:`Scenario.replay` replays the orchestrator over the history so far, reads the actions it
asked for since the last episode, records them the way the extension would (``TaskScheduled``,
``TimerCreated``, ``SubOrchestrationInstanceCreated``) and closes the episode. The test then
answers some of that work (:meth:`complete`, :meth:`fail`, :meth:`fire`, :meth:`raise_event`,
...), which opens the next episode, and replays again::

    scenario = Scenario(orchestrator, name="PipelineJobOrchestrator", instance_id="job-1",
                        input=...)
    first = scenario.replay()
    scenario.complete(first.activity("SendStartMessage"), {...})
    second = scenario.replay()

Retries (``CallActivityWithRetry``) are done by the extension, not by the SDK, so the history
must hold what DTFx writes: ``TaskFailed``; a retry ``TimerCreated`` / ``TimerFired``; the task
``TaskScheduled`` again; and after the last attempt one extra timer before the task fails for
good. :meth:`fail` and :meth:`fire_retry` write exactly that; :meth:`fail_every_attempt` runs
the whole sequence.

Sequence ids follow the SDK's numbering: a retry timer gets its id when the failure is
processed and the next attempt when the retry timer fires, so answer a retryable failure
before, not after, other events of the same episode that let the orchestrator schedule new
work.

Every replay also checks determinism: the actions of earlier episodes must come back unchanged
(the ``isCanceled`` flag of a timer aside, which the orchestrator sets later).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from devhost.replay import ActionType, HistoryBuilder, ReplayResult, parse_timestamp, replay

WorkKind = Literal["activity", "timer", "sub_orchestration", "event"]

_ACTIVITY_TYPES = {int(ActionType.CALL_ACTIVITY), int(ActionType.CALL_ACTIVITY_WITH_RETRY)}
_SUB_TYPES = {
    int(ActionType.CALL_SUB_ORCHESTRATOR),
    int(ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY),
}


@dataclass
class Work:
    """One thing the orchestrator asked for, with the history ids that answer it."""

    kind: WorkKind
    action: dict[str, Any]
    name: str | None
    input: Any = None
    task_id: int | None = None
    fire_at: datetime | None = None
    instance_id: str | None = None
    max_attempts: int = 1
    retry_interval: timedelta | None = None
    attempts: int = 1
    retry_timer_id: int | None = None
    retry_fire_at: datetime | None = None
    finished: bool = False
    task_ids: list[int] = field(default_factory=list)
    index: int = -1  # position of its action in the orchestrator's action list

    @property
    def canceled(self) -> bool:
        return bool(self.action.get("isCanceled"))

    @property
    def retryable(self) -> bool:
        return self.max_attempts > 1 or "retryOptions" in self.action

    @property
    def action_type(self) -> int:
        return int(self.action["actionType"])

    def __repr__(self) -> str:
        return f"Work({self.kind}, {self.name!r}, task_id={self.task_id}, input={self.input!r})"


@dataclass
class Episode:
    """What one replay produced, and the work it added."""

    number: int
    result: ReplayResult
    new: list[Work]

    @property
    def custom_status(self) -> Any:
        return self.result.custom_status

    @property
    def output(self) -> Any:
        return self.result.output

    @property
    def is_done(self) -> bool:
        return self.result.is_done

    @property
    def new_action_types(self) -> list[int]:
        return [work.action_type for work in self.new]

    def activities(self, name: str | None = None) -> list[Work]:
        return [w for w in self.new if w.kind == "activity" and name in (None, w.name)]

    def activity(self, name: str) -> Work:
        found = self.activities(name)
        assert len(found) == 1, f"expected one new {name} activity, got {self.new}"
        return found[0]

    def timers(self) -> list[Work]:
        return [w for w in self.new if w.kind == "timer"]

    def timer(self) -> Work:
        found = self.timers()
        assert len(found) == 1, f"expected one new timer, got {self.new}"
        return found[0]

    def sub_orchestration(self, name: str) -> Work:
        found = [w for w in self.new if w.kind == "sub_orchestration" and w.name == name]
        assert len(found) == 1, f"expected one new {name} sub-orchestration, got {self.new}"
        return found[0]

    def event_waits(self) -> list[Work]:
        return [w for w in self.new if w.kind == "event"]


def _comparable(action: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in action.items() if key != "isCanceled"}


class Scenario:
    """One orchestration instance, driven episode by episode."""

    def __init__(
        self,
        orchestrator: Any,
        *,
        name: str,
        instance_id: str,
        input: Any,
        start: datetime | str | None = None,
        parent_instance_id: str | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.name = name
        self.instance_id = instance_id
        self.parent_instance_id = parent_instance_id
        self.history = HistoryBuilder(start)
        self.history.orchestrator_started().execution_started(name, input)
        self.episodes: list[Episode] = []
        self.work: list[Work] = []
        self._seen: list[dict[str, Any]] = []
        self._open = True  # the first episode is open: OrchestratorStarted, ExecutionStarted

    # --- replay ---------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.history.now

    @property
    def last(self) -> Episode:
        return self.episodes[-1]

    def replay_only(self) -> ReplayResult:
        """Replay the history as it stands, recording nothing."""
        return replay(
            self.orchestrator,
            instance_id=self.instance_id,
            history=self.history.events,
            parent_instance_id=self.parent_instance_id,
        )

    def replay(self) -> Episode:
        """Replay, record the new actions as the extension would and close the episode."""
        assert self._open, "nothing happened since the last replay: answer some work first"
        result = self.replay_only()
        seen = len(self._seen)
        earlier = [_comparable(a) for a in result.actions[:seen]]
        assert earlier == [_comparable(a) for a in self._seen], (
            "non-deterministic orchestrator: the actions of earlier episodes changed\n"
            f"before: {self._seen}\nnow:    {result.actions[:seen]}"
        )
        new = [self._record(action) for action in result.actions[seen:]]
        self._seen = [dict(a) for a in result.actions]
        for work in self.work:  # a timer may have been cancelled since it was created
            work.action = dict(self._seen[work.index])
        self.history.orchestrator_completed()
        self._open = False
        episode = Episode(number=len(self.episodes) + 1, result=result, new=new)
        self.episodes.append(episode)
        return episode

    def _record(self, action: dict[str, Any]) -> Work:
        action_type = int(action["actionType"])
        raw_input = action.get("input")
        value = json.loads(raw_input) if isinstance(raw_input, str) else raw_input
        work: Work
        if action_type in _ACTIVITY_TYPES:
            name = action["functionName"]
            work = Work("activity", dict(action), name, value)
            options = action.get("retryOptions")
            if options is not None:
                work.max_attempts = int(options["maxNumberOfAttempts"])
                work.retry_interval = timedelta(
                    milliseconds=int(options["firstRetryIntervalInMilliseconds"])
                )
            work.task_id = self.history.task_scheduled(name, value)
        elif action_type == ActionType.CREATE_TIMER:
            fire_at = parse_timestamp(action["fireAt"])
            work = Work("timer", dict(action), None, fire_at=fire_at)
            work.task_id = self.history.timer_created(fire_at)
        elif action_type in _SUB_TYPES:
            name = action["functionName"]
            work = Work("sub_orchestration", dict(action), name, value)
            work.instance_id = action.get("instanceId")
            work.task_id = self.history.sub_orchestration_created(
                name, work.instance_id or "", value
            )
        elif action_type == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            # Waiting needs no history event; the task is matched by the event's name.
            work = Work("event", dict(action), action["externalEventName"])
        else:
            raise AssertionError(f"the scenario helper does not handle action {action}")
        if work.task_id is not None:
            work.task_ids.append(work.task_id)
        work.index = len(self.work)
        self.work.append(work)
        return work

    # --- answering work (each opens the next episode if needed) ---------------------------

    def begin(self, at: datetime | None = None) -> Scenario:
        """Open the next episode at ``at`` (default: one second later)."""
        assert not self._open, "an episode is already open"
        self.history.orchestrator_started(at)
        self._open = True
        return self

    def _ensure_open(self, at: datetime | None = None) -> None:
        if not self._open:
            self.begin(at)

    def complete(self, work: Work, result: Any = None) -> Scenario:
        assert work.kind in ("activity", "sub_orchestration"), work
        assert not work.finished, f"{work} already finished"
        assert work.retry_timer_id is None, f"{work} waits for its retry timer"
        self._ensure_open()
        assert work.task_id is not None
        if work.kind == "activity":
            self.history.task_completed(work.task_id, result)
        else:
            self.history.sub_orchestration_completed(work.task_id, result)
        work.finished = True
        return self

    def fail(self, work: Work, reason: str, details: str = "Traceback: ...") -> Scenario:
        """One attempt fails. For a retryable activity the extension then starts a retry timer."""
        assert work.kind in ("activity", "sub_orchestration"), work
        assert not work.finished, f"{work} already finished"
        assert work.retry_timer_id is None, f"{work} waits for its retry timer"
        self._ensure_open()
        assert work.task_id is not None
        if work.kind == "sub_orchestration":
            self.history.sub_orchestration_failed(work.task_id, reason, details)
            work.finished = True
            return self
        self.history.task_failed(work.task_id, reason, details)
        if work.retry_interval is None:
            work.finished = True
            return self
        # DTFx: a retry timer follows every failed attempt, the last one included.
        work.retry_fire_at = self.now + work.retry_interval
        work.retry_timer_id = self.history.timer_created(work.retry_fire_at)
        return self

    def fire_retry(self, work: Work) -> Scenario:
        """The retry timer fires: the next attempt is scheduled, or the task fails for good."""
        assert work.retry_timer_id is not None, f"{work} has no retry timer running"
        self._ensure_open(work.retry_fire_at)
        self.history.timer_fired(work.retry_timer_id)
        work.retry_timer_id = None
        if work.attempts >= work.max_attempts:
            work.finished = True
            return self
        assert work.name is not None
        work.attempts += 1
        work.task_id = self.history.task_scheduled(work.name, work.input)
        work.task_ids.append(work.task_id)
        return self

    def fail_every_attempt(self, work: Work, reason: str) -> Episode:
        """Every remaining attempt fails, episode by episode; returns the last episode."""
        assert work.retryable, f"{work} is not retried"
        while True:
            self.fail(work, reason)
            self.replay()
            self.fire_retry(work)
            episode = self.replay()
            if work.finished:
                return episode

    def fire(self, timer: Work) -> Scenario:
        """A timer the orchestrator created fires; the episode opens at its fire time."""
        assert timer.kind == "timer", timer
        assert not timer.finished, f"{timer} already fired"
        assert timer.task_id is not None
        self._ensure_open(timer.fire_at)
        self.history.timer_fired(timer.task_id)
        timer.finished = True
        return self

    def raise_event(self, name: str, value: Any = None) -> Scenario:
        self._ensure_open()
        self.history.event_raised(name, value)
        for work in self.pending("event"):
            if work.name == name:
                work.finished = True
                break
        return self

    def step(self, answer: Callable[[Scenario], Any], at: datetime | None = None) -> Episode:
        """Open an episode at ``at``, let ``answer`` add events, replay."""
        self.begin(at)
        answer(self)
        return self.replay()

    # --- reading --------------------------------------------------------------------------

    def pending(self, kind: WorkKind | None = None) -> list[Work]:
        """Work not answered yet (cancelled timers excluded)."""
        return [
            w for w in self.work if not w.finished and not w.canceled and kind in (None, w.kind)
        ]

    def actions(self) -> list[dict[str, Any]]:
        """Every action asked for so far, in order (the last replay's view)."""
        return [dict(a) for a in self._seen]
