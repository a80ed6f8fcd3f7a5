"""Run a host in a background thread with its own event loop (for in-process tests)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from devhost.host import Host, HostOptions, prepare_app

T = TypeVar("T")


class BackgroundHost:
    """``with BackgroundHost(options) as host:`` starts the host and stops it on exit."""

    def __init__(self, options: HostOptions, start_timeout: float = 30.0) -> None:
        self.options = options
        self._start_timeout = start_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="devhost", daemon=True)
        self.host: Host | None = None

    @property
    def base_url(self) -> str:
        assert self.host is not None
        return self.host.base_url

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the host's loop, e.g. calls of the SDK's durable client, whose
        shared HTTP session belongs to the loop that first used it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=timeout)

    def __enter__(self) -> BackgroundHost:
        loaded, config = prepare_app(self.options)
        self.host = Host(self.options, loaded, config)
        self._thread.start()
        started: Future[None] = asyncio.run_coroutine_threadsafe(self.host.start(), self._loop)
        try:
            started.result(timeout=self._start_timeout)
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self.host is not None and self._thread.is_alive():
            stopping = asyncio.run_coroutine_threadsafe(self.host.stop(), self._loop)
            stopping.result(timeout=30)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()
