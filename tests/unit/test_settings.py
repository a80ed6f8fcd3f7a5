"""App settings (contract 6): defaults, parsing, start-up errors that name the setting, secrets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

import settings
from settings import AppSettings, SettingsError, load_settings

SETTING_NAMES = (
    "AzureWebJobsStorage",
    "PipelineStorage",
    "PipelineStorage__queueServiceUri",
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_KEY_PATTERNS",
    "SEARCH_ENDPOINT",
    "SEARCH_API_KEY",
    "SEARCH_INDEXERS",
    "PIPELINE_JOB_TIMEOUT_SECONDS",
    "SEARCH_INDEXER_RETRY_SECONDS",
    "ACTIVITY_MAX_ATTEMPTS",
    "ACTIVITY_RETRY_INTERVAL_SECONDS",
)
PROJECT_DIR = Path(__file__).resolve().parents[2]

# Secret values used below; none may ever show up in an error message or a repr.
REDIS_PASSWORD = "redis-pa55word-xyz"
SEARCH_KEY = "search-admin-key-0123456789"
ACCOUNT_KEY = "c3RvcmFnZS1hY2NvdW50LWtleQ=="
DB_PASSWORD = "db-pa55word-xyz"
SECRETS = (REDIS_PASSWORD, SEARCH_KEY, ACCOUNT_KEY, DB_PASSWORD)
STORAGE = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY}"


def test_the_app_reads_exactly_the_documented_settings() -> None:
    assert set(settings.SETTING_NAMES) == set(SETTING_NAMES)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No setting from the outer environment, and no settings cached across tests."""
    wanted = {name.casefold() for name in SETTING_NAMES}
    for name in list(os.environ):
        if name.casefold() in wanted:
            monkeypatch.delenv(name)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def settings_error(monkeypatch: pytest.MonkeyPatch, **values: str) -> str:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


# --- defaults ---------------------------------------------------------------------------------


def test_local_defaults_of_the_contract() -> None:
    settings = AppSettings()

    assert settings.azure_webjobs_storage.get_secret_value() == "UseDevelopmentStorage=true"
    assert settings.pipeline_storage_connection == "UseDevelopmentStorage=true"
    database = settings.database_url.get_secret_value()
    assert database.startswith("sqlite:///")
    assert Path(database.removeprefix("sqlite:///")).resolve().is_relative_to(PROJECT_DIR)
    assert settings.redis_url is None
    assert settings.cache_enabled is False
    assert settings.cache_key_patterns == ["search:{userId}:*"]
    assert settings.search_endpoint is None
    assert settings.search_enabled is False
    assert settings.search_api_key is None
    assert settings.search_indexers == []
    assert settings.pipeline_job_timeout_seconds == 86_400


def test_load_settings_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_settings()
    monkeypatch.setenv("PIPELINE_JOB_TIMEOUT_SECONDS", "60")

    assert load_settings() is first
    load_settings.cache_clear()
    assert load_settings().pipeline_job_timeout_seconds == 60


def test_the_example_local_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    example = json.loads((PROJECT_DIR / "local.settings.json.example").read_text("utf-8"))
    for name, value in example["Values"].items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.cache_enabled is False
    assert settings.search_enabled is False


# --- every setting parsed ---------------------------------------------------------------------


