"""``python -m devhost`` as a real process: settings, restarts after SIGKILL, clean SIGTERM."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devhost.conftest import SampleQueues, http, wait_for, wait_for_status
from tests.devhost.host_process import HostProcess, clean_environment, run_to_exit
from tests.fixtures.azurite import AZURITE_KEY

pytestmark = pytest.mark.e2e

SECRET = "hunter2-never-log-this"


@pytest.fixture
def settings_file(tmp_path: Path, sample_queues: SampleQueues) -> Path:
    path = tmp_path / "local.settings.json"
    values = dict(sample_queues.settings)
    # Overridden by the environment below: variables already set win over the file.
    values["SAMPLE_TIMEOUT_SECONDS"] = "-1"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return path


@pytest.fixture
def host_process(tmp_path: Path, settings_file: Path) -> Iterator[HostProcess]:
    env = clean_environment()
    env["SAMPLE_TIMEOUT_SECONDS"] = "60"
    process = HostProcess(tmp_path, env, settings_file)
    yield process
    process.stop_if_running()


def test_runs_a_job_from_local_settings_and_stops_cleanly_on_sigterm(
    host_process: HostProcess, sample_queues: SampleQueues
) -> None:
    host_process.start()
    sample_queues.send(sample_queues.start, {"jobId": "sub-1", "secret": SECRET})
    wait_for_status(host_process.base_url, "sub-1", "waiting")
    sample_queues.send(sample_queues.finish, {"jobId": "sub-1", "status": "Succeeded"})
    done = wait_for_status(host_process.base_url, "sub-1", "Completed")
    assert done["output"]["finished"] == {"jobId": "sub-1", "status": "Succeeded"}

    code, seconds = host_process.terminate()

    assert code == 0
    assert seconds < 8
    log = host_process.log
    assert "SIGTERM received" in log
    assert "orchestration SampleOrchestrator instance=sub-1 -> Completed" in log
    assert "Traceback" not in log
    assert SECRET not in log, "message bodies must never be logged"
    assert AZURITE_KEY not in log, "setting values must never be logged"


def test_a_killed_host_resumes_timers_and_waiting_instances_after_restart(
    host_process: HostProcess, sample_queues: SampleQueues
) -> None:
    host_process.start()
    sample_queues.send(sample_queues.start, {"jobId": "sub-2", "pauseSeconds": 2})
    wait_for_status(host_process.base_url, "sub-2", "paused")
    host_process.kill()

    # The durable timer comes due while no host runs; the restarted one fires it.
    time.sleep(2)
    host_process.start()
    wait_for_status(host_process.base_url, "sub-2", "waiting")
    host_process.kill()

    # The finish report arrives while the host is down and is taken after the restart.
    sample_queues.send(sample_queues.finish, {"jobId": "sub-2", "status": "Failed"})
    host_process.start()
    done = wait_for_status(host_process.base_url, "sub-2", "Completed")

    assert done["output"] == {
        "greeting": "hello sub-2",
        "flaky": "flaky ok after 1",
        "finished": {"jobId": "sub-2", "status": "Failed"},
    }
    status, full = http(
        "GET",
        f"{host_process.base_url}/runtime/webhooks/durabletask/instances/sub-2?showHistory=true",
    )
    assert status == 200
    names = [e.get("Name") for e in full["history"] if e["EventType"] == "TaskScheduled"]
    assert names == ["greet", "flaky"], "completed activities must not run again"


def test_sigint_abandons_a_running_activity_which_runs_again_after_restart(
    host_process: HostProcess, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    host_process.env["SAMPLE_RUN_LOG"] = str(runs)
    host_process.start()
    http("POST", f"{host_process.base_url}/api/orchestrators/SleepyOrchestrator/sleepy-1")
    wait_for(lambda: runs.exists() and runs.read_text().count("sleepy-1") == 1, what="first run")

    assert host_process.process is not None
    started = time.monotonic()
    host_process.process.send_signal(signal.SIGINT)
    code = host_process.process.wait(timeout=15)

    assert code == 0
    assert time.monotonic() - started < 8
    assert "abandoned" in host_process.log

    host_process.start()
    done = wait_for_status(host_process.base_url, "sleepy-1", "Completed")
    assert done["output"] == "run 2"
    assert runs.read_text().count("sleepy-1") == 2


def test_a_bad_setting_stops_start_up_with_its_name(
    tmp_path: Path, sample_queues: SampleQueues
) -> None:
    env = clean_environment() | sample_queues.settings | {"SAMPLE_TIMEOUT_SECONDS": "-5"}

    result = run_to_exit(env, tmp_path / "missing.json", tmp_path)

    assert result.returncode == 2
    assert "SAMPLE_TIMEOUT_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_missing_connection_setting_stops_start_up(
    tmp_path: Path, sample_queues: SampleQueues
) -> None:
    env = clean_environment() | sample_queues.settings
    del env["SampleStorage"]

    result = run_to_exit(env, tmp_path / "missing.json", tmp_path)

    assert result.returncode == 2
    assert "'SampleStorage'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
