"""Timer-triggered functions for the devhost tests.

Kept apart from the sample app so no timer fires during the other host tests. Every schedule
comes from an app setting, so a test switches on only the timers it watches (the others get a
one-day interval). Runs are recorded as JSON lines in the file named by ``TIMER_RUN_LOG``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

# The concrete class the Python worker passes; func.TimerRequest only declares past_due.
from azure.functions.timer import TimerRequest

app = df.DFApp()


def record(function: str, **details: Any) -> None:
    line = json.dumps({"function": function, "at": datetime.now(UTC).isoformat(), **details})
    with Path(os.environ["TIMER_RUN_LOG"]).open("a") as log:
        log.write(line + "\n")


@app.timer_trigger(schedule="%TIMER_STARTUP_SCHEDULE%", arg_name="timer", run_on_startup=True)
@app.durable_client_input(client_name="client")
async def on_startup(timer: TimerRequest, client: df.DurableOrchestrationClient) -> None:
    # A call through the durable client shows the binding is filled in as for other triggers.
    status = await client.get_status("no-such-instance")
    record(
        "on_startup",
        request=f"{type(timer).__module__}.{type(timer).__qualname__}",
        past_due=timer.past_due,
        next=timer.schedule_status.get("Next"),
        client=type(client).__name__,
        found=bool(status),
    )


@app.timer_trigger(schedule="%TIMER_TICK_SCHEDULE%", arg_name="timer")
@app.queue_output(arg_name="out", queue_name="%TIMER_QUEUE%", connection="TimerStorage")
def tick(timer: TimerRequest, out: func.Out[str]) -> None:
    out.set(
        json.dumps(
            {
                "due": timer.schedule_status["Next"],
                "last": timer.schedule_status.get("Last"),
                "past_due": timer.past_due,
                "thread": threading.current_thread().name,
            }
        )
    )


@app.timer_trigger(schedule="%TIMER_BROKEN_SCHEDULE%", arg_name="timer")
def broken(timer: func.TimerRequest) -> None:
    record("broken")
    raise RuntimeError("the timer broke\nsecond line with details")


@app.timer_trigger(schedule="%TIMER_SLOW_SCHEDULE%", arg_name="timer")
def slow(timer: func.TimerRequest) -> None:
    """Runs until the test creates the file ``TIMER_RELEASE_FILE`` (at most 20 s)."""
    record("slow", event="start")
    release = Path(os.environ["TIMER_RELEASE_FILE"])
    deadline = time.monotonic() + 20
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    record("slow", event="end")
