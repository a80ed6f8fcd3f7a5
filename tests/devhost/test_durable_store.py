"""The durable store: every episode and every activity result is all-or-nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.durable_store import (
    CreateResult,
    DeliveryResult,
    DurableStore,
    EpisodeCommit,
    NewInstance,
    NewTimer,
    NewWorkItem,
    RuntimeStatus,
)
from devhost.replay import HistoryEventType, make_event

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def started(store: DurableStore, instance_id: str = "job-1") -> None:
    assert store.create_instance(NewInstance(instance_id, "Orch", '{"a": 1}'), NOW) is (
        CreateResult.CREATED
    )


def episode(store: DurableStore, instance_id: str = "job-1", **changes: object) -> EpisodeCommit:
    instance = store.get_instance(instance_id)
    assert instance is not None
    commit = EpisodeCommit(
        instance_id=instance_id,
        execution_id=instance.execution_id,
        consumed_inbox_ids=[e.id for e in store.inbox(instance_id)],
        new_history=[
            make_event(HistoryEventType.ORCHESTRATOR_STARTED, timestamp=NOW),
            make_event(HistoryEventType.TASK_SCHEDULED, timestamp=NOW, event_id=0, Name="Act"),
            make_event(HistoryEventType.ORCHESTRATOR_COMPLETED, timestamp=NOW),
        ],
        status=RuntimeStatus.RUNNING,
        updated_at=NOW,
        actions_seen=2,
        next_task_id=2,
        work_items=[NewWorkItem(0, "Act", '"in"')],
        timers=[NewTimer(1, NOW + timedelta(seconds=5), 1)],
    )
    for key, value in changes.items():
        setattr(commit, key, value)
    return commit


def test_an_episode_commits_everything_together(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    started(store)

    store.commit_episode(episode(store))

    assert store.inbox("job-1") == []
    assert [e["EventType"] for e in store.history("job-1")] == [12, 4, 13]
    assert [(w.task_id, w.name, w.input) for w in store.pending_work_items()] == [
        (0, "Act", '"in"')
    ]
    assert store.next_timer_due() == "2030-01-01T00:00:05.000000Z"
    instance = store.get_instance("job-1")
    assert instance is not None
    assert (instance.status, instance.actions_seen, instance.next_task_id) == (
        RuntimeStatus.RUNNING,
        2,
        2,
    )


def test_a_failing_episode_commit_changes_nothing(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    started(store)
    broken = episode(store)
    # Not JSON-serializable: fails after the inbox rows were already deleted in the transaction.
    broken.new_history.append({"EventType": 5, "Result": object()})

    with pytest.raises(TypeError):
        store.commit_episode(broken)

    assert len(store.inbox("job-1")) == 1
    assert store.history("job-1") == []
    assert store.pending_work_items() == []
    instance = store.get_instance("job-1")
    assert instance is not None and instance.status is RuntimeStatus.PENDING


def test_a_process_killed_inside_an_episode_commit_leaves_the_previous_state(
    tmp_path: Path,
) -> None:
    store = DurableStore(tmp_path)
    started(store)
    store.close()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from pathlib import Path
        from devhost.durable_store import DurableStore
        from tests.devhost.test_durable_store import episode

        def die(self, conn, commit):
            os.kill(os.getpid(), signal.SIGKILL)

        store = DurableStore(Path({str(tmp_path)!r}))
        commit = episode(store)
        DurableStore._schedule = die  # dies after history and status were written
        store.commit_episode(commit)
        """
    )
    child = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, timeout=60, check=False)
    assert child.returncode == -9

    reopened = DurableStore(tmp_path)
    assert len(reopened.inbox("job-1")) == 1
    assert reopened.history("job-1") == []
    instance = reopened.get_instance("job-1")
    assert instance is not None and instance.status is RuntimeStatus.PENDING


def test_activity_result_is_stored_once_with_its_work_item(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    started(store)
    store.commit_episode(episode(store))
    (item,) = store.pending_work_items()
    result = make_event(
        HistoryEventType.TASK_COMPLETED, timestamp=NOW, TaskScheduledId=0, Result="1"
    )

    assert store.complete_work_item(item, result)
    assert not store.complete_work_item(item, result), "a second result must be dropped"

    assert store.pending_work_items() == []
    assert [e.event["EventType"] for e in store.inbox("job-1")] == [5]


def test_due_timers_move_to_the_inbox(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    started(store)
    store.commit_episode(episode(store))

    assert store.fire_due_timers(NOW + timedelta(seconds=4)) == 0
    assert store.fire_due_timers(NOW + timedelta(seconds=5)) == 1

    (fired,) = store.inbox("job-1")
    assert fired.event["EventType"] == HistoryEventType.TIMER_FIRED
    assert fired.event["TimerId"] == 1
    assert store.next_timer_due() is None


def test_cancelled_timers_never_fire(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    started(store)
    store.commit_episode(episode(store))
    store.commit_episode(
        episode(store, new_history=[], cancelled_timer_actions=[1], timers=[], work_items=[])
    )

    assert store.fire_due_timers(NOW + timedelta(days=1)) == 0


def test_running_instances_cannot_be_started_again_finished_ones_are_replaced(
    tmp_path: Path,
) -> None:
    store = DurableStore(tmp_path)
    started(store)
    assert store.create_instance(NewInstance("job-1", "Orch", None), NOW) is (
        CreateResult.ALREADY_RUNNING
    )
    store.commit_episode(
        episode(store, status=RuntimeStatus.COMPLETED, output='"done"', work_items=[], timers=[])
    )
    first_execution = store.get_instance("job-1")
    assert first_execution is not None

    assert (
        store.create_instance(NewInstance("job-1", "Orch", '"again"'), NOW) is CreateResult.CREATED
    )
    second = store.get_instance("job-1")
    assert second is not None
    assert second.execution_id != first_execution.execution_id
    assert (second.status, second.input, second.output) == (RuntimeStatus.PENDING, '"again"', None)
    assert store.history("job-1") == []


def test_events_go_only_to_pending_or_running_instances(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    raised = make_event(HistoryEventType.EVENT_RAISED, timestamp=NOW, Name="Go", Input="1")
    assert store.deliver("nobody", raised) is DeliveryResult.NOT_FOUND

    started(store)
    assert store.deliver("job-1", raised) is DeliveryResult.DELIVERED
    store.commit_episode(
        episode(store, status=RuntimeStatus.FAILED, output='"x"', work_items=[], timers=[])
    )
    assert store.deliver("job-1", raised) is DeliveryResult.GONE


def test_purge_removes_only_finished_instances(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    started(store)
    assert store.purge("job-1") == 0
    store.commit_episode(episode(store, status=RuntimeStatus.COMPLETED, output="1"))
    assert store.purge("job-1") == 1
    assert store.get_instance("job-1") is None
    assert store.history("job-1") == []
    assert store.pending_work_items() == []


def test_state_survives_reopening(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    started(store)
    store.commit_episode(episode(store, custom_status=json.dumps({"step": 1})))
    store.close()

    reopened = DurableStore(tmp_path)
    instance = reopened.get_instance("job-1")
    assert instance is not None and instance.custom_status == '{"step": 1}'
    assert len(reopened.pending_work_items()) == 1
    assert (tmp_path / "durable.sqlite3").exists()
    assert (tmp_path / "durable.sqlite3").stat().st_size > 0
