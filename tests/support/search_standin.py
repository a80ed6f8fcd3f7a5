"""A local stand-in for the Azure AI Search REST API, as far as running indexers goes.

It answers what the real service answers for

- ``POST /indexers('<name>')/search.run?api-version=...``: 202 with an empty body, or whatever
  the test scripted for that indexer (409 already running, 503, ...);
- ``GET /indexers('<name>')/search.status?api-version=...``: a minimal status document;

with 404 and the service's error body ``{"error": {"code": ..., "message": ...}}`` for unknown
indexers, 403 when a key is configured and the ``api-key`` header does not match, and 400
without ``api-version``. Every request is recorded for assertions.

In-process::

    with SearchStandIn(api_key="k") as standin:
        standin.script("docs", 409, then=202)   # busy once, then accepted for ever
        ...  # point the code under test at standin.endpoint
        assert [c.status for c in standin.calls("docs")] == [409, 202]

A test that runs the app in a subprocess passes ``standin.endpoint`` as ``SEARCH_ENDPOINT``.
From a shell: ``python -m tests.support.search_standin --port 8089 --api-key k
--indexer docs=409,202`` (the last status of a sequence repeats); ``GET /_standin/calls`` then
lists the recorded calls as JSON.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

Operation = Literal["run", "status"]

_INDEXER_PATH = re.compile(r"^/indexers\('(?P<name>[^/]*)'\)/search\.(?P<op>run|status)$")
_CALLS_PATH = "/_standin/calls"

# Messages as the real service words them, so logs read the same in tests.
_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("", "The request is invalid."),
    403: ("", "Authorization failed."),
    404: ("", "No indexer with the name '{name}' was found in a service named '{service}'."),
    409: (
        "",
        "Another indexer invocation is currently in progress; "
        "concurrent invocations are not allowed.",
    ),
    429: ("", "Too many requests. Please retry later."),
    500: ("", "An internal error occurred."),
    503: ("", "Service Unavailable. Please retry later."),
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer to ``search.run``.

    ``delay`` seconds pass before the answer is sent, to provoke client read timeouts.
    """

    status: int
    code: str | None = None
    message: str | None = None
    delay: float = 0.0


ReplySpec = Reply | int


@dataclass(frozen=True)
class RecordedCall:
    """One request the stand-in received, with what it answered."""

    method: str
    path: str
    indexer: str | None
    operation: Operation | None
    api_version: str | None
    api_key_ok: bool | None
    """None when the stand-in requires no key, else whether the ``api-key`` header matched."""
    status: int
    at: datetime


@dataclass
class _Script:
    pending: deque[Reply]
    then: Reply
    last_started_at: datetime | None = None

    def next_reply(self) -> Reply:
        return self.pending.popleft() if self.pending else self.then


@dataclass
class _Answer:
    status: int
    body: dict[str, Any] | None = None
    delay: float = 0.0


def _as_reply(spec: ReplySpec) -> Reply:
    return spec if isinstance(spec, Reply) else Reply(int(spec))


