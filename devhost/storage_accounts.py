"""Storage accounts named by a binding's ``connection``, resolved as the Functions host does.

``connection: "PipelineStorage"`` means: a connection string in the app setting
``PipelineStorage`` (also ``AzureWebJobsPipelineStorage``), or an identity-based connection in
``PipelineStorage__queueServiceUri`` (or ``PipelineStorage__accountName``) used with
``DefaultAzureCredential``. No connection means ``AzureWebJobsStorage``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from azure.storage.queue.aio import QueueServiceClient

DEFAULT_CONNECTION = "AzureWebJobsStorage"


class ConnectionSettingError(ValueError):
    """The connection a binding names is not configured."""


def _setting(environ: Mapping[str, str], name: str) -> str | None:
    for candidate in (name, f"AzureWebJobs{name}"):
        value = environ.get(candidate, "").strip()
        if value:
            return value
    return None


def describe_connection(connection: str | None, environ: Mapping[str, str]) -> str:
    """Which kind of connection is configured (never the value itself)."""
    name = connection or DEFAULT_CONNECTION
    if _setting(environ, name):
        return f"{name} (connection string)"
    return f"{name} (identity)"


def queue_service_url(connection: str | None, environ: Mapping[str, str]) -> str | None:
    name = connection or DEFAULT_CONNECTION
    uri = _setting(environ, f"{name}__queueServiceUri")
    if uri:
        return uri
    account = _setting(environ, f"{name}__accountName")
    if account:
        return f"https://{account}.queue.core.windows.net"
    return None


def check_connection(connection: str | None, environ: Mapping[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    name = connection or DEFAULT_CONNECTION
    if _setting(env, name) is None and queue_service_url(connection, env) is None:
        raise ConnectionSettingError(
            f"the connection setting {name!r} is not set: give it a storage connection string,"
            f" or set {name}__queueServiceUri for a managed identity"
        )


class StorageAccounts:
    """One async queue service client per connection name, closed together."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._clients: dict[str, QueueServiceClient] = {}
        self._credentials: list[Any] = []

    def queue_service(self, connection: str | None) -> QueueServiceClient:
        name = connection or DEFAULT_CONNECTION
        client = self._clients.get(name)
        if client is not None:
            return client
        check_connection(connection, self._environ)
        connection_string = _setting(self._environ, name)
        if connection_string is not None:
            client = QueueServiceClient.from_connection_string(connection_string)
        else:
            from azure.identity.aio import DefaultAzureCredential

            url = queue_service_url(connection, self._environ)
            assert url is not None
            credential = DefaultAzureCredential()
            self._credentials.append(credential)
            client = QueueServiceClient(url, credential=credential)
        self._clients[name] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        for credential in self._credentials:
            await credential.close()
        self._clients.clear()
        self._credentials.clear()