def test_every_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "AzureWebJobsStorage": STORAGE,
        "PipelineStorage": STORAGE.replace("acct", "queues"),
        "DATABASE_URL": "mssql+pyodbc://app@server.database.windows.net/db"
        "?driver=ODBC+Driver+18+for+SQL+Server",
        "REDIS_URL": f"rediss://:{REDIS_PASSWORD}@cache.example.com:6380/0",
        "CACHE_KEY_PATTERNS": "search:{userId}:*,profile:{userId}",
        "SEARCH_ENDPOINT": "https://svc.search.windows.net/",
        "SEARCH_API_KEY": SEARCH_KEY,
        "SEARCH_INDEXERS": "docs-indexer,users-indexer",
        "PIPELINE_JOB_TIMEOUT_SECONDS": "3600",
        "SEARCH_INDEXER_RETRY_SECONDS": "120",
        "ACTIVITY_MAX_ATTEMPTS": "5",
        "ACTIVITY_RETRY_INTERVAL_SECONDS": "2.5",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    settings = AppSettings()

    assert settings.azure_webjobs_storage.get_secret_value() == values["AzureWebJobsStorage"]
    assert settings.pipeline_storage_connection == values["PipelineStorage"]
    assert settings.database_url.get_secret_value() == values["DATABASE_URL"]
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == values["REDIS_URL"]
    assert settings.cache_enabled is True
    assert settings.cache_key_patterns == ["search:{userId}:*", "profile:{userId}"]
    assert settings.search_endpoint == "https://svc.search.windows.net"
    assert settings.search_enabled is True
    assert settings.search_api_key is not None
    assert settings.search_api_key.get_secret_value() == SEARCH_KEY
    assert settings.search_indexers == ["docs-indexer", "users-indexer"]
    assert settings.pipeline_job_timeout_seconds == 3600
    assert settings.search_indexer_retry_seconds == 120
    assert settings.activity_max_attempts == 5
    assert settings.activity_retry_interval_seconds == 2.5


def test_queue_account_by_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PipelineStorage__queueServiceUri", "https://account.queue.core.windows.net")

    settings = AppSettings()

    assert settings.pipeline_storage_queue_service_uri == "https://account.queue.core.windows.net"
    assert settings.pipeline_storage_connection is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a", ["a"]),
        ("a,b", ["a", "b"]),
        (" a , b ,", ["a", "b"]),
        ("a,,b", ["a", "b"]),
        ("x:{userId}:*", ["x:{userId}:*"]),
    ],
)
def test_comma_separated_lists(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("SEARCH_INDEXERS", raw)
    monkeypatch.setenv("CACHE_KEY_PATTERNS", raw)

    settings = AppSettings()

    assert settings.search_indexers == expected
    assert settings.cache_key_patterns == expected


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_redis_url_and_search_endpoint_mean_disabled(
    monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    for name in ("REDIS_URL", "SEARCH_ENDPOINT", "SEARCH_API_KEY", "SEARCH_INDEXERS"):
        monkeypatch.setenv(name, empty)

    settings = load_settings()

    assert settings.redis_url is None
    assert settings.cache_enabled is False
    assert settings.search_endpoint is None
    assert settings.search_api_key is None
    assert settings.search_enabled is False
    assert settings.search_indexers == []
    post = settings.orchestration_config().postProcessing
    assert (post.cacheEnabled, post.searchEnabled) == (False, False)


@pytest.mark.parametrize(
    "endpoint",
    ["http://localhost:8080", "http://127.0.0.1:7000", "http://[::1]:7000"],
)
def test_plain_http_search_endpoint_is_accepted_on_this_machine(
    monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setenv("SEARCH_ENDPOINT", endpoint)
    monkeypatch.setenv("SEARCH_API_KEY", SEARCH_KEY)

    assert load_settings().search_endpoint == endpoint


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///data/pipeline.sqlite3",
        "postgresql+psycopg://app:pw@localhost:5432/pipeline",
        "mssql+pyodbc://app:pw@server.database.windows.net/db?driver=ODBC+Driver+18+for+SQL+Server",
    ],
)
def test_supported_database_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    assert load_settings().database_url.get_secret_value() == url


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://:pw@host:6380", "redis://h"])
def test_supported_redis_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)

    assert load_settings().cache_enabled is True


# --- bad values stop the start-up, naming the setting -----------------------------------------

