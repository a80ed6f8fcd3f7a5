"""A test double of the Durable Functions client, answering like the SDK over the extension.

Instances are kept as the JSON the Durable extension's HTTP API returns for them, and every
status is built from that JSON with ``DurableOrchestrationStatus.from_json``, exactly as
``DurableOrchestrationClient.get_status`` does. As with the real client over the extension:

- an unknown instance answers with an empty body, which the SDK turns into a falsy status;
- ``input`` is only returned when ``show_input`` is asked for, and (for a Python client, which
  posts the input as JSON text) it comes back as that JSON text;
- ``start_new`` is refused for an instance that is still Pending or Running;
- ``raise_event`` fails for an unknown instance and for one that already finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus,
)

ACTIVE = {"Pending", "Running"}
FINISHED = {"Completed", "Failed", "Terminated", "Canceled"}


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass
class RaisedEvent:
    instance_id: str
    name: str
    data: Any


@dataclass
class FakeDurableClient:
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    events: list[RaisedEvent] = field(default_factory=list)
    # Runs inside start_new before the instance is looked up: lets a test start a twin there.
    before_start: Callable[[], None] | None = None
    # When set, start_new fails with this error (the extension refusing for its own reasons).
    start_error: Exception | None = None

    # --- test set-up --------------------------------------------------------------------------

    def add_instance(
        self,
        instance_id: str,
        *,
        runtime_status: str,
        custom_status: Any = None,
        input: Any = None,
        output: Any = None,
        name: str = "PipelineJobOrchestrator",
        created_time: str = "2026-12-04T10:00:00Z",
        last_updated_time: str = "2026-12-04T10:05:00Z",
        input_as_json_text: bool = True,
    ) -> None:
        self.instances[instance_id] = {
            "name": name,
            "instanceId": instance_id,
            "runtimeStatus": runtime_status,
            "input": json.dumps(input) if input_as_json_text else input,
            "customStatus": custom_status,
            "output": output,
            "createdTime": created_time,
            "lastUpdatedTime": last_updated_time,
        }

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [call.args for call in self.calls if call.method == method]

    # --- the DurableClient protocol -----------------------------------------------------------

    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any | None = None,
    ) -> str:
        self.calls.append(
            Call(
                "start_new",
                {
                    "orchestration_function_name": orchestration_function_name,
                    "instance_id": instance_id,
                    "client_input": client_input,
                },
            )
        )
        if self.before_start is not None:
            self.before_start()
        if self.start_error is not None:
            raise self.start_error
        assert instance_id is not None, "the app always names its instances"
        existing = self.instances.get(instance_id)
        if existing is not None and existing["runtimeStatus"] in ACTIVE:
            # What the extension answers, surfaced by the SDK as a bare Exception.
            raise Exception(  # the SDK raises exactly this type
                f"An Orchestration instance with the status {existing['runtimeStatus']} "
                f"already exists."
            )
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.instances[instance_id] = {
            "name": orchestration_function_name,
            "instanceId": instance_id,
            "runtimeStatus": "Pending",
            # The SDK posts json.dumps(input): it must be JSON-serializable as it is.
            "input": json.dumps(client_input) if client_input is not None else None,
            "customStatus": None,
            "output": None,
            "createdTime": now,
            "lastUpdatedTime": now,
        }
        return instance_id

    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> DurableOrchestrationStatus:
        self.calls.append(
            Call(
                "get_status",
                {
                    "instance_id": instance_id,
                    "show_history": show_history,
                    "show_history_output": show_history_output,
                    "show_input": show_input,
                },
            )
        )
        stored = self.instances.get(instance_id)
        if stored is None:
            return DurableOrchestrationStatus.from_json("")  # 404 with an empty body
        answer = dict(stored)
        if not show_input:
            answer.pop("input")
        # Through the wire and back, like the extension's JSON response.
        return DurableOrchestrationStatus.from_json(json.loads(json.dumps(answer)))

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        self.calls.append(
            Call(
                "raise_event",
                {"instance_id": instance_id, "event_name": event_name, "event_data": event_data},
            )
        )
        if event_name == "":
            raise ValueError("event_name must be a non-empty string.")
        stored = self.instances.get(instance_id)
        if stored is None:
            raise Exception(f"No instance with ID {instance_id} found.")
        if stored["runtimeStatus"] in FINISHED:
            raise Exception(f"Instance with ID {instance_id} is gone: either completed or failed")
        self.events.append(RaisedEvent(instance_id, event_name, json.loads(json.dumps(event_data))))
