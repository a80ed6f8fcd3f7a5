"""The Durable scheduling loop: fire due timers, run episodes, start activities.

Episodes run one at a time on a dedicated thread (orchestrator code is synchronous and the store
serializes writes anyway); activities run concurrently through the ActivityRunner. Anything that
produces new work calls ``wake()``; otherwise the loop sleeps until the next timer is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from devhost.activity_runner import ActivityRunner
from devhost.durable_store import DurableStore
from devhost.orchestration_runner import EpisodeOutcome, OrchestrationRunner, utc_now
from devhost.replay import parse_timestamp
from devhost.worker_pool import DaemonPool

log = logging.getLogger("devhost.orchestration")

# Upper bound on a sleep, so a clock jump or a missed wake-up costs at most this long.
MAX_IDLE_SECONDS = 1.0


class DurableEngine:
    def __init__(
        self,
        *,
        store: DurableStore,
        runner: OrchestrationRunner,
        activities: ActivityRunner,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._runner = runner
        self._activities = activities
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._orchestration_thread = DaemonPool(1, "devhost-orchestrator")

    def wake(self) -> None:
        """Ask the loop to look for work now; safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    busy = await self._pass()
                except Exception:
                    # Committed state is consistent whatever failed; try again shortly.
                    log.exception("durable engine pass failed")
                    busy = False
                if self._stopping:
                    break
                if not busy:
                    await self._sleep_until_work()
        finally:
            self._orchestration_thread.shutdown()

    async def _pass(self) -> bool:
        """Fire due timers, run waiting episodes, start activities; True if anything happened."""
        fired = await asyncio.to_thread(self._store.fire_due_timers, self._clock())
        outcomes = await asyncio.wrap_future(
            self._orchestration_thread.submit(
                lambda: self._runner.run_pending(lambda: self._stopping)
            )
        )
        for outcome in outcomes:
            _log_episode(outcome)
        if self._stopping:
            return False
        started = await self._activities.dispatch()
        return bool(fired or outcomes or started)

    async def _sleep_until_work(self) -> None:
        timeout = MAX_IDLE_SECONDS
        due = await asyncio.to_thread(self._store.next_timer_due)
        if due is not None:
            seconds = (parse_timestamp(due) - self._clock()).total_seconds()
            timeout = max(0.0, min(timeout, seconds))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)


_PLURALS = {"activity": "activities"}


def _log_episode(outcome: EpisodeOutcome) -> None:
    scheduled = ", ".join(
        f"{count} {_PLURALS.get(kind, kind + 's') if count > 1 else kind}"
        for kind, count in sorted(outcome.scheduled.items())
    )
    log.info(
        "orchestration %s instance=%s -> %s (%d new event%s%s)",
        outcome.name,
        outcome.instance_id,
        outcome.status.value,
        outcome.events_processed,
        "" if outcome.events_processed == 1 else "s",
        f"; scheduled {scheduled}" if scheduled else "",
    )
