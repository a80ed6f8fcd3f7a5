"""Durable Functions state on disk (SQLite): instances, history, inbox, timers, activity work.

Crash safety comes from transactions, not from care at call sites: an orchestration episode is
committed by ``commit_episode`` in one transaction (history appended, status saved, new work
queued, inbox events consumed), a timer moves to the inbox in one transaction and an activity
result is stored together with the removal of its work item. A host killed at any moment
restarts from a consistent state: whatever was not committed happens again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import uuid4

from devhost.replay import HistoryEventType, format_timestamp, make_event

DATABASE_FILE = "durable.sqlite3"
SCHEMA_VERSION = 1


class RuntimeStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATED = "Terminated"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED}
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    actions_seen INTEGER NOT NULL DEFAULT 0,
    next_task_id INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, position)
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_instance ON inbox (instance_id, id);
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    fire_at TEXT NOT NULL,
    action_index INTEGER
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (fire_at);
CREATE TABLE IF NOT EXISTS work_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    instance_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    retry_key INTEGER,
    PRIMARY KEY (instance_id, task_id)
);
CREATE TABLE IF NOT EXISTS retries (
    instance_id TEXT NOT NULL,
    retry_key INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (instance_id, retry_key)
);
"""

_PER_INSTANCE_TABLES = ("history", "inbox", "timers", "work_items", "tasks", "retries")
_WORK_TABLES = ("timers", "work_items", "tasks", "retries")


@dataclass(frozen=True)
class InstanceRecord:
    instance_id: str
    name: str
    execution_id: str
    status: RuntimeStatus
    input: str | None
    output: str | None
    custom_status: str | None
    created_at: str
    updated_at: str
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    actions_seen: int
    next_task_id: int


@dataclass(frozen=True)
class InboxEvent:
    id: int
    execution_id: str
    event: dict[str, Any]


@dataclass(frozen=True)
class WorkItem:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class TaskRecord:
    """What a sequence id was used for; ``retry_key`` links the attempts of one retried call."""

    task_id: int
    kind: str
    retry_key: int | None = None


@dataclass(frozen=True)
class NewInstance:
    instance_id: str
    name: str
    input: str | None
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None
    parent_task_id: int | None = None


@dataclass(frozen=True)
class Message:
    """An event for the inbox of another instance (a parent hearing from its child)."""

    instance_id: str
    execution_id: str | None
    event: dict[str, Any]


@dataclass(frozen=True)
class NewWorkItem:
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class NewTimer:
    task_id: int
    fire_at: datetime
    action_index: int | None


@dataclass
class EpisodeCommit:
    """Everything one episode changes; ``DurableStore.commit_episode`` applies it atomically."""

    instance_id: str
    execution_id: str
    consumed_inbox_ids: list[int]
    new_history: list[dict[str, Any]]
    status: RuntimeStatus
    updated_at: datetime
    output: str | None = None
    custom_status: str | None = None
    actions_seen: int = 0
    next_task_id: int = 0
    work_items: list[NewWorkItem] = field(default_factory=list)
    timers: list[NewTimer] = field(default_factory=list)
    cancelled_timer_actions: list[int] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    retry_states: dict[int, dict[str, Any]] = field(default_factory=dict)
    children: list[NewInstance] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # Continue-as-new: the instance starts over with this input (history, work and ids reset).
    restart_input: str | None = None
    restart: bool = False


class CreateResult(StrEnum):
    CREATED = "created"
    ALREADY_RUNNING = "already_running"


class DeliveryResult(StrEnum):
    DELIVERED = "delivered"
    NOT_FOUND = "not_found"
    GONE = "gone"


def _now_text(moment: datetime) -> str:
    return format_timestamp(moment)


