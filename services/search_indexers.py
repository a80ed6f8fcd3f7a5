"""Running Azure AI Search indexers (contract 4.2, "Search indexers").

``IndexerRunner.run_once`` makes exactly one request and says what to do next. It never waits
or retries: the Durable orchestrator owns retrying, with durable timers between attempts, so
that a replay or a host restart does not lose or repeat the wait.
"""

from __future__ import annotations

import ipaddress
import logging
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineResponse
from azure.search.documents.indexes import SearchIndexerClient
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

_MAX_MESSAGE_CHARS: Final = 300
# 408 and 429 are the service asking to come back later, like a 5xx.
_TRANSIENT_4XX: Final = frozenset({408, 429})


class IndexerOutcome(StrEnum):
    """What one run request led to."""

    STARTED = "started"
    """The service accepted the run (2xx)."""
    BUSY = "busy"
    """409: the indexer is already running; try again later."""
    TRANSIENT = "transient"
    """5xx, 408, 429, a timeout or a connection error; try again later."""
    FAILED = "failed"
    """Any other 4xx (unknown indexer, bad key, ...): retrying will not help."""

    @property
    def retry_later(self) -> bool:
        return self in (IndexerOutcome.BUSY, IndexerOutcome.TRANSIENT)


class IndexerRunAttempt(BaseModel):
    """The classified result of one ``run_indexer`` request; JSON-serialisable."""

    model_config = ConfigDict(frozen=True)

    indexer: str
    outcome: IndexerOutcome
    status_code: int | None = None
    message: str | None = None

    @property
    def retry_later(self) -> bool:
        return self.outcome.retry_later


class IndexerRunner:
    """Asks the search service to run one indexer, once."""

    def __init__(self, client: SearchIndexerClient) -> None:
        self._client = client

    def run_once(self, indexer_name: str) -> IndexerRunAttempt:
        status_codes: list[int] = []

        def capture_status(response: PipelineResponse[Any, Any], *_: object) -> None:
            # run_indexer returns None on success; this is how the SDK hands back the response.
            status_codes.append(response.http_response.status_code)

        try:
            self._client.run_indexer(indexer_name, cls=capture_status)
        except HttpResponseError as exc:
            attempt = _from_http_error(indexer_name, exc)
        except (ServiceRequestError, ServiceResponseError) as exc:
            attempt = IndexerRunAttempt(
                indexer=indexer_name,
                outcome=IndexerOutcome.TRANSIENT,
                message=_short(f"no response from the search service: {_describe(exc)}"),
            )
        except AzureError as exc:
            attempt = IndexerRunAttempt(
                indexer=indexer_name,
                outcome=IndexerOutcome.TRANSIENT,
                message=_short(f"search request failed: {_describe(exc)}"),
            )
        else:
            attempt = IndexerRunAttempt(
                indexer=indexer_name,
                outcome=IndexerOutcome.STARTED,
                status_code=status_codes[0] if status_codes else None,
                message="indexer run accepted",
            )
        log = logger.warning if attempt.outcome is IndexerOutcome.FAILED else logger.info
        log(
            "Indexer %r: %s (status %s) %s",
            indexer_name,
            attempt.outcome.value,
            attempt.status_code,
            attempt.message or "",
        )
        return attempt


def _from_http_error(indexer: str, exc: HttpResponseError) -> IndexerRunAttempt:
    status = exc.status_code
    if status is None:
        if isinstance(exc, ClientAuthenticationError):
            # No HTTP status: the credential could not get a token (no managed identity,
            # not signed in, ...). That is configuration, not a passing condition.
            return IndexerRunAttempt(
                indexer=indexer,
                outcome=IndexerOutcome.FAILED,
                message=_short(f"could not get a Microsoft Entra ID token: {_describe(exc)}"),
            )
        return IndexerRunAttempt(
            indexer=indexer,
            outcome=IndexerOutcome.TRANSIENT,
            message=_short(f"search request failed: {_describe(exc)}"),
        )

    detail = _service_detail(exc)
    if 200 <= status < 300:
        # The SDK only expects 202, but any 2xx means the service took the request.
        outcome, summary = IndexerOutcome.STARTED, "indexer run accepted"
    elif status == 409:
        outcome, summary = IndexerOutcome.BUSY, "indexer is already running"
    elif status >= 500 or status in _TRANSIENT_4XX:
        outcome, summary = IndexerOutcome.TRANSIENT, "search service is unavailable or throttling"
    elif status == 404:
        outcome, summary = IndexerOutcome.FAILED, "no such indexer"
    elif status in (401, 403):
        outcome, summary = IndexerOutcome.FAILED, "not authorized to run the indexer"
    else:
        outcome, summary = IndexerOutcome.FAILED, "the search service rejected the request"
    message = f"HTTP {status}: {summary}" + (f" ({detail})" if detail else "")
    return IndexerRunAttempt(
        indexer=indexer, outcome=outcome, status_code=status, message=_short(message)
    )


def _service_detail(exc: HttpResponseError) -> str:
    """The service's own error code and message, from ``{"error": {"code", "message"}}``."""
    error = exc.error
    if error is None:
        return ""
    parts = [str(part) for part in (error.code, error.message) if part]
    return ": ".join(parts)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _short(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _MAX_MESSAGE_CHARS:
        return text
    return text[: _MAX_MESSAGE_CHARS - 1] + "…"


def create_search_indexer_client(
    endpoint: str,
    api_key: str | None,
    *,
    connection_timeout: float = 5.0,
    read_timeout: float = 20.0,
) -> SearchIndexerClient:
    """A client for the search service at ``endpoint``.

    With ``api_key`` the admin key is sent in the ``api-key`` header; without it
    DefaultAzureCredential supplies a Microsoft Entra ID token. The SDK's own retries are off
    (``retry_total=0``): the orchestrator decides when to try again.

    ``http://`` is accepted only for a loopback host and only with a key, for local stand-ins;
    azure-core refuses to send a bearer token over plain HTTP, and an admin key must not cross
    a network unencrypted.
    """
    _check_endpoint(endpoint, has_key=bool(api_key))
    credential: AzureKeyCredential | TokenCredential
    if api_key:
        credential = AzureKeyCredential(api_key)
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return SearchIndexerClient(
        endpoint,
        credential,
        retry_total=0,
        connection_timeout=connection_timeout,
        read_timeout=read_timeout,
    )


def _check_endpoint(endpoint: str, *, has_key: bool) -> None:
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError:
        raise ValueError("The search endpoint is not a valid URL") from None
    host = parts.hostname
    if not host:
        raise ValueError(
            "The search endpoint must be an absolute URL, e.g. https://<service>.search.windows.net"
        )
    scheme = parts.scheme.lower()
    if scheme == "https":
        return
    if scheme != "http":
        raise ValueError("The search endpoint must start with https://")
    if not _is_loopback(host):
        raise ValueError("The search endpoint must use https:// (http:// only for localhost)")
    if not has_key:
        raise ValueError("An http:// search endpoint needs an API key (Entra ID tokens need https)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
