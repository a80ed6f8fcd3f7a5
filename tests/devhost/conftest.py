"""Fixtures for running the sample app under the host against real storage (Azurite)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

from tests.fixtures.azurite import unique_queue_name

SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return error.code, raw.decode()


@dataclass
class SampleQueues:
    """The sample app's queues for one test, and the settings that point the app at them."""

    service: QueueServiceClient
    connection_string: str
    start: str
    finish: str

    @property
    def settings(self) -> dict[str, str]:
        return {
            "SampleStorage": self.connection_string,
            "SAMPLE_START_QUEUE": self.start,
            "SAMPLE_FINISH_QUEUE": self.finish,
        }

    def send(self, queue: str, payload: Any) -> None:
        text = base64.b64encode(json.dumps(payload).encode()).decode()
        self.send_text(queue, text)

    def send_text(self, queue: str, text: str) -> None:
        client = self.service.get_queue_client(queue)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(text)

    def peek(self, queue: str) -> list[str]:
        client = self.service.get_queue_client(queue)
        try:
            return [str(m.content) for m in client.peek_messages(max_messages=32)]
        except Exception:
            return []


@pytest.fixture
def sample_queues(
    queue_service: QueueServiceClient, storage_connection_string: str
) -> Iterator[SampleQueues]:
    queues = SampleQueues(
        service=queue_service,
        connection_string=storage_connection_string,
        start=unique_queue_name("start"),
        finish=unique_queue_name("finish"),
    )
    yield queues
    for name in (queues.start, queues.finish, f"{queues.start}-poison", f"{queues.finish}-poison"):
        with contextlib.suppress(ResourceNotFoundError):
            queue_service.delete_queue(name)


def job_status(base_url: str, job_id: str) -> dict[str, Any] | None:
    status, body = http("GET", f"{base_url}/api/jobs/{job_id}")
    return body if status == 200 else None


def wait_for_status(
    base_url: str, job_id: str, *wanted: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Wait until the job's runtimeStatus (or customStatus) is one of ``wanted``."""

    def check() -> dict[str, Any] | None:
        body = job_status(base_url, job_id)
        if body and (body["runtimeStatus"] in wanted or body.get("customStatus") in wanted):
            return body
        return None

    return wait_for(check, timeout, f"job {job_id} to reach {wanted}")
