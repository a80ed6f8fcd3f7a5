"""Fixtures of the end-to-end tests: ``python -m devhost`` as a subprocess, with real services.

- ``host_factory`` / ``module_host_factory`` start hosts (free port, tmp ``--state-dir``, a
  ``--settings`` file that does not exist, the app settings in the environment, stdout+stderr
  to a log file). On teardown every host still running gets SIGTERM and must exit within a few
  seconds with a clean exit code, and no host's log may contain a secret it was given.
- ``stack`` is a module-wide host with a SQLite database, a password-protected Redis and the
  search stand-in; modules change its settings by overriding ``stack_overrides``.
- ``queues`` empties the six contract queues before each test.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from azure.core.exceptions import AzureError
from azure.storage.queue import QueueServiceClient

from services.database import create_database_engine, ensure_tables
from tests.e2e.support import (
    CLEAN_EXIT_CODES,
    PROJECT_ROOT,
    Database,
    DevHost,
    HostRun,
    Queues,
    account_key_of,
    free_port,
    host_environment,
    leaked_secrets,
    wait_until,
)
from tests.fixtures.azurite import AZURITE_KEY, azurite_connection_string
from tests.fixtures.redis_server import start_private_redis
from tests.support.search_standin import SearchStandIn

INDEXERS = ("docs-indexer", "users-indexer")
CACHE_KEY_PATTERNS = "search:{userId}:*,profile:{userId}"


# -- hosts -------------------------------------------------------------------------------------


class HostFactory:
    """Starts devhost subprocesses and checks, when closed, how they ended and what they logged."""

    def __init__(self, base_dir: Path, storage_connection_string: str) -> None:
        self.base_dir = base_dir
        self.storage = storage_connection_string
        self.hosts: list[DevHost] = []
        self._count = 0

    def settings(self, **overrides: str) -> dict[str, str]:
        """Every app setting pointing at the test services; ``overrides`` win."""
        values = {
            "AzureWebJobsStorage": self.storage,
            "PipelineStorage": self.storage,
            "DATABASE_URL": f"sqlite:///{self.base_dir / 'pipeline.sqlite3'}",
            "REDIS_URL": "",
            "CACHE_KEY_PATTERNS": CACHE_KEY_PATTERNS,
            "SEARCH_ENDPOINT": "",
            "SEARCH_API_KEY": "",
            "SEARCH_INDEXERS": "",
            "PIPELINE_JOB_TIMEOUT_SECONDS": "300",
            "ACTIVITY_RETRY_INTERVAL_SECONDS": "0.5",
            "ACTIVITY_MAX_ATTEMPTS": "2",
            # Indexer backoff starts at 5 s and doubles: 20 s leaves room for three attempts.
            "SEARCH_INDEXER_RETRY_SECONDS": "20",
        }
        values.update(overrides)
        return values

    def secrets_of(self, settings: dict[str, str]) -> dict[str, str]:
        found = {"SEARCH_API_KEY": settings.get("SEARCH_API_KEY", "")}
        try:
            found["Redis password"] = urlsplit(settings.get("REDIS_URL", "")).password or ""
        except ValueError:
            found["Redis password"] = ""
        for name in ("AzureWebJobsStorage", "PipelineStorage"):
            value = settings.get(name, "")
            key = account_key_of(value)
            if key is None and "usedevelopmentstorage=true" in value.lower():
                key = AZURITE_KEY
            found[f"{name} AccountKey"] = key or ""
        return found

    def create(
        self,
        settings: dict[str, str],
        *,
        state_dir: Path | None = None,
        extra_secrets: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        settings_file: Path | None = None,
    ) -> DevHost:
        self._count += 1
        run = HostRun(
            env=host_environment(settings),
            state_dir=state_dir or self.base_dir / "state",
            log_path=self.base_dir / f"devhost-{self._count}.log",
            secrets={**self.secrets_of(settings), **(extra_secrets or {})},
            extra_args=extra_args,
            settings_file=settings_file,
        )
        host = DevHost(run)
        self.hosts.append(host)
        return host

    def start(
        self,
        settings: dict[str, str],
        *,
        state_dir: Path | None = None,
        extra_secrets: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> DevHost:
        """Start a host and wait until its HTTP port answers."""
        host = self.create(
            settings, state_dir=state_dir, extra_secrets=extra_secrets, extra_args=extra_args
        )
        host.start()
        try:
            host.wait_ready()
        except BaseException:
            if host.running:
                host.kill()
            raise
        return host

    def close(self) -> None:
        problems: list[str] = []
        for host in self.hosts:
            if host.process is None:
                continue
            was_running = host.running
            try:
                code = host.stop()
            except AssertionError as error:
                problems.append(str(error))
                continue
            if was_running and code not in CLEAN_EXIT_CODES:
                problems.append(
                    f"devhost exited with code {code} after SIGTERM, expected one of "
                    f"{CLEAN_EXIT_CODES}\n{host.tail()}"
                )
        for host in self.hosts:
            leaks = leaked_secrets(host.log_text(), host.run.secrets)
            if leaks:
                problems.append(f"{host.run.log_path} contains secrets: {'; '.join(leaks)}")
        assert not problems, "\n\n".join(problems)


@pytest.fixture
def host_factory(tmp_path: Path, storage_connection_string: str) -> Iterator[HostFactory]:
    factory = HostFactory(tmp_path, storage_connection_string)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_host_factory(
    tmp_path_factory: pytest.TempPathFactory, storage_connection_string: str
) -> Iterator[HostFactory]:
    factory = HostFactory(tmp_path_factory.mktemp("e2e-host"), storage_connection_string)
    yield factory
    factory.close()


# -- services ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def queue_access(storage_connection_string: str) -> Iterator[Queues]:
    access = Queues(storage_connection_string)
    yield access
    access.close()


@pytest.fixture
def queues(queue_access: Queues) -> Queues:
    """The contract queues, emptied (and created where missing) before the test."""
    queue_access.reset()
    return queue_access


@pytest.fixture(scope="session")
def password_redis(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A private redis-server with ``requirepass``; its ``redis://:<password>@...`` URL."""
    password = secrets.token_urlsafe(18)
    executor = start_private_redis(request, tmp_path_factory, "redis-pw", password=password)
    try:
        yield f"redis://:{password}@127.0.0.1:{executor.port}/0"
    finally:
        executor.stop()


