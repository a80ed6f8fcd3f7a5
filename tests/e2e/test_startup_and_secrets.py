"""Start-up validation of the settings, and secrets kept out of the host's logs."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.conftest import HostFactory, prepare_database
from tests.e2e.support import (
    CLEAN_EXIT_CODES,
    DEFAULT_START,
    FINISHED,
    FINISHED_POISON,
    PENDING,
    Queues,
    leaked_secrets,
    new_job_id,
)
from tests.support.search_standin import SearchStandIn

pytestmark = pytest.mark.e2e

EXIT_WITHIN_SECONDS = 20
PASSWORD = "hunter2-" + secrets.token_hex(6)

BAD_SETTINGS = {
    "redis-url-not-redis": ("REDIS_URL", "http://nope"),
    "redis-url-with-password": ("REDIS_URL", f"http://:{PASSWORD}@nope:6379/0"),
    "redis-url-bad-port": ("REDIS_URL", f"redis://:{PASSWORD}@localhost:notaport/0"),
    "timeout-negative": ("PIPELINE_JOB_TIMEOUT_SECONDS", "-1"),
    "timeout-zero": ("PIPELINE_JOB_TIMEOUT_SECONDS", "0"),
    "timeout-not-a-number": ("PIPELINE_JOB_TIMEOUT_SECONDS", "soon"),
    "search-endpoint-not-a-url": ("SEARCH_ENDPOINT", "search.example.com"),
    "database-url-not-a-url": ("DATABASE_URL", "not a database url"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_setting_stops_the_host_at_start_up(host_factory: HostFactory, case: str) -> None:
    name, value = BAD_SETTINGS[case]
    host = host_factory.create(
        host_factory.settings(**{name: value}), extra_secrets={"the bad URL's password": PASSWORD}
    )
    started = time.monotonic()
    host.start()
    assert host.process is not None
    try:
        code = host.process.wait(timeout=EXIT_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"devhost still runs {EXIT_WITHIN_SECONDS}s after start with {name}={value!r}")
    elapsed = time.monotonic() - started

    assert code != 0, host.tail()
    log = host.log_text()
    assert name in log, f"the message must name {name}\n{host.tail()}"
    assert PASSWORD not in log, "the message must not quote a password"
    assert elapsed < EXIT_WITHIN_SECONDS


def test_settings_file_values_apply_unless_the_environment_has_them(
    host_factory: HostFactory,
) -> None:
    """Contract 7: local.settings.json Values are loaded; variables in the environment win."""
    settings_file = host_factory.base_dir / "local.settings.json"
    settings_file.write_text(
        json.dumps({"IsEncrypted": False, "Values": {"PIPELINE_JOB_TIMEOUT_SECONDS": "-1"}}),
        encoding="utf-8",
    )
    # The environment has a valid timeout: the file's bad one is not used.
    host = host_factory.create(host_factory.settings(), settings_file=settings_file)
    host.start().wait_ready()
    assert host.running

    # Without it in the environment, the file's value is used, and refused.
    settings = host_factory.settings()
    del settings["PIPELINE_JOB_TIMEOUT_SECONDS"]
    refused = host_factory.create(settings, settings_file=settings_file)
    refused.start()
    assert refused.process is not None
    try:
        code = refused.process.wait(timeout=EXIT_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail("the file's invalid PIPELINE_JOB_TIMEOUT_SECONDS was not applied")
    assert code != 0
    assert "PIPELINE_JOB_TIMEOUT_SECONDS" in refused.log_text(), refused.tail()


@pytest.mark.parametrize("verbose", [False, True], ids=["default-logging", "verbose"])
def test_logs_never_contain_secrets(
    verbose: bool,
    host_factory: HostFactory,
    queues: Queues,
    password_redis: str,
    search_standin: SearchStandIn,
) -> None:
    """Wrong credentials everywhere they can be wrong: the error paths must not log them."""
    real_redis_password = urlsplit(password_redis).password or ""
    parts = urlsplit(password_redis)
    wrong_password = secrets.token_urlsafe(18)
    wrong_redis_url = urlunsplit(
        parts._replace(netloc=f":{wrong_password}@{parts.hostname}:{parts.port}")
    )
    wrong_search_key = secrets.token_urlsafe(24)  # the stand-in wants another one: 403
    search_standin.script("docs-indexer")
    settings = host_factory.settings(
        REDIS_URL=wrong_redis_url,
        SEARCH_ENDPOINT=search_standin.endpoint,
        SEARCH_API_KEY=wrong_search_key,
        SEARCH_INDEXERS="docs-indexer",
    )
    db = prepare_database(settings["DATABASE_URL"])
    given = host_factory.secrets_of(settings)
    everything = {
        **given,
        "the Redis server's real password": real_redis_password,
        "the search service's real key": search_standin.api_key or "",
    }
    assert given["SEARCH_API_KEY"] and given["Redis password"]
    assert given["PipelineStorage AccountKey"], "the storage connection string carries a key"
    try:
        host = host_factory.start(
            settings, extra_secrets=everything, extra_args=("--verbose",) if verbose else ()
        )
        job_id = new_job_id("secretive")
        queues.send_json(PENDING, {"jobId": job_id, "userId": "someone"})
        queues.wait_for(DEFAULT_START)
        queues.send_json(FINISHED, {"jobId": job_id, "status": "Succeeded"})
        done = host.wait_for_runtime_status(job_id, "Completed", timeout=60)
        post = done["output"]["postProcessing"]
        assert post["cache"]["ok"] is False, post  # wrong Redis password
        assert post["searchIndexers"]["ok"] is False, post  # wrong search key
        assert [c.api_key_ok for c in search_standin.calls("docs-indexer")] == [False]
        queues.send(FINISHED, "not even JSON")
        queues.wait_for(FINISHED_POISON)

        answered = json.dumps(done)
        assert leaked_secrets(answered, everything) == [], "the status API shows no secret"
        assert host.stop() in CLEAN_EXIT_CODES, host.tail()
        assert leaked_secrets(host.log_text(), everything) == []
    finally:
        db.dispose()
