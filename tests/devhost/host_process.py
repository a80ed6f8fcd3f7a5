"""``python -m devhost`` run as a real process, for the tests that start, signal or kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.devhost.conftest import SAMPLE_APP, free_port, http, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def clean_environment() -> dict[str, str]:
    """This process's environment without the settings the test apps read."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SAMPLE_", "SampleStorage", "TIMER_", "TimerStorage"))
    }


class HostProcess:
    def __init__(
        self, tmp_path: Path, env: dict[str, str], settings: Path, app: Path = SAMPLE_APP
    ) -> None:
        self.app = app
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.state_dir = tmp_path / "state"
        self.log_path = tmp_path / "host.log"
        self.env = env
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "devhost",
            "--app",
            str(self.app),
            "--state-dir",
            str(self.state_dir),
            "--port",
            str(self.port),
            "--settings",
            str(self.settings),
        ]

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

        def serving() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"host exited early:\n{self.log}")
            try:
                return http("GET", f"{self.base_url}/api/jobs/not-a-job")[0] == 404
            except OSError:
                return False

        wait_for(serving, timeout=30, what="the host to serve")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> tuple[int, float]:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        return code, time.monotonic() - started

    def stop_if_running(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def run_to_exit(
    env: dict[str, str], settings: Path, tmp_path: Path, app: Path = SAMPLE_APP
) -> subprocess.CompletedProcess[str]:
    command = HostProcess(tmp_path, env, settings, app).command()
    return subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
