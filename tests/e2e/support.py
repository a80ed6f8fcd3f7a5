"""Helpers for the end-to-end tests: the host subprocess, the queues, the database, polling.

Everything here talks to the app only through its contract: Storage queues, the database
tables, Redis keys, the search stand-in's recorded calls and ``GET /api/jobs/{jobId}``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from settings import SETTING_NAMES

PROJECT_ROOT = Path(__file__).resolve().parents[2]

PENDING = "data-pipeline-job-pending"
CUSTOM_START = "data-pipeline-job-custom-start"
DEFAULT_START = "data-pipeline-job-default-start"
FINISHED = "data-pipeline-job-finished"
PENDING_POISON = "data-pipeline-job-pending-poison"
FINISHED_POISON = "data-pipeline-job-finished-poison"
CONTRACT_QUEUES = (PENDING, CUSTOM_START, DEFAULT_START, FINISHED, PENDING_POISON, FINISHED_POISON)


READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLEAN_EXIT_CODES = (0, 128 + signal.SIGTERM)

T = TypeVar("T")


# -- polling ----------------------------------------------------------------------------------


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)


def new_job_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parse_utc(value: str) -> datetime:
    """An outgoing timestamp: RFC 3339, UTC, ``Z`` suffix (contract 3)."""
    assert isinstance(value, str) and value.endswith("Z"), f"not a UTC 'Z' timestamp: {value!r}"
    moment = datetime.fromisoformat(value)
    offset = moment.utcoffset()
    assert offset is not None and offset.total_seconds() == 0, value
    return moment.astimezone(UTC)


def b64(text_value: str) -> str:
    return base64.b64encode(text_value.encode("utf-8")).decode("ascii")


# -- secrets in logs ---------------------------------------------------------------------------


def leaked_secrets(log_text: str, secrets: Mapping[str, str]) -> list[str]:
    """Which secrets appear in ``log_text``, as 'NAME (line N)'; the values are never shown."""
    found = []
    lines = log_text.splitlines()
    for name, value in secrets.items():
        if not value:
            continue
        numbers = [str(i) for i, line in enumerate(lines, 1) if value in line]
        if numbers or value in log_text:
            found.append(f"{name} (log lines {', '.join(numbers[:5]) or 'spanning lines'})")
    return found


def account_key_of(connection_string: str) -> str | None:
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accountkey" and value:
            return value.strip()
    return None


# -- the host ----------------------------------------------------------------------------------


class HostExitedError(AssertionError):
    pass


@dataclass
class HostRun:
    """Settings of one ``python -m devhost`` run."""

    env: dict[str, str]
    state_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    settings_file: Path | None = None
    """``--settings``; None: a file that does not exist, so no local.settings.json is used."""


def host_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without any app setting, plus ``settings``."""
    blocked = {name.upper() for name in SETTING_NAMES}
    env = {name: value for name, value in os.environ.items() if name.upper() not in blocked}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def devhost_command(
    port: int, state_dir: Path, settings_file: Path, extra_args: Iterable[str] = ()
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "devhost",
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        "--app",
        "function_app",
        "--settings",
        str(settings_file),
        *extra_args,
    ]