BAD_VALUES = [
    pytest.param("REDIS_URL", "localhost:6379", id="redis-no-scheme"),
    pytest.param("REDIS_URL", "http://cache.example.com:6379", id="redis-http"),
    pytest.param("REDIS_URL", "redis:///0", id="redis-no-host"),
    pytest.param("REDIS_URL", "redis://cache.example.com:99999", id="redis-port-range"),
    pytest.param("REDIS_URL", "redis://cache.example.com:port", id="redis-port-text"),
    pytest.param("SEARCH_ENDPOINT", "http://svc.search.windows.net", id="search-http-remote"),
    pytest.param("SEARCH_ENDPOINT", "svc.search.windows.net", id="search-no-scheme"),
    pytest.param("SEARCH_ENDPOINT", "ftp://svc.search.windows.net", id="search-ftp"),
    pytest.param("SEARCH_ENDPOINT", "https://svc.search.windows.net:abc", id="search-bad-port"),
    pytest.param("PIPELINE_JOB_TIMEOUT_SECONDS", "-1", id="timeout-negative"),
    pytest.param("PIPELINE_JOB_TIMEOUT_SECONDS", "0", id="timeout-zero"),
    pytest.param("PIPELINE_JOB_TIMEOUT_SECONDS", "a day", id="timeout-text"),
    pytest.param("PIPELINE_JOB_TIMEOUT_SECONDS", "", id="timeout-empty"),
    pytest.param("DATABASE_URL", "not a url", id="database-garbage"),
    pytest.param("DATABASE_URL", "mysql://app:pw@host/db", id="database-unsupported"),
    pytest.param("CACHE_KEY_PATTERNS", " , ", id="patterns-none"),
    pytest.param("PipelineStorage__queueServiceUri", "account.queue", id="queue-uri-no-scheme"),
    pytest.param("SEARCH_INDEXER_RETRY_SECONDS", "0", id="indexer-retry-zero"),
    pytest.param("ACTIVITY_MAX_ATTEMPTS", "0", id="attempts-zero"),
    pytest.param("ACTIVITY_RETRY_INTERVAL_SECONDS", "-5", id="interval-negative"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_value_raises_settings_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    message = settings_error(monkeypatch, **{name: value})

    assert f"{name}:" in message
    # The value is never repeated: it may hold a key or a password.
    if len(value.strip()) > 3:
        assert value not in message


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_app_settings_reject_the_same_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        AppSettings()


def test_every_bad_setting_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(
        monkeypatch,
        REDIS_URL="http://x",
        PIPELINE_JOB_TIMEOUT_SECONDS="-1",
        DATABASE_URL="nonsense",
    )

    for name in ("REDIS_URL", "PIPELINE_JOB_TIMEOUT_SECONDS", "DATABASE_URL"):
        assert f"{name}:" in message


def test_http_search_endpoint_on_this_machine_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(monkeypatch, SEARCH_ENDPOINT="http://localhost:8080")

    assert "SEARCH_ENDPOINT" in message
    assert "SEARCH_API_KEY" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("REDIS_URL", f"redis://:{REDIS_PASSWORD}@cache:99999", id="redis-port"),
        pytest.param("REDIS_URL", f"http://user:{REDIS_PASSWORD}@cache:6379", id="redis-scheme"),
        pytest.param("REDIS_URL", f"{REDIS_PASSWORD}", id="redis-just-a-password"),
        pytest.param("DATABASE_URL", f"mysql://app:{DB_PASSWORD}@host/db", id="db-backend"),
        pytest.param("DATABASE_URL", f"{DB_PASSWORD}://", id="db-garbage"),
    ],
)
def test_error_message_never_contains_the_secret(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("SEARCH_API_KEY", SEARCH_KEY)
    monkeypatch.setenv("AzureWebJobsStorage", STORAGE)
    message = settings_error(monkeypatch, **{name: value})

    assert f"{name}:" in message
    for secret in SECRETS:
        assert secret not in message


def test_validation_error_of_app_settings_hides_secret_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:{REDIS_PASSWORD}@cache:99999")

    with pytest.raises(ValidationError) as caught:
        AppSettings()

    assert REDIS_PASSWORD not in str(caught.value)


def test_repr_and_str_never_show_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", STORAGE)
    monkeypatch.setenv("PipelineStorage", STORAGE)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{DB_PASSWORD}@db.example.com/pipeline")
    monkeypatch.setenv("REDIS_URL", f"rediss://:{REDIS_PASSWORD}@cache.example.com:6380")
    monkeypatch.setenv("SEARCH_ENDPOINT", "https://svc.search.windows.net")
    monkeypatch.setenv("SEARCH_API_KEY", SEARCH_KEY)

    settings = load_settings()

    for text in (repr(settings), str(settings), repr(settings.model_dump()), f"{settings}"):
        for secret in SECRETS:
            assert secret not in text
    for secret in SECRETS:
        assert secret not in settings.orchestration_config().model_dump_json()


# --- what the orchestrators get ---------------------------------------------------------------


def test_orchestration_config_carries_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PIPELINE_JOB_TIMEOUT_SECONDS": "1800",
        "REDIS_URL": "redis://cache:6379",
        "CACHE_KEY_PATTERNS": "a:{userId}:*,b:{userId}",
        "SEARCH_ENDPOINT": "https://svc.search.windows.net",
        "SEARCH_INDEXERS": "ix1,ix2",
        "SEARCH_INDEXER_RETRY_SECONDS": "600",
        "ACTIVITY_MAX_ATTEMPTS": "4",
        "ACTIVITY_RETRY_INTERVAL_SECONDS": "1.5",
    }.items():
        monkeypatch.setenv(name, value)

    config = load_settings().orchestration_config().model_dump(mode="json")

    assert config == {
        "timeoutSeconds": 1800,
        "activityRetry": {"firstIntervalSeconds": 1.5, "maxAttempts": 4},
        "postProcessing": {
            "searchEnabled": True,
            "searchIndexers": ["ix1", "ix2"],
            "cacheEnabled": True,
            "cacheKeyPatterns": ["a:{userId}:*", "b:{userId}"],
            "indexerRetry": {
                "firstIntervalSeconds": 5.0,
                "maxIntervalSeconds": 60.0,
                "windowSeconds": 600.0,
            },
            "activityRetry": {"firstIntervalSeconds": 1.5, "maxAttempts": 4},
        },
    }


