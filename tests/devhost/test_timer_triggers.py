"""Timer triggers: schedules from settings, start-up runs, repeated runs, failures, overlaps."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

from devhost.app_loader import AppFunction
from devhost.background import BackgroundHost
from devhost.host import HostOptions
from devhost.ncrontab import CronSchedule, IntervalSchedule
from devhost.timer_triggers import TimerScheduleError, runs_on_startup, timer_schedule
from tests.devhost.conftest import wait_for
from tests.devhost.host_process import HostProcess, clean_environment, run_to_exit
from tests.fixtures.azurite import unique_queue_name

TIMER_APP = Path(__file__).resolve().parent / "timer_app"
EVERY_SECOND = "* * * * * *"
# Long enough never to fire during a test: the timers a test does not watch get this one.
DORMANT = "1.00:00:00"
SCHEDULE_SETTINGS = (
    "TIMER_STARTUP_SCHEDULE",
    "TIMER_TICK_SCHEDULE",
    "TIMER_BROKEN_SCHEDULE",
    "TIMER_SLOW_SCHEDULE",
)


def timer_function(schedule: str, **trigger: Any) -> AppFunction:
    binding = {"type": "timerTrigger", "name": "timer", "schedule": schedule, **trigger}
    return AppFunction(name="cleanup", trigger=binding, bindings=(binding,), func=lambda: None)


def test_a_schedule_setting_is_resolved_from_the_environment() -> None:
    schedule = timer_schedule(timer_function("%CLEANUP_SCHEDULE%"), {"CLEANUP_SCHEDULE": "00:05"})
    assert schedule == IntervalSchedule(text="00:05", interval=timedelta(minutes=5))
    literal = timer_function("0 */30 * * * *")
    assert isinstance(timer_schedule(literal, {}), CronSchedule)


def test_schedule_errors_name_the_function_and_the_setting() -> None:
    with pytest.raises(TimerScheduleError, match=r"^function 'cleanup': .*'%CLEANUP_SCHEDULE%'"):
        timer_schedule(timer_function("%CLEANUP_SCHEDULE%"), {})
    with pytest.raises(
        TimerScheduleError,
        match=(
            r"^function 'cleanup': invalid timer schedule '0 0 24 \* \* \*'"
            r" \(from %CLEANUP_SCHEDULE%\): hour field '24': 24 is out of range 0-23$"
        ),
    ):
        timer_schedule(timer_function("%CLEANUP_SCHEDULE%"), {"CLEANUP_SCHEDULE": "0 0 24 * * *"})


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [({}, False), ({"runOnStartup": True}, True), ({"runOnStartup": "True"}, True)],
)
def test_run_on_startup_is_read_from_the_binding(trigger: dict[str, Any], expected: bool) -> None:
    assert runs_on_startup(timer_function("00:05:00", **trigger)) is expected


@dataclass
class TimerApp:
    """The timer app's settings for one test, and what its functions left behind."""

    settings: dict[str, str]
    run_log: Path
    release_file: Path
    queue: str
    service: QueueServiceClient

    def runs(self, function: str) -> list[dict[str, Any]]:
        if not self.run_log.exists():
            return []
        lines = self.run_log.read_text().splitlines()
        return [run for run in map(json.loads, lines) if run["function"] == function]

    def ticks(self) -> list[dict[str, Any]]:
        client = self.service.get_queue_client(self.queue)
        try:
            messages = client.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []
        return [json.loads(base64.b64decode(str(m.content))) for m in messages]


@pytest.fixture
def timer_app(
    tmp_path: Path, queue_service: QueueServiceClient, storage_connection_string: str
) -> Iterator[TimerApp]:
    queue = unique_queue_name("ticks")
    run_log = tmp_path / "runs.jsonl"
    release_file = tmp_path / "release"
    app = TimerApp(
        settings={
            **dict.fromkeys(SCHEDULE_SETTINGS, DORMANT),
            "TimerStorage": storage_connection_string,
            "TIMER_QUEUE": queue,
            "TIMER_RUN_LOG": str(run_log),
            "TIMER_RELEASE_FILE": str(release_file),
        },
        run_log=run_log,
        release_file=release_file,
        queue=queue,
        service=queue_service,
    )
    yield app
    with contextlib.suppress(ResourceNotFoundError):
        queue_service.delete_queue(app.queue)