@pytest.fixture
def other_storage(tmp_path: Path) -> Iterator[str]:
    """A second, empty storage account (a private Azurite) for routing tests."""
    binary = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    found = str(binary) if binary.exists() else shutil.which("azurite")
    if found is None:
        pytest.skip("Azurite not found for a second storage account")
    ports = [free_port(), free_port(), free_port()]
    location = tmp_path / "azurite-2"
    location.mkdir()
    command = [
        found,
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
        "--location",
        str(location),
    ]
    for service, port in zip(("blob", "queue", "table"), ports, strict=True):
        command += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
    with (location / "azurite.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    connection_string = azurite_connection_string(*ports)
    try:

        def answers() -> bool:
            assert process.poll() is None, "the second Azurite exited"
            try:
                client = QueueServiceClient.from_connection_string(connection_string, retry_total=0)
                with client:
                    client.get_service_properties(timeout=2)
            except AzureError:
                return False
            return True

        wait_until(answers, timeout=60, what="a second Azurite")
        yield connection_string
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def prepare_database(url: str) -> Database:
    """The app's tables, created by the app's own ``ensure_tables``, and a reader for them."""
    engine = create_database_engine(url)
    try:
        ensure_tables(engine)
    finally:
        engine.dispose()
    return Database(url)


# -- the module-wide stack ---------------------------------------------------------------------


@dataclass
class Stack:
    host: DevHost
    db: Database
    standin: SearchStandIn
    redis: redis.Redis
    settings: dict[str, str]
    indexers: tuple[str, ...] = INDEXERS

    def reset(self) -> None:
        for name in self.indexers:
            self.standin.script(name)  # accepts every run
        self.standin.clear_calls()


@pytest.fixture(scope="module")
def stack_overrides() -> dict[str, Any]:
    """Settings a module wants changed in its ``stack`` host (override in the module)."""
    return {}


@pytest.fixture(scope="module")
def module_stack(
    module_host_factory: HostFactory,
    password_redis: str,
    stack_overrides: dict[str, str],
) -> Iterator[Stack]:
    standin = SearchStandIn(api_key=secrets.token_urlsafe(24)).start()
    client = redis.Redis.from_url(password_redis, socket_timeout=10)
    settings = module_host_factory.settings(
        REDIS_URL=password_redis,
        SEARCH_ENDPOINT=standin.endpoint,
        SEARCH_API_KEY=standin.api_key or "",
        SEARCH_INDEXERS=",".join(INDEXERS),
        **stack_overrides,
    )
    db = prepare_database(settings["DATABASE_URL"])
    try:
        host = module_host_factory.start(settings)
        yield Stack(host=host, db=db, standin=standin, redis=client, settings=settings)
    finally:
        client.close()
        db.dispose()
        standin.stop()


@pytest.fixture
def stack(module_stack: Stack, queues: Queues) -> Stack:
    """The module's host with empty queues, every indexer accepting runs, no recorded calls."""
    assert module_stack.host.running, "the module's devhost is no longer running\n" + (
        module_stack.host.tail()
    )
    module_stack.reset()
    return module_stack