class SearchStandIn:
    """The stand-in server; ``start()`` it (or use it as a context manager).

    ``stop()`` then ``start()`` again simulates an outage: scripts and recorded calls are kept.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        service_name: str = "standin",
    ) -> None:
        self._api_key = api_key
        self._host = host
        self._port = port
        self.service_name = service_name
        self._lock = threading.Lock()
        self._scripts: dict[str, _Script] = {}
        self._calls: list[RecordedCall] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the search stand-in is already running")
        server = _Server((self._host, self._port), _Handler)
        server.standin = self
        self._server = server
        # A restart after stop() comes back on the same port, hence the same endpoint.
        self._port = self.port
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"search-standin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the search stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The service URL to give the SDK (``SEARCH_ENDPOINT``)."""
        return f"http://{self._host}:{self.port}"

    # -- configuration -----------------------------------------------------------------------

    @property
    def api_key(self) -> str | None:
        return self._api_key

    def require_api_key(self, api_key: str | None) -> None:
        """Require this ``api-key`` header from now on (None: accept any request)."""
        with self._lock:
            self._api_key = api_key

    def script(self, indexer: str, *replies: ReplySpec, then: ReplySpec = 202) -> None:
        """Define ``indexer``: its run requests get ``replies`` in order, then ``then`` for ever.

        ``script("a")`` is an indexer that always starts; ``script("a", then=409)`` one that is
        always busy; ``script("a", 503, 503)`` one that fails twice before it starts.
        """
        with self._lock:
            self._scripts[indexer] = _Script(
                pending=deque(_as_reply(r) for r in replies), then=_as_reply(then)
            )

    def forget(self, indexer: str) -> None:
        """Make ``indexer`` unknown again (404)."""
        with self._lock:
            self._scripts.pop(indexer, None)

    # -- inspection --------------------------------------------------------------------------

    def calls(
        self, indexer: str | None = None, operation: Operation | None = "run"
    ) -> list[RecordedCall]:
        """Recorded requests, oldest first; by default the run requests of every indexer."""
        with self._lock:
            return [
                c
                for c in self._calls
                if (indexer is None or c.indexer == indexer)
                and (operation is None or c.operation == operation)
            ]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for_calls(
        self, count: int, indexer: str | None = None, timeout: float = 10.0
    ) -> list[RecordedCall]:
        """Block until ``count`` run requests arrived (for apps running in a subprocess)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls(indexer)
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    # -- request handling (called on server threads) ----------------------------------------

    def _answer(
        self, method: str, raw_path: str, api_key_header: str | None
    ) -> tuple[_Answer, RecordedCall]:
        url = urlsplit(raw_path)
        api_versions = parse_qs(url.query).get("api-version")
        api_version = api_versions[0] if api_versions else None
        match = _INDEXER_PATH.match(url.path)
        indexer = unquote(match["name"]) if match else None
        operation: Operation | None = None
        if match:
            operation = "run" if match["op"] == "run" else "status"
        now = datetime.now(UTC)

        with self._lock:
            key_ok: bool | None = None
            if self._api_key is not None:
                key_ok = api_key_header is not None and hmac.compare_digest(
                    api_key_header.encode(), self._api_key.encode()
                )
            answer = self._decide(method, url.path, indexer, operation, api_version, key_ok, now)
            call = RecordedCall(
                method=method,
                path=url.path,
                indexer=indexer,
                operation=operation,
                api_version=api_version,
                api_key_ok=key_ok,
                status=answer.status,
                at=now,
            )
            # Recorded before any scripted delay, so a client that timed out can already
            # see its request in the log.
            self._calls.append(call)
        return answer, call

    def _decide(
        self,
        method: str,
        path: str,
        indexer: str | None,
        operation: Operation | None,
        api_version: str | None,
        key_ok: bool | None,
        now: datetime,
    ) -> _Answer:
        # The real service authenticates before it looks at the resource.
        if key_ok is False:
            return self._error(403)
        if operation is None or indexer is None:
            return self._error(404, message=f"The resource '{path}' was not found.")
        expected_method = "POST" if operation == "run" else "GET"
        if method != expected_method:
            return self._error(405, code="", message=f"The method '{method}' is not allowed.")
        if not api_version:
            return self._error(
                400,
                message="The api-version query parameter (?api-version=) is required "
                "for all requests.",
            )
        script = self._scripts.get(indexer)
        if script is None:
            return self._error(404, name=indexer)
        if operation == "status":
            return _Answer(200, _status_document(indexer, script))
        reply = script.next_reply()
        if 200 <= reply.status < 300:
            script.last_started_at = now
            return _Answer(reply.status, None, reply.delay)
        answer = self._error(reply.status, code=reply.code, message=reply.message, name=indexer)
        answer.delay = reply.delay
        return answer

    def _error(
        self,
        status: int,
        *,
        code: str | None = None,
        message: str | None = None,
        name: str = "",
    ) -> _Answer:
        default_code, default_message = _DEFAULT_ERRORS.get(status, ("", HTTPStatus(status).phrase))
        text = message if message is not None else default_message
        body = {
            "error": {
                "code": code if code is not None else default_code,
                "message": text.format(name=name, service=self.service_name),
            }
        }
        return _Answer(status, body)

    def _calls_document(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**asdict(c), "at": c.at.isoformat()} for c in self._calls]


def _status_document(indexer: str, script: _Script) -> dict[str, Any]:
    last_result: dict[str, Any] | None = None
    if script.last_started_at is not None:
        started = script.last_started_at.isoformat().replace("+00:00", "Z")
        last_result = {
            "status": "success",
            "errorMessage": None,
            "startTime": started,
            "endTime": started,
            "itemsProcessed": 0,
            "itemsFailed": 0,
            "initialTrackingState": None,
            "finalTrackingState": None,
            "errors": [],
            "warnings": [],
        }
    return {
        "@odata.context": "https://standin/$metadata#Microsoft.Azure.Search.V2016_09_01.IndexerExecutionInfo",
        "name": indexer,
        "status": "running",
        "lastResult": last_result,
        "executionHistory": [last_result] if last_result else [],
        "limits": {
            "maxRunTime": "PT2H",
            "maxDocumentExtractionSize": 16777216,
            "maxDocumentContentCharactersToExtract": 32768,
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Do not wait for handlers still sleeping out a scripted delay when the test is done.
    block_on_close = False
    standin: SearchStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (read timeout) closes its socket while a delayed answer is
        # pending; that is expected, not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes each connection after its answer, so no pooled keep-alive connection
    # can reach a stopped stand-in through a handler thread that is still alive.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        standin = self.server.standin
        if self.command == "GET" and urlsplit(self.path).path == _CALLS_PATH:
            self._send(_Answer(200, {"value": standin._calls_document()}))
            return
        answer, _ = standin._answer(self.command, self.path, self.headers.get("api-key"))
        if answer.delay > 0:
            time.sleep(answer.delay)
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("request-id", "00000000-0000-0000-0000-000000000000")
        self.send_header("OData-Version", "4.0")
        if answer.body is not None:
            self.send_header("Content-Type", "application/json; odata.metadata=minimal")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("search stand-in: " + format, *args)


def _parse_indexer_option(text: str) -> tuple[str, list[int]]:
    name, _, statuses = text.partition("=")
    codes = [int(s) for s in statuses.split(",") if s.strip()] or [202]
    return name, codes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument(
        "--indexer",
        action="append",
        default=[],
        metavar="NAME[=STATUS,...]",
        help="define an indexer; the last status repeats (default 202)",
    )
    args = parser.parse_args(argv)
    standin = SearchStandIn(api_key=args.api_key, host=args.host, port=args.port)
    for spec in args.indexer:
        name, codes = _parse_indexer_option(spec)
        standin.script(name, *codes[:-1], then=codes[-1])
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with standin:
        print(f"search stand-in listening on {standin.endpoint}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