def run_host(
    timer_app: TimerApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **schedules: str
) -> BackgroundHost:
    for name, value in (timer_app.settings | schedules).items():
        monkeypatch.setenv(name, value)
    options = HostOptions(
        app=str(TIMER_APP),
        port=0,
        state_dir=tmp_path / "state",
        settings=tmp_path / "no-local.settings.json",
    )
    return BackgroundHost(options)


def timer_messages(caplog: pytest.LogCaptureFixture, function: str) -> list[logging.LogRecord]:
    prefix = f"timer {function}: "
    return [
        r for r in caplog.records if r.name == "devhost.timer" and r.getMessage().startswith(prefix)
    ]


def test_run_on_startup_runs_once_with_a_timer_request_and_its_bindings(
    timer_app: TimerApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devhost")

    with run_host(timer_app, tmp_path, monkeypatch):
        wait_for(lambda: timer_app.runs("on_startup"), what="the start-up run")

    [run] = timer_app.runs("on_startup")
    assert run["request"] == "azure.functions.timer.TimerRequest"
    assert run["past_due"] is False
    assert (run["client"], run["found"]) == ("DurableOrchestrationClient", False)
    started = datetime.fromisoformat(run["at"])
    assert timedelta(hours=23) < datetime.fromisoformat(run["next"]) - started < timedelta(hours=25)
    assert timer_app.runs("tick") == timer_app.runs("broken") == timer_app.runs("slow") == []

    messages = [r.getMessage() for r in caplog.records]
    assert any(
        re.fullmatch(
            r"function on_startup: timer '1\.00:00:00' \(UTC\), next \S+Z, runs at start-up", m
        )
        for m in messages
    ), messages
    assert any(
        re.fullmatch(r"function tick: timer '1\.00:00:00' \(UTC\), next \S+Z", m) for m in messages
    )
    [outcome] = timer_messages(caplog, "on_startup")
    assert re.fullmatch(r"timer on_startup: start-up run succeeded in \d+ ms", outcome.getMessage())


def test_an_every_second_schedule_runs_repeatedly_on_whole_seconds(
    timer_app: TimerApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_host(timer_app, tmp_path, monkeypatch, TIMER_TICK_SCHEDULE=EVERY_SECOND):
        ticks = wait_for(
            lambda: found if len(found := timer_app.ticks()) >= 3 else None,
            what="three ticks on the output queue",
        )

    due = [datetime.fromisoformat(tick["due"]) for tick in ticks]
    assert all(moment.microsecond == 0 for moment in due)
    gaps = [later - earlier for earlier, later in itertools.pairwise(due)]
    # Whole seconds apart; more than one only if the machine stalled past an occurrence.
    assert all(gap >= timedelta(seconds=1) and gap.microseconds == 0 for gap in gaps), gaps
    assert [tick["last"] for tick in ticks] == [None, *(tick["due"] for tick in ticks[:-1])]
    assert all(tick["past_due"] is False for tick in ticks)
    # A sync function runs on the host's worker threads, not on its event loop.
    assert all(tick["thread"].startswith("devhost-function") for tick in ticks)


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_failing_timer_logs_one_line_per_run_and_keeps_its_schedule(
    timer_app: TimerApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    verbose: bool,
) -> None:
    caplog.set_level(logging.DEBUG if verbose else logging.INFO, logger="devhost")

    with run_host(timer_app, tmp_path, monkeypatch, TIMER_BROKEN_SCHEDULE=EVERY_SECOND):
        wait_for(lambda: len(timer_app.runs("broken")) >= 3, what="three runs of the broken timer")

    failures = timer_messages(caplog, "broken")
    assert len(failures) == len(timer_app.runs("broken")) >= 3
    for record in failures:
        assert record.levelno == logging.WARNING
        assert re.fullmatch(
            r"timer broken: run due \S+Z failed in \d+ ms: RuntimeError: the timer broke",
            record.getMessage(),
        )
        # The traceback only with --verbose (debug logging), as for queue triggers.
        assert bool(record.exc_info) is verbose


def test_an_occurrence_is_skipped_while_the_previous_run_is_still_going(
    timer_app: TimerApp,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devhost")

    with run_host(timer_app, tmp_path, monkeypatch, TIMER_SLOW_SCHEDULE=EVERY_SECOND):
        wait_for(lambda: timer_app.runs("slow"), what="the slow timer to start")
        skipped = wait_for(
            lambda: [r for r in timer_messages(caplog, "slow") if "skipped" in r.getMessage()],
            what="an occurrence to be skipped",
        )
        assert [run["event"] for run in timer_app.runs("slow")] == ["start"]
        timer_app.release_file.touch()
        wait_for(
            lambda: len(timer_app.runs("slow")) >= 4, what="another run after the first one ended"
        )

    assert re.fullmatch(
        r"timer slow: skipped the run due \S+Z, the previous run is still going",
        skipped[0].getMessage(),
    )
    events = [run["event"] for run in timer_app.runs("slow")]
    assert events == ["start", "end"] * (len(events) // 2), "runs of one function never overlap"


def test_stopping_the_host_does_not_wait_for_sleeping_timers(
    timer_app: TimerApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_host(timer_app, tmp_path, monkeypatch):
        wait_for(lambda: timer_app.runs("on_startup"), what="the start-up run")
        stopping = time.monotonic()

    # A sleep that ignored the stop would hold the host for its whole grace period (5 s).
    assert time.monotonic() - stopping < 2


def timer_process_env(timer_app: TimerApp, **overrides: str) -> dict[str, str]:
    return clean_environment() | timer_app.settings | overrides


@pytest.mark.e2e
def test_python_m_devhost_runs_timers_and_stops_promptly_on_sigterm(
    timer_app: TimerApp, tmp_path: Path
) -> None:
    env = timer_process_env(
        timer_app, TIMER_TICK_SCHEDULE=EVERY_SECOND, WEBSITE_TIME_ZONE="W. Europe Standard Time"
    )
    process = HostProcess(tmp_path, env, tmp_path / "no-local.settings.json", TIMER_APP)
    try:
        process.start()
        wait_for(lambda: len(timer_app.ticks()) >= 2, what="two ticks")
        wait_for(lambda: timer_app.runs("on_startup"), what="the start-up run")
        code, seconds = process.terminate()
    finally:
        process.stop_if_running()

    assert code == 0
    assert seconds < 3, "SIGTERM must not wait for sleeping timers"
    log = process.log
    assert "WEBSITE_TIME_ZONE=W. Europe Standard Time is not supported here" in log
    assert re.search(r"function tick: timer '\* \* \* \* \* \*' \(UTC\), next \S+Z\n", log)
    assert re.search(r"timer tick: run due \S+Z succeeded in \d+ ms\n", log)
    assert "Traceback" not in log


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        (
            "TIMER_TICK_SCHEDULE",
            "0 0 25 * * *",
            "function 'tick': invalid timer schedule '0 0 25 * * *' (from %TIMER_TICK_SCHEDULE%)"
            ": hour field '25': 25 is out of range 0-23",
        ),
        (
            "TIMER_SLOW_SCHEDULE",
            "*/5 * * * *",
            "function 'slow': invalid timer schedule '*/5 * * * *' (from %TIMER_SLOW_SCHEDULE%)"
            ": expected six NCRONTAB fields",
        ),
        (
            "TIMER_BROKEN_SCHEDULE",
            None,
            "function 'broken': the binding expression '%TIMER_BROKEN_SCHEDULE%' names an app"
            " setting that is not set",
        ),
    ],
    ids=["out-of-range", "five-fields", "missing-setting"],
)
def test_a_bad_schedule_stops_start_up_naming_the_function(
    timer_app: TimerApp, tmp_path: Path, setting: str, value: str | None, expected: str
) -> None:
    env = timer_process_env(timer_app)
    if value is None:
        del env[setting]
    else:
        env[setting] = value

    result = run_to_exit(env, tmp_path / "no-local.settings.json", tmp_path, TIMER_APP)

    assert result.returncode == 2
    assert f"devhost: cannot start: {expected}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert timer_app.runs("on_startup") == [], "nothing runs when start-up fails"
