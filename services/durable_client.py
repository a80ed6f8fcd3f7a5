"""The part of the Durable Functions client the queue triggers and the status API use.

A Protocol rather than the SDK class, so that the functions' own tests can hand in a test
double that records calls; in the app the SDK's ``DurableOrchestrationClient`` is passed.
"""

import json
from typing import Any, Protocol

from azure.durable_functions.models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus,
)


class DurableClient(Protocol):
    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any | None = None,
    ) -> str: ...

    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> DurableOrchestrationStatus: ...

    async def raise_event(
        self, instance_id: str, event_name: str, event_data: Any = None
    ) -> None: ...


def decoded(value: Any) -> Any:
    """A status field as a JSON value: backends hand back JSON text or already-parsed values."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def instance_exists(status: DurableOrchestrationStatus | None) -> bool:
    # The client answers an unknown instance with an empty status object, not with None.
    return bool(status) and status is not None and status.runtime_status is not None
