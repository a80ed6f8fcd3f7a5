"""Call an app function with its bindings filled in, as the Python worker does.

The trigger value goes to the trigger's parameter, a ``durableClient`` binding gets the client
JSON the Durable extension would pass (DFApp's wrapper turns it into a real
``DurableOrchestrationClient``), a ``context`` parameter gets a ``func.Context``, and ``queue``
output bindings get a ``func.Out`` whose value is sent once the function succeeded. Async
functions run on the host's event loop, sync ones on a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions._abc import RetryContext, RpcException, TraceContext

from devhost.app_loader import (
    ACTIVITY_TRIGGER,
    DURABLE_CLIENT,
    HTTP_TRIGGER,
    ORCHESTRATION_TRIGGER,
    QUEUE_TRIGGER,
    TIMER_TRIGGER,
    AppFunction,
)
from devhost.worker_pool import DaemonPool

T = TypeVar("T")

SUPPORTED_TRIGGERS = frozenset(
    {QUEUE_TRIGGER, TIMER_TRIGGER, HTTP_TRIGGER, ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER}
)
_QUEUE_OUTPUT = "queue"
_HTTP_OUTPUT = "http"
_RETURN = "$return"

ClientBindingFactory = Callable[[dict[str, Any]], str]
QueueSender = Callable[[dict[str, Any], Any], Awaitable[None]]


def first_line(exc: BaseException, limit: int = 200) -> str:
    """What a failed function's log line shows of its exception."""
    # Only the first line: validation errors often quote the offending input further down.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text[:limit]


class UnsupportedBindingError(ValueError):
    pass


class UnsupportedTriggerError(UnsupportedBindingError):
    """The host does not run this kind of trigger; the function is left out."""


class OutValue(func.Out[T], Generic[T]):
    """The ``func.Out`` the worker passes for output bindings."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> RpcException:
        raise AttributeError("no retry in progress")


class InvocationContext(func.Context):
    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._local = threading.local

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> RetryContext:
        return _RetryContext()


@dataclass
class Invocation:
    """What a call produced: the return value and the values set on named output bindings."""

    return_value: Any
    outputs: dict[str, Any] = field(default_factory=dict)


def check_supported(function: AppFunction) -> None:
    """Refuse, at start-up, functions whose bindings the host cannot provide."""
    if function.trigger_type not in SUPPORTED_TRIGGERS:
        raise UnsupportedTriggerError(
            f"function {function.name!r}: devhost does not run {function.trigger_type!r} triggers"
        )
    for binding in function.bindings:
        if binding is function.trigger or binding.get("type") == DURABLE_CLIENT:
            continue
        if str(binding.get("direction", "")).upper() == "OUT" and binding.get("type") in {
            _QUEUE_OUTPUT,
            _HTTP_OUTPUT,
        }:
            continue
        raise UnsupportedBindingError(
            f"function {function.name!r}: devhost does not support the {binding.get('type')!r}"
            f" binding {binding.get('name')!r}"
        )


class FunctionInvoker:
    def __init__(
        self,
        *,
        sync_pool: DaemonPool,
        client_binding: ClientBindingFactory,
        send_queue_output: QueueSender,
        function_directory: str,
    ) -> None:
        self._pool = sync_pool
        self._client_binding = client_binding
        self._send_queue_output = send_queue_output
        self._function_directory = function_directory

    def _arguments(
        self, function: AppFunction, trigger_value: Any
    ) -> tuple[dict[str, Any], dict[str, OutValue[Any]]]:
        kwargs: dict[str, Any] = {}
        outs: dict[str, OutValue[Any]] = {}
        for binding in function.bindings:
            name = str(binding.get("name"))
            if binding is function.trigger:
                kwargs[name] = trigger_value
            elif binding.get("type") == DURABLE_CLIENT:
                kwargs[name] = self._client_binding(binding)
            elif name != _RETURN and str(binding.get("direction", "")).upper() == "OUT":
                outs[name] = OutValue()
                kwargs[name] = outs[name]
        parameters = inspect.signature(function.func).parameters
        if "context" in parameters and "context" not in kwargs:
            kwargs["context"] = InvocationContext(function.name, self._function_directory)
        return kwargs, outs

    async def invoke(
        self, function: AppFunction, trigger_value: Any, *, pool: DaemonPool | None = None
    ) -> Invocation:
        """Run the function; raises whatever it raises. Queue outputs are sent on success.

        Sync functions run on ``pool`` (the invoker's own pool by default).
        """
        kwargs, outs = self._arguments(function, trigger_value)
        if function.is_async:
            result = await function.func(**kwargs)
        else:
            future = (pool or self._pool).submit(functools.partial(function.func, **kwargs))
            result = await asyncio.wrap_future(future)
        invocation = Invocation(result, {name: out.get() for name, out in outs.items()})
        for binding in function.bindings:
            if binding.get("type") != _QUEUE_OUTPUT:
                continue
            name = str(binding.get("name"))
            value = result if name == _RETURN else invocation.outputs.get(name)
            await self._send_queue_output(binding, value)
        return invocation