class DevHost:
    """One ``python -m devhost`` subprocess; stdout and stderr go to ``run.log_path``."""

    def __init__(self, run: HostRun) -> None:
        self.run = run
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.run.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DevHost:
        self.run.log_path.parent.mkdir(parents=True, exist_ok=True)
        settings_file = self.run.settings_file or (
            self.run.log_path.parent / f"no-such-local.settings-{uuid.uuid4().hex}.json"
        )
        with self.run.log_path.open("ab") as log:
            log.write(f"==== devhost on port {self.port} ====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                devhost_command(self.port, self.run.state_dir, settings_file, self.run.extra_args),
                cwd=PROJECT_ROOT,
                env=self.run.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a SIGKILL reaches anything it started, nothing else.
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> DevHost:
        """Wait until the HTTP port answers anything at all."""
        deadline = time.monotonic() + timeout
        probe = f"/api/jobs/readiness-probe-{uuid.uuid4().hex[:8]}"
        while True:
            self._raise_if_exited("while starting")
            try:
                self.get(probe, timeout=2)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"devhost did not answer on port {self.port} within {timeout:g}s\n"
                    + self.tail()
                )
            time.sleep(0.2)

    def _raise_if_exited(self, when: str) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise HostExitedError(f"devhost exited with code {code} {when}\n{self.tail()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM; the host must exit within ``timeout`` seconds. Returns the exit code."""
        assert self.process is not None
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"devhost did not exit within {timeout:g}s of SIGTERM (killed)\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the host (and its process group, which only it and its children are in)."""
        assert self.process is not None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.run.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        text_lines = self.log_text().splitlines()[-lines:]
        body = "\n".join(text_lines)
        # Test output must not leak the secrets the logs might (wrongly) hold either.
        for name, value in self.run.secrets.items():
            if value:
                body = body.replace(value, f"<{name}>")
        return f"---- last {len(text_lines)} lines of {self.run.log_path} ----\n{body}"

    # -- HTTP --------------------------------------------------------------------------------

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        request = urllib.request.Request(self.base_url + path, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json_or_text(error.read())

    def job_status(self, job_id: str) -> tuple[int, Any]:
        return self.get(f"/api/jobs/{job_id}")

    def wait_for_job(
        self,
        job_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 30.0,
        what: str = "the job",
    ) -> dict[str, Any]:
        last: list[Any] = [None]

        def probe() -> dict[str, Any] | None:
            self._raise_if_exited(f"while waiting for {what}")
            code, body = self.job_status(job_id)
            last[0] = (code, body)
            if code == 200 and isinstance(body, dict) and predicate(body):
                return body
            return None

        return wait_until(
            probe,
            timeout=timeout,
            what=f"{what} ({job_id})",
            describe=lambda: f"last status answer: {last[0]!r}\n{self.tail()}",
        )

    def wait_for_runtime_status(
        self, job_id: str, runtime_status: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        return self.wait_for_job(
            job_id,
            lambda body: body.get("runtimeStatus") == runtime_status,
            timeout=timeout,
            what=f"runtimeStatus {runtime_status}",
        )


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


# -- queues ------------------------------------------------------------------------------------


class Queues:
    """The six contract queues of the test storage account, as a sender and an observer."""

    def __init__(self, connection_string: str) -> None:
        self._service = QueueServiceClient.from_connection_string(connection_string)

    def close(self) -> None:
        self._service.close()

    def client(self, queue: str) -> QueueClient:
        # No encode/decode policy: what is sent and read is the message text as it is stored.
        return self._service.get_queue_client(queue)

    def reset(self) -> None:
        """Create any missing contract queue and empty all six."""
        for queue in CONTRACT_QUEUES:
            client = self.client(queue)
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            client.clear_messages()

    def delete_all(self) -> None:
        for queue in CONTRACT_QUEUES:
            with contextlib.suppress(ResourceNotFoundError):
                self._service.delete_queue(queue)

    def exists(self, queue: str) -> bool:
        return any(q.name == queue for q in self._service.list_queues(name_starts_with=queue))

    def send(self, queue: str, body: str, *, as_base64: bool = False) -> str:
        """Send ``body`` as plain text (what the Storage SDK v12 does) or base64-encoded."""
        content = b64(body) if as_base64 else body
        self.client(queue).send_message(content)
        return content

    def send_json(self, queue: str, value: Any, *, as_base64: bool = False) -> str:
        return self.send(queue, json.dumps(value), as_base64=as_base64)

    def raw(self, queue: str) -> list[str]:
        """The text of the visible messages (up to 32), oldest first, left on the queue.

        A queue that does not exist (yet) holds nothing.
        """
        try:
            return [m.content for m in self.client(queue).peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []

    def read(self, queue: str) -> list[dict[str, Any]]:
        """Every visible message of an output queue, decoded as base64 UTF-8 JSON.

        Fails when a message is not base64: the contract says outgoing messages are.
        """
        return [decode_outgoing(content, queue) for content in self.raw(queue)]

    def wait_for(self, queue: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``queue`` holds at least ``count`` messages; return them all, decoded."""
        wait_until(
            lambda: len(self.raw(queue)) >= count,
            timeout=timeout,
            what=f"{count} message(s) on {queue}",
            describe=lambda: f"{queue} holds {len(self.raw(queue))}",
        )
        return self.read(queue)

    def wait_for_match(
        self, queue: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next((m for m in self.read(queue) if predicate(m)), None)

        return wait_until(probe, timeout=timeout, what=f"a matching message on {queue}")

    def count(self, queue: str) -> int:
        """Messages on the queue, visible or not (being processed)."""
        return int(self.client(queue).get_queue_properties().approximate_message_count or 0)

    def wait_drained(self, queue: str, timeout: float = 30.0) -> None:
        """Wait until every message sent to ``queue`` has been taken and deleted by the host."""
        wait_until(
            lambda: self.count(queue) == 0,
            timeout=timeout,
            what=f"{queue} to be drained by the host",
            describe=lambda: f"{queue} still holds {self.count(queue)}",
        )


def decode_outgoing(content: str, queue: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as error:
        raise AssertionError(f"message on {queue} is not base64: {content[:200]!r}") from error
    value = json.loads(raw.decode("utf-8"))
    assert isinstance(value, dict), f"message on {queue} is not a JSON object: {value!r}"
    return value


def assert_dead_letter(
    letter: dict[str, Any], *, original: str, queue: str, since: datetime
) -> None:
    """Contract 3.6: reason, errors, the original byte for byte, the source queue, a time."""
    assert set(letter) >= {"reason", "errors", "original", "queue", "deadLetteredAt"}, letter
    assert isinstance(letter["reason"], str) and letter["reason"].strip(), letter
    assert isinstance(letter["errors"], list), letter
    for error in letter["errors"]:
        assert isinstance(error, dict), letter
        assert isinstance(error.get("loc"), str) and isinstance(error.get("msg"), str), error
    assert letter["original"] == original, (letter["original"], original)
    assert letter["queue"] == queue
    moment = parse_utc(letter["deadLetteredAt"])
    assert since.timestamp() - 2 <= moment.timestamp() <= time.time() + 2, moment


# -- database ----------------------------------------------------------------------------------


class Database:
    """The app's SQLite file, read and seeded with plain SQL on the contract's tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
        self._next_id = 1

    def dispose(self) -> None:
        self.engine.dispose()

    def job_row(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    text(
                        'SELECT "JobId", "Status", "UpdatedAt", "Error" FROM "PipelineJob" '
                        'WHERE "JobId" = :job_id'
                    ),
                    {"job_id": job_id},
                )
                .mappings()
                .first()
            )
        return None if row is None else {**row, "UpdatedAt": _as_datetime(row["UpdatedAt"])}

    def wait_for_job_row(self, job_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            row = self._job_row_or_none(job_id)
            return row if row is not None and row["Status"] == status else None

        return wait_until(
            probe,
            timeout=timeout,
            what=f"PipelineJob row {job_id} with Status {status}",
            describe=lambda: f"row: {self._job_row_or_none(job_id)!r}",
        )

    def _job_row_or_none(self, job_id: str) -> dict[str, Any] | None:
        try:
            return self.job_row(job_id)
        except Exception:  # the table may not exist before the app's first write
            return None

    def add_user_data(self, user_id: str, *, active: int, inactive: int = 0) -> list[int]:
        """Insert rows for ``user_id``; return their ids, active ones first."""
        ids = list(range(self._next_id, self._next_id + active + inactive))
        self._next_id += len(ids)
        rows = [
            {"id": row_id, "user_id": user_id, "active": n < active} for n, row_id in enumerate(ids)
        ]
        with self.engine.begin() as connection:
            connection.execute(
                text(
                    'INSERT INTO "UserData" ("Id", "UserId", "IsActive", "DeactivatedAt") '
                    "VALUES (:id, :user_id, :active, NULL)"
                ),
                rows,
            )
        return ids

    def user_data(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = list(ids)
        with self.engine.connect() as connection:
            rows = (
                connection.execute(
                    text('SELECT "Id", "UserId", "IsActive", "DeactivatedAt" FROM "UserData"')
                )
                .mappings()
                .all()
            )
        return {
            row["Id"]: {
                "UserId": row["UserId"],
                "IsActive": bool(row["IsActive"]),
                "DeactivatedAt": _as_datetime(row["DeactivatedAt"]),
            }
            for row in rows
            if row["Id"] in wanted
        }


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    # The contract's timestamps are UTC; SQLite keeps them without a zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
