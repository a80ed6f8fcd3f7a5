"""Wires the pieces together: settings, app, state, HTTP server, Durable engine, queue and timer
listeners."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from devhost.activity_runner import ActivityRunner
from devhost.app_loader import (
    TIMER_TRIGGER,
    AppLoadError,
    LoadedApp,
    load_app,
    resolve_app_location,
    resolve_setting_expressions,
)
from devhost.durable_api import DurableApi, client_binding_json
from devhost.durable_engine import DurableEngine
from devhost.durable_store import DurableStore
from devhost.function_invoker import (
    FunctionInvoker,
    UnsupportedBindingError,
    UnsupportedTriggerError,
    check_supported,
)
from devhost.host_config import HostConfig, HostConfigError, load_host_config
from devhost.http_routes import HttpRoutes
from devhost.orchestration_runner import OrchestrationRunner
from devhost.queue_codec import encode_body, output_bodies
from devhost.queue_triggers import QueueListener
from devhost.settings_file import SettingsFileError, apply_local_settings
from devhost.storage_accounts import ConnectionSettingError, StorageAccounts, check_connection
from devhost.timer_triggers import TimerListener, TimerScheduleError, timer_schedule
from devhost.worker_pool import DaemonPool

log = logging.getLogger("devhost.host")

LISTEN_HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 3.0


class StartupError(RuntimeError):
    """The host cannot start; the message says what to fix (printed without a traceback)."""


@dataclass(frozen=True)
class HostOptions:
    app: str = "function_app"
    port: int = 7071
    state_dir: Path = Path(".devhost")
    settings: Path = Path("local.settings.json")


def settings_path(options: HostOptions, app_dir: Path) -> Path:
    """A relative settings path is looked up in the current directory, then next to the app."""
    if options.settings.is_absolute() or options.settings.exists():
        return options.settings
    return app_dir / options.settings


def prepare_app(options: HostOptions) -> tuple[LoadedApp, HostConfig]:
    """Load settings, import the app and check everything it needs; StartupError if not."""
    try:
        _, _, app_dir = resolve_app_location(options.app)
        applied = apply_local_settings(settings_path(options, app_dir))
        if applied:
            log.info("loaded %d setting(s) from %s", len(applied), options.settings.name)
        loaded = load_app(options.app)
        config = load_host_config(loaded.app_dir)
        for function in loaded.functions:
            try:
                check_supported(function)
            except UnsupportedTriggerError as exc:
                log.warning("%s; it will not run here", exc)
        for function in loaded.functions:
            for binding in (function.trigger, *function.bindings_of_type("queue")):
                if "queueName" in binding:
                    resolve_setting_expressions(str(binding["queueName"]))
                    check_connection(binding.get("connection"), os.environ)
            if function.trigger_type == TIMER_TRIGGER:
                timer_schedule(function)
    except (
        AppLoadError,
        SettingsFileError,
        HostConfigError,
        UnsupportedBindingError,
        ConnectionSettingError,
        TimerScheduleError,
    ) as exc:
        raise StartupError(str(exc)) from exc
    return loaded, config


class Host:
    """One running host. ``start()`` returns once it serves; ``stop()`` shuts it down cleanly."""

    def __init__(self, options: HostOptions, app: LoadedApp, config: HostConfig) -> None:
        self.options = options
        self.app = app
        self.config = config
        self.port = options.port
        self._store: DurableStore | None = None
        self._runner: web.AppRunner | None = None
        self._accounts = StorageAccounts()
        self._function_pool = DaemonPool(8, "devhost-function")
        self._activity_pool = DaemonPool(
            config.durable.max_concurrent_activities, "devhost-activity"
        )
        self._engine: DurableEngine | None = None
        self._activities: ActivityRunner | None = None
        self._listeners: list[QueueListener] = []
        self._timers: dict[str, TimerListener] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def base_url(self) -> str:
        return f"http://{LISTEN_HOST}:{self.port}"

    @property
    def store(self) -> DurableStore:
        assert self._store is not None, "host not started"
        return self._store

    def _client_binding(self, binding: Mapping[str, Any]) -> str:
        hub = binding.get("taskHub") or self.config.durable.hub_name
        return client_binding_json(self.base_url, str(hub), binding.get("connectionName"))

    async def _send_queue_output(self, binding: Mapping[str, Any], value: Any) -> None:
        bodies = output_bodies(value)
        if not bodies:
            return
        service = self._accounts.queue_service(binding.get("connection"))
        queue = service.get_queue_client(resolve_setting_expressions(str(binding["queueName"])))
        with contextlib.suppress(Exception):
            await queue.create_queue()
        for body in bodies:
            await queue.send_message(encode_body(body, self.config.queues.message_encoding))

    async def start(self) -> None:
        store = DurableStore(self.options.state_dir)
        self._store = store
        invoker = FunctionInvoker(
            sync_pool=self._function_pool,
            client_binding=self._client_binding,
            send_queue_output=self._send_queue_output,
            function_directory=str(self.app.app_dir),
        )
        orchestrations = OrchestrationRunner(store, self.app.orchestrators)
        activities = ActivityRunner(
            store=store,
            activities=self.app.activities,
            invoker=invoker,
            pool=self._activity_pool,
            max_concurrency=self.config.durable.max_concurrent_activities,
            on_result=lambda: self._wake(),
        )
        self._activities = activities
        engine = DurableEngine(store=store, runner=orchestrations, activities=activities)
        self._engine = engine

        web_app = web.Application(client_max_size=16 * 1024 * 1024)
        DurableApi(
            store=store,
            is_orchestrator=orchestrations.is_orchestrator,
            wake=engine.wake,
            task_hub=self.config.durable.hub_name,
            base_url=lambda: self.base_url,
        ).add_routes(web_app)
        routes = HttpRoutes(
            functions=self.app.http_functions,
            invoker=invoker,
            route_prefix=self.config.route_prefix,
        )
        routes.add_routes(web_app)
        await self._serve(web_app)

        self._tasks.append(asyncio.create_task(engine.run(), name="durable-engine"))
        for function in self.app.queue_functions.values():
            listener = QueueListener(
                function=function,
                accounts=self._accounts,
                config=self.config.queues,
                invoker=invoker,
            )
            self._listeners.append(listener)
            self._tasks.append(asyncio.create_task(listener.run(), name=f"queue-{function.name}"))
        self._start_timers(invoker)
        self._log_started(routes)

    def _start_timers(self, invoker: FunctionInvoker) -> None:
        functions = self.app.timer_functions
        time_zone = os.environ.get("WEBSITE_TIME_ZONE", "").strip()
        if functions and time_zone:
            log.warning(
                "WEBSITE_TIME_ZONE=%s is not supported here: timer schedules run in UTC", time_zone
            )
        for function in functions.values():
            timer = TimerListener(function=function, invoker=invoker)
            self._timers[function.name] = timer
            self._tasks.append(asyncio.create_task(timer.run(), name=f"timer-{function.name}"))

    def _wake(self) -> None:
        if self._engine is not None:
            self._engine.wake()

    async def _serve(self, web_app: web.Application) -> None:
        runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
        await runner.setup()
        # Bind the socket ourselves so --port 0 works and the real port is known.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LISTEN_HOST, self.options.port))
        except OSError as exc:
            sock.close()
            await runner.cleanup()
            raise StartupError(
                f"cannot listen on {LISTEN_HOST}:{self.options.port}: {exc.strerror}"
            ) from exc
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner

    def _log_started(self, routes: HttpRoutes) -> None:
        for function in self.app.functions:
            detail = function.trigger_type
            if function.trigger_type == "queueTrigger":
                queue = resolve_setting_expressions(str(function.trigger.get("queueName")))
                detail = f"queue {queue}"
            elif function.name in self._timers:
                detail = self._timers[function.name].describe()
            log.info("function %s: %s", function.name, detail)
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        for route in routes.routes:
            methods = ",".join(sorted(route.methods)) if route.methods else "*"
            log.info("route %s %s%s/%s", methods, self.base_url, prefix, route.template)
        log.info("devhost listening on %s (state in %s)", self.base_url, self.options.state_dir)

    async def _stop_tasks(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_SECONDS + 2)
        for task in pending:
            task.cancel()

    async def _drain_activities(self) -> None:
        if self._activities is None:
            return
        abandoned = await self._activities.drain(STOP_GRACE_SECONDS)
        if abandoned:
            log.warning("%d activity run(s) abandoned; they run again on the next start", abandoned)

    async def stop(self) -> None:
        served = self._runner is not None
        if served:
            log.info("stopping")
        for listener in self._listeners:
            listener.stop()
        for timer in self._timers.values():
            timer.stop()
        if self._engine is not None:
            self._engine.stop()
        # Queue work, timer runs and activities wind down side by side, each within the grace
        # period.
        await asyncio.gather(self._stop_tasks(), self._drain_activities())
        if self._runner is not None:
            await self._runner.cleanup()
        await _close_durable_client_session()
        await self._accounts.close()
        self._function_pool.shutdown()
        self._activity_pool.shutdown()
        if self._store is not None:
            self._store.close()
        if served:
            log.info("stopped")


async def _close_durable_client_session() -> None:
    # The SDK keeps one aiohttp session per process for its client calls; close it so a stopped
    # host leaves no open connections (and a host started later in-process gets a fresh one).
    try:
        from azure.durable_functions.models.utils import http_utils
    except ImportError:
        return
    close = getattr(http_utils, "_close_session", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