class DurableStore:
    """Thread-safe access to the SQLite state file (one connection, serialized by a lock)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DATABASE_FILE
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        # WAL + NORMAL survives a killed process (only power loss could lose the last commit).
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        with self._transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    # ----------------------------------------------------------------- instances

    @staticmethod
    def _instance(row: sqlite3.Row) -> InstanceRecord:
        return InstanceRecord(
            instance_id=row["instance_id"],
            name=row["name"],
            execution_id=row["execution_id"],
            status=RuntimeStatus(row["status"]),
            input=row["input"],
            output=row["output"],
            custom_status=row["custom_status"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            parent_instance_id=row["parent_instance_id"],
            parent_execution_id=row["parent_execution_id"],
            parent_task_id=row["parent_task_id"],
            actions_seen=row["actions_seen"],
            next_task_id=row["next_task_id"],
        )

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        rows = self._query("SELECT * FROM instances WHERE instance_id = ?", (instance_id,))
        return self._instance(rows[0]) if rows else None

    def list_instances(
        self,
        *,
        created_from: str | None = None,
        created_to: str | None = None,
        statuses: Sequence[str] = (),
        prefix: str | None = None,
    ) -> list[InstanceRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        if created_from:
            clauses.append("created_at >= ?")
            params.append(created_from)
        if created_to:
            clauses.append("created_at <= ?")
            params.append(created_to)
        if statuses:
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        if prefix:
            clauses.append("substr(instance_id, 1, ?) = ?")
            params.extend([len(prefix), prefix])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT * FROM instances {where} ORDER BY created_at", params)  # noqa: S608
        return [self._instance(row) for row in rows]

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY position", (instance_id,)
        )
        return [json.loads(row["event"]) for row in rows]

    @staticmethod
    def _delete_instance_rows(conn: sqlite3.Connection, instance_id: str) -> None:
        for table in _PER_INSTANCE_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))  # noqa: S608
        conn.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))

    @classmethod
    def _insert_instance(
        cls, conn: sqlite3.Connection, new: NewInstance, now: datetime
    ) -> CreateResult:
        row = conn.execute(
            "SELECT status FROM instances WHERE instance_id = ?", (new.instance_id,)
        ).fetchone()
        if row is not None and not RuntimeStatus(row["status"]).is_terminal:
            return CreateResult.ALREADY_RUNNING
        # A finished instance with the same id is replaced, as the extension does by default.
        cls._delete_instance_rows(conn, new.instance_id)
        execution_id = uuid4().hex
        stamp = _now_text(now)
        conn.execute(
            "INSERT INTO instances (instance_id, name, execution_id, status, input, created_at,"
            " updated_at, parent_instance_id, parent_execution_id, parent_task_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.instance_id,
                new.name,
                execution_id,
                RuntimeStatus.PENDING.value,
                new.input,
                stamp,
                stamp,
                new.parent_instance_id,
                new.parent_execution_id,
                new.parent_task_id,
            ),
        )
        started = make_event(
            HistoryEventType.EXECUTION_STARTED,
            timestamp=now,
            Name=new.name,
            Input=new.input,
            Version=None,
            ParentInstanceId=new.parent_instance_id,
        )
        cls._insert_inbox(conn, new.instance_id, execution_id, started)
        return CreateResult.CREATED

    def create_instance(self, new: NewInstance, now: datetime) -> CreateResult:
        """Create (or replace a finished) instance, with ExecutionStarted waiting in its inbox."""
        with self._transaction() as conn:
            return self._insert_instance(conn, new, now)

    def purge(self, instance_id: str) -> int:
        """Delete a finished instance and all its state; running ones are left alone."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT status FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            if row is None or not RuntimeStatus(row["status"]).is_terminal:
                return 0
            self._delete_instance_rows(conn, instance_id)
            return 1

    # --------------------------------------------------------------------- inbox

    @staticmethod
    def _insert_inbox(
        conn: sqlite3.Connection, instance_id: str, execution_id: str, event: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO inbox (instance_id, execution_id, event) VALUES (?, ?, ?)",
            (instance_id, execution_id, json.dumps(event)),
        )

    def deliver(self, instance_id: str, event: dict[str, Any]) -> DeliveryResult:
        """Queue an event (raised event, termination) for a pending or running instance."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT status, execution_id FROM instances WHERE instance_id = ?",
                (instance_id,),
            ).fetchone()
            if row is None:
                return DeliveryResult.NOT_FOUND
            if RuntimeStatus(row["status"]).is_terminal:
                return DeliveryResult.GONE
            self._insert_inbox(conn, instance_id, row["execution_id"], event)
            return DeliveryResult.DELIVERED

    def instances_with_inbox(self) -> list[str]:
        rows = self._query(
            "SELECT instance_id, MIN(id) AS first FROM inbox GROUP BY instance_id ORDER BY first"
        )
        return [row["instance_id"] for row in rows]

    def inbox(self, instance_id: str) -> list[InboxEvent]:
        rows = self._query(
            "SELECT id, execution_id, event FROM inbox WHERE instance_id = ? ORDER BY id",
            (instance_id,),
        )
        return [
            InboxEvent(row["id"], row["execution_id"], json.loads(row["event"])) for row in rows
        ]

    def discard_inbox(self, instance_id: str, ids: Sequence[int]) -> None:
        with self._transaction() as conn:
            conn.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in ids])

    # --------------------------------------------------------------- work & tasks

    def tasks(self, instance_id: str) -> dict[int, TaskRecord]:
        rows = self._query(
            "SELECT task_id, kind, retry_key FROM tasks WHERE instance_id = ?", (instance_id,)
        )
        return {
            row["task_id"]: TaskRecord(row["task_id"], row["kind"], row["retry_key"])
            for row in rows
        }

    def retry_states(self, instance_id: str) -> dict[int, dict[str, Any]]:
        rows = self._query(
            "SELECT retry_key, state FROM retries WHERE instance_id = ?", (instance_id,)
        )
        return {row["retry_key"]: json.loads(row["state"]) for row in rows}

    def pending_work_items(self) -> list[WorkItem]:
        rows = self._query("SELECT * FROM work_items ORDER BY id")
        return [
            WorkItem(
                row["id"],
                row["instance_id"],
                row["execution_id"],
                row["task_id"],
                row["name"],
                row["input"],
            )
            for row in rows
        ]

    def complete_work_item(self, item: WorkItem, event: dict[str, Any]) -> bool:
        """Store an activity's result with the removal of its work item, in one transaction.

        False when the work item is gone (its instance finished, was terminated or replaced):
        the result then has nobody to go to and is dropped.
        """
        with self._transaction() as conn:
            deleted = conn.execute("DELETE FROM work_items WHERE id = ?", (item.id,)).rowcount
            if deleted != 1:
                return False
            self._insert_inbox(conn, item.instance_id, item.execution_id, event)
            return True

    # --------------------------------------------------------------------- timers

    def fire_due_timers(self, now: datetime) -> int:
        """Move every timer due by ``now`` into its instance's inbox as TimerFired."""
        with self._transaction() as conn:
            due = conn.execute(
                "SELECT id, instance_id, execution_id, task_id, fire_at FROM timers"
                " WHERE fire_at <= ? ORDER BY fire_at, id",
                (_now_text(now),),
            ).fetchall()
            for row in due:
                fired = make_event(
                    HistoryEventType.TIMER_FIRED,
                    timestamp=now,
                    TimerId=row["task_id"],
                    FireAt=row["fire_at"],
                )
                self._insert_inbox(conn, row["instance_id"], row["execution_id"], fired)
                conn.execute("DELETE FROM timers WHERE id = ?", (row["id"],))
            return len(due)

    def next_timer_due(self) -> str | None:
        rows = self._query("SELECT MIN(fire_at) AS due FROM timers")
        due: str | None = rows[0]["due"] if rows else None
        return due

    # -------------------------------------------------------------------- episodes

    def commit_episode(self, commit: EpisodeCommit) -> None:
        """Apply one episode atomically: history, status, new work, consumed inbox events."""
        iid = commit.instance_id
        with self._transaction() as conn:
            conn.executemany(
                "DELETE FROM inbox WHERE id = ?", [(i,) for i in commit.consumed_inbox_ids]
            )
            if commit.restart:
                self._restart(conn, commit)
            else:
                self._append_history(conn, iid, commit.new_history)
                conn.execute(
                    "UPDATE instances SET status = ?, output = ?, custom_status = ?,"
                    " updated_at = ?, actions_seen = ?, next_task_id = ?"
                    " WHERE instance_id = ? AND execution_id = ?",
                    (
                        commit.status.value,
                        commit.output,
                        commit.custom_status,
                        _now_text(commit.updated_at),
                        commit.actions_seen,
                        commit.next_task_id,
                        iid,
                        commit.execution_id,
                    ),
                )
                self._schedule(conn, commit)
                if commit.status.is_terminal:
                    for table in _WORK_TABLES:
                        conn.execute(f"DELETE FROM {table} WHERE instance_id = ?", (iid,))  # noqa: S608
                    conn.execute("DELETE FROM inbox WHERE instance_id = ?", (iid,))
            for child in commit.children:
                if self._insert_instance(conn, child, commit.updated_at) is CreateResult.CREATED:
                    continue
                # Started elsewhere since the episode looked: the parent's task fails instead.
                refusal = make_event(
                    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                    timestamp=commit.updated_at,
                    TaskScheduledId=child.parent_task_id,
                    Reason=f"An orchestration instance with ID '{child.instance_id}' is already"
                    " running.",
                    Details=None,
                )
                self._send(conn, Message(iid, commit.execution_id, refusal))
            for message in commit.messages:
                self._send(conn, message)

    @staticmethod
    def _append_history(
        conn: sqlite3.Connection, instance_id: str, events: Sequence[dict[str, Any]]
    ) -> None:
        row = conn.execute(
            "SELECT COALESCE(MAX(position), -1) AS last FROM history WHERE instance_id = ?",
            (instance_id,),
        ).fetchone()
        start = int(row["last"]) + 1
        conn.executemany(
            "INSERT INTO history (instance_id, position, event) VALUES (?, ?, ?)",
            [(instance_id, start + n, json.dumps(e)) for n, e in enumerate(events)],
        )

    def _schedule(self, conn: sqlite3.Connection, commit: EpisodeCommit) -> None:
        iid, eid = commit.instance_id, commit.execution_id
        conn.executemany(
            "INSERT INTO work_items (instance_id, execution_id, task_id, name, input)"
            " VALUES (?, ?, ?, ?, ?)",
            [(iid, eid, w.task_id, w.name, w.input) for w in commit.work_items],
        )
        conn.executemany(
            "INSERT INTO timers (instance_id, execution_id, task_id, fire_at, action_index)"
            " VALUES (?, ?, ?, ?, ?)",
            [(iid, eid, t.task_id, _now_text(t.fire_at), t.action_index) for t in commit.timers],
        )
        conn.executemany(
            "DELETE FROM timers WHERE instance_id = ? AND action_index = ?",
            [(iid, index) for index in commit.cancelled_timer_actions],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO tasks (instance_id, task_id, kind, retry_key)"
            " VALUES (?, ?, ?, ?)",
            [(iid, t.task_id, t.kind, t.retry_key) for t in commit.tasks],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO retries (instance_id, retry_key, state) VALUES (?, ?, ?)",
            [(iid, key, json.dumps(state)) for key, state in commit.retry_states.items()],
        )

    def _restart(self, conn: sqlite3.Connection, commit: EpisodeCommit) -> None:
        iid = commit.instance_id
        for table in ("history", *_WORK_TABLES):
            conn.execute(f"DELETE FROM {table} WHERE instance_id = ?", (iid,))  # noqa: S608
        execution_id = uuid4().hex
        row = conn.execute("SELECT name FROM instances WHERE instance_id = ?", (iid,)).fetchone()
        conn.execute(
            "UPDATE instances SET execution_id = ?, status = ?, input = ?, output = NULL,"
            " custom_status = ?, updated_at = ?, actions_seen = 0, next_task_id = 0"
            " WHERE instance_id = ?",
            (
                execution_id,
                RuntimeStatus.RUNNING.value,
                commit.restart_input,
                commit.custom_status,
                _now_text(commit.updated_at),
                iid,
            ),
        )
        # Raised events not yet processed carry over to the new generation, behind its
        # ExecutionStarted; task and timer results belong to the old one and are dropped.
        leftover = conn.execute(
            "SELECT id, event FROM inbox WHERE instance_id = ? ORDER BY id", (iid,)
        ).fetchall()
        conn.execute("DELETE FROM inbox WHERE instance_id = ?", (iid,))
        started = make_event(
            HistoryEventType.EXECUTION_STARTED,
            timestamp=commit.updated_at,
            Name=row["name"],
            Input=commit.restart_input,
            Version=None,
        )
        self._insert_inbox(conn, iid, execution_id, started)
        carried = (int(HistoryEventType.EVENT_RAISED), int(HistoryEventType.EXECUTION_TERMINATED))
        for old in leftover:
            event = json.loads(old["event"])
            if event.get("EventType") in carried:
                self._insert_inbox(conn, iid, execution_id, event)

    def _send(self, conn: sqlite3.Connection, message: Message) -> None:
        row = conn.execute(
            "SELECT status, execution_id FROM instances WHERE instance_id = ?",
            (message.instance_id,),
        ).fetchone()
        if row is None or RuntimeStatus(row["status"]).is_terminal:
            return
        if message.execution_id is not None and row["execution_id"] != message.execution_id:
            return
        self._insert_inbox(conn, message.instance_id, row["execution_id"], message.event)
