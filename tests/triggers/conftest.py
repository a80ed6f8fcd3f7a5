"""Fixtures for calling the registered functions' own code.

The app's services are wired from the app settings, here pointing ``PipelineStorage`` at the
test storage account (Azurite), so dead letters really reach the contract's poison queues.
The Durable client is a recording double (``durable_double.FakeDurableClient``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from settings import load_settings
from tests.integration.queues.storage import reset_queues
from tests.triggers.durable_double import FakeDurableClient
from tests.triggers.messages import queue_message, run
from wiring import app_services

TIMEOUT_SECONDS = 3600


def _forget_settings() -> None:
    load_settings.cache_clear()
    app_services.cache_clear()


@pytest.fixture
def clean_queues(queue_service: QueueServiceClient) -> QueueServiceClient:
    reset_queues(queue_service)
    return queue_service


@pytest.fixture
def app_on_azurite(
    storage_connection_string: str,
    monkeypatch: pytest.MonkeyPatch,
    clean_queues: QueueServiceClient,
) -> Iterator[Any]:
    """``function_app`` with its settings read from an environment that points at Azurite."""
    monkeypatch.setenv("PipelineStorage", storage_connection_string)
    monkeypatch.delenv("PipelineStorage__queueServiceUri", raising=False)
    monkeypatch.setenv("PIPELINE_JOB_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
    _forget_settings()
    module = importlib.import_module("function_app")
    yield module
    _forget_settings()


@pytest.fixture
def user_code(app_on_azurite: Any) -> Callable[[str], Any]:
    """The undecorated code of a registered function, by its function name."""
    functions = {f.get_function_name(): f for f in registered_functions(app_on_azurite.app)}

    def lookup(name: str) -> Any:
        return functions[name].get_user_function().client_function

    return lookup


def registered_functions(app: Any) -> list[Any]:
    """``app.get_functions()``, leaving the app as it was.

    The SDK remembers the names it has listed and refuses to list them a second time (the
    worker indexes an app once), so the bookkeeping is restored for the next caller.
    """
    remembered = app.functions_bindings
    try:
        return list(app.get_functions())
    finally:
        app.functions_bindings = remembered


@pytest.fixture
def durable() -> FakeDurableClient:
    return FakeDurableClient()


@pytest.fixture
def queue_delivery(
    user_code: Callable[[str], Any], durable: FakeDurableClient
) -> Callable[[str], Callable[..., None]]:
    """Delivers a body to a queue-triggered function as the host would, one real message each."""

    def to(function_name: str) -> Callable[..., None]:
        function = user_code(function_name)

        def send(body: bytes | str, **message_options: Any) -> None:
            run(function(message=queue_message(body, **message_options), client=durable))

        return send

    return to
