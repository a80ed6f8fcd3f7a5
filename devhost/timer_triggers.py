"""Timer triggers, scheduled the way the Functions host's timer listener runs them.

Per timer function: the schedule (NCRONTAB or TimeSpan, UTC; ``%Setting%`` resolved) is parsed
at start-up, the function runs once at start when ``runOnStartup`` is set, then at every
occurrence with an ``azure.functions.TimerRequest``. An occurrence that comes while the previous
run is still going is skipped, as the Functions host's per-function singleton lock does. A failed
run is logged and the schedule carries on. Nothing is persisted between host runs, so
``past_due`` is always False and occurrences missed while no host ran are not caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest

from devhost.app_loader import AppFunction, AppLoadError, resolve_setting_expressions
from devhost.function_invoker import FunctionInvoker, first_line
from devhost.ncrontab import Schedule, ScheduleError, parse_schedule

log = logging.getLogger("devhost.timer")

SHUTDOWN_GRACE_SECONDS = 3.0
# Sleeps are cut into slices that re-read the wall clock: asyncio sleeps on the monotonic clock,
# which does not advance while a laptop is suspended, so one long sleep would wake up late.
MAX_SLEEP_SECONDS = 30.0


class TimerScheduleError(ValueError):
    """A timer function's schedule cannot be used; the message names the function."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def timer_schedule(function: AppFunction, environ: Mapping[str, str] | None = None) -> Schedule:
    """The function's parsed schedule, with ``%Setting%`` resolved from the environment."""
    raw = str(function.trigger.get("schedule", ""))
    try:
        text = resolve_setting_expressions(raw, environ)
    except AppLoadError as exc:
        raise TimerScheduleError(f"function {function.name!r}: {exc}") from exc
    try:
        return parse_schedule(text)
    except ScheduleError as exc:
        source = f" (from {raw})" if raw != text else ""
        raise TimerScheduleError(
            f"function {function.name!r}: invalid timer schedule {text!r}{source}: {exc}"
        ) from exc


def runs_on_startup(function: AppFunction) -> bool:
    value = function.trigger.get("runOnStartup", False)
    return value is True or str(value).strip().lower() == "true"


def format_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TimerListener:
    def __init__(
        self,
        *,
        function: AppFunction,
        invoker: FunctionInvoker,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.function = function
        self.schedule = timer_schedule(function)
        self.run_on_startup = runs_on_startup(function)
        self._invoker = invoker
        self._clock = clock
        self._stopping = asyncio.Event()
        self._running: asyncio.Task[None] | None = None
        self._last_run: datetime | None = None

    def stop(self) -> None:
        self._stopping.set()

    def describe(self) -> str:
        """One line for the start-up log: schedule, next occurrence, start-up run."""
        upcoming = format_instant(self.schedule.next_after(self._clock()))
        startup = ", runs at start-up" if self.run_on_startup else ""
        return f"timer {self.schedule.text!r} (UTC), next {upcoming}{startup}"

    async def run(self) -> None:
        try:
            if self.run_on_startup:
                self._start(None)
            previous = self._clock()
            while True:
                due = self.schedule.next_after(previous)
                now = self._clock()
                if due <= now:
                    # Late (a suspended laptop, a blocked loop): go on from now rather than
                    # firing every missed occurrence in a burst.
                    due = self.schedule.next_after(now)
                if not await self._sleep_until(due):
                    return
                previous = due
                if self._running is not None and not self._running.done():
                    log.warning(
                        "timer %s: skipped the run due %s, the previous run is still going",
                        self.function.name,
                        format_instant(due),
                    )
                    continue
                self._start(due)
        finally:
            await self._drain()

    async def _sleep_until(self, due: datetime) -> bool:
        """Wait until ``due``; False as soon as the listener is stopped."""
        while not self._stopping.is_set():
            remaining = (due - self._clock()).total_seconds()
            if remaining <= 0:
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=min(remaining, MAX_SLEEP_SECONDS)
                )
        return False

    def _start(self, due: datetime | None) -> None:
        self._running = asyncio.create_task(
            self._invoke(due), name=f"timer-run-{self.function.name}"
        )

    def _request(self, due: datetime | None, now: datetime) -> TimerRequest:
        # The shape the Functions host sends: Last is the previous run, Next the occurrence
        # being run (the upcoming one for the start-up run).
        upcoming = due if due is not None else self.schedule.next_after(now)
        status = {"Next": upcoming.isoformat(), "LastUpdated": now.isoformat()}
        if self._last_run is not None:
            status["Last"] = self._last_run.isoformat()
        return TimerRequest(past_due=False, schedule_status=status, schedule={"AdjustForDST": True})

    async def _invoke(self, due: datetime | None) -> None:
        now = self._clock()
        request = self._request(due, now)
        self._last_run = due if due is not None else now
        label = "start-up run" if due is None else f"run due {format_instant(due)}"
        started = time.monotonic()
        try:
            await self._invoker.invoke(self.function, request)
        except Exception as exc:
            log.warning(
                "timer %s: %s failed in %.0f ms: %s: %s",
                self.function.name,
                label,
                (time.monotonic() - started) * 1000,
                type(exc).__name__,
                first_line(exc),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return
        log.info(
            "timer %s: %s succeeded in %.0f ms",
            self.function.name,
            label,
            (time.monotonic() - started) * 1000,
        )

    async def _drain(self) -> None:
        running = self._running
        if running is None or running.done():
            return
        _, pending = await asyncio.wait({running}, timeout=SHUTDOWN_GRACE_SECONDS)
        if pending:
            running.cancel()
            await asyncio.wait({running}, timeout=1)
            log.warning("timer %s: abandoned a run still going at shutdown", self.function.name)