def test_orchestration_config_defaults() -> None:
    config = load_settings().orchestration_config()

    assert config.timeoutSeconds == 86_400
    assert config.activityRetry.maxAttempts >= 1
    assert config.postProcessing.searchEnabled is False
    assert config.postProcessing.cacheEnabled is False
    assert config.postProcessing.cacheKeyPatterns == ["search:{userId}:*"]


def test_short_indexer_retry_window_bounds_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_INDEXER_RETRY_SECONDS", "3")

    retry = load_settings().orchestration_config().postProcessing.indexerRetry

    assert retry.windowSeconds == 3
    assert retry.firstIntervalSeconds <= 3
    assert retry.maxIntervalSeconds <= 3


@pytest.mark.parametrize(
    ("window", "first", "longest"),
    [("300", 5.0, 60.0), ("20", 5.0, 10.0), ("10", 2.5, 5.0), ("1", 0.25, 0.5)],
)
def test_indexer_backoff_leaves_room_for_several_retries_in_the_window(
    monkeypatch: pytest.MonkeyPatch, window: str, first: float, longest: float
) -> None:
    monkeypatch.setenv("SEARCH_INDEXER_RETRY_SECONDS", window)

    retry = load_settings().orchestration_config().postProcessing.indexerRetry

    assert (retry.firstIntervalSeconds, retry.maxIntervalSeconds) == (first, longest)
    # 1x + 2x the first interval still fit: at least three attempts before giving up.
    assert 3 * retry.firstIntervalSeconds < retry.windowSeconds
