"""One validated settings object, read once per process from the app settings.

A value that cannot work stops the app at start-up with a message naming the setting, and
never the value: keys, passwords and connection strings are secret types so that no log line
or error message can carry them.
"""

from functools import cache
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from schemas.orchestration import (
    ActivityRetry,
    IndexerRetry,
    OrchestrationConfig,
    PostProcessingConfig,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_DATABASE_URL = f"sqlite:///{PROJECT_DIR / 'data' / 'pipeline.sqlite3'}"
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"

CommaSeparated = Annotated[list[str], NoDecode]


class SettingsError(ValueError):
    """Raised at start-up; the message names every bad setting and what it must be."""


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", hide_input_in_errors=True, frozen=True
    )

    azure_webjobs_storage: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_STORAGE), validation_alias="AzureWebJobsStorage"
    )
    pipeline_storage: SecretStr | None = Field(default=None, validation_alias="PipelineStorage")
    pipeline_storage_queue_service_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "PipelineStorage__queueServiceUri", "PIPELINESTORAGE__QUEUESERVICEURI"
        ),
    )
    database_url: SecretStr = Field(
        default=SecretStr(LOCAL_DATABASE_URL), validation_alias="DATABASE_URL"
    )
    redis_url: SecretStr | None = Field(default=None, validation_alias="REDIS_URL")
    cache_key_patterns: CommaSeparated = Field(
        default=["search:{userId}:*"], validation_alias="CACHE_KEY_PATTERNS"
    )
    search_endpoint: str | None = Field(default=None, validation_alias="SEARCH_ENDPOINT")
    search_api_key: SecretStr | None = Field(default=None, validation_alias="SEARCH_API_KEY")
    search_indexers: CommaSeparated = Field(default=[], validation_alias="SEARCH_INDEXERS")
    pipeline_job_timeout_seconds: int = Field(
        default=86_400, gt=0, validation_alias="PIPELINE_JOB_TIMEOUT_SECONDS"
    )
    # Beyond the contract: how long a busy or failing indexer is retried, and how activities
    # that are safe to repeat are retried.
    search_indexer_retry_seconds: int = Field(
        default=300, gt=0, validation_alias="SEARCH_INDEXER_RETRY_SECONDS"
    )
    activity_max_attempts: int = Field(default=3, ge=1, validation_alias="ACTIVITY_MAX_ATTEMPTS")
    activity_retry_interval_seconds: float = Field(
        default=5.0, gt=0, validation_alias="ACTIVITY_RETRY_INTERVAL_SECONDS"
    )

    @field_validator(
        "pipeline_storage",
        "redis_url",
        "search_api_key",
        "search_endpoint",
        "pipeline_storage_queue_service_uri",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: Any) -> Any:
        if isinstance(value, str | SecretStr) and not _text(value).strip():
            return None
        return value

    @field_validator("cache_key_patterns", "search_indexers", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_parses(cls, value: SecretStr) -> SecretStr:
        try:
            url = make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError(
                "must be a SQLAlchemy URL, e.g. sqlite:///data/pipeline.sqlite3 "
                "or mssql+pyodbc://..."
            ) from None
        if url.get_backend_name() not in {"sqlite", "postgresql", "mssql"}:
            raise ValueError("must name a sqlite, postgresql or mssql database")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
                raise ValueError("must be a redis:// or rediss:// URL with a host")
            _port_of(parts)
        return value

    @field_validator("search_endpoint", "pipeline_storage_queue_service_uri")
    @classmethod
    def _service_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if not parts.hostname or parts.scheme not in {"https", "http"}:
            raise ValueError("must be an https:// URL, e.g. https://<service>.search.windows.net")
        _port_of(parts)
        # Keys travel in headers: plain http is only acceptable to a service on this machine.
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("must use https:// (http:// is accepted only for localhost)")
        return value.rstrip("/")

    @field_validator("cache_key_patterns")
    @classmethod
    def _patterns_present(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one key pattern, e.g. search:{userId}:*")
        return value

    @model_validator(mode="after")
    def _keys_never_travel_in_clear(self) -> "AppSettings":
        # Entra ID tokens are refused over http, and an admin key must not cross a network
        # unencrypted: plain http is only for a local search service used with a key.
        if (
            self.search_endpoint is not None
            and self.search_endpoint.startswith("http://")
            and self.search_api_key is None
        ):
            raise ValueError(
                "SEARCH_ENDPOINT: an http:// endpoint needs SEARCH_API_KEY (Entra ID needs https)"
            )
        return self

    @property
    def pipeline_storage_connection(self) -> str | None:
        """The queue account's connection string, or None when it is reached by identity."""
        if self.pipeline_storage is not None:
            return self.pipeline_storage.get_secret_value()
        if self.pipeline_storage_queue_service_uri is not None:
            return None
        return DEVELOPMENT_STORAGE

    @property
    def search_enabled(self) -> bool:
        return self.search_endpoint is not None

    @property
    def cache_enabled(self) -> bool:
        return self.redis_url is not None

    def orchestration_config(self) -> OrchestrationConfig:
        """What the orchestrators need from the settings; they get it in their input."""
        activity_retry = ActivityRetry(
            firstIntervalSeconds=self.activity_retry_interval_seconds,
            maxAttempts=self.activity_max_attempts,
        )
        return OrchestrationConfig(
            timeoutSeconds=self.pipeline_job_timeout_seconds,
            activityRetry=activity_retry,
            postProcessing=PostProcessingConfig(
                searchEnabled=self.search_enabled,
                searchIndexers=list(self.search_indexers),
                cacheEnabled=self.cache_enabled,
                cacheKeyPatterns=list(self.cache_key_patterns),
                indexerRetry=_indexer_backoff(float(self.search_indexer_retry_seconds)),
                activityRetry=activity_retry,
            ),
        )


def _indexer_backoff(window: float) -> IndexerRetry:
    # Start at 5 s, but never so late that a short window leaves room for only one retry.
    return IndexerRetry(
        firstIntervalSeconds=min(5.0, window / 4),
        maxIntervalSeconds=min(60.0, window / 2),
        windowSeconds=window,
    )


def _text(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _port_of(parts: Any) -> None:
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily, on access
    except ValueError:
        raise ValueError("has an invalid port") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _setting_name(field_name: str) -> str:
    alias = AppSettings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias or field_name)


def _setting_of(loc: str) -> str | None:
    """The setting an error location points at: pydantic reports the alias that was read."""
    for field_name, info in AppSettings.model_fields.items():
        alias = info.validation_alias
        names = alias.choices if isinstance(alias, AliasChoices) else [alias or field_name]
        if loc.casefold() in {field_name, *(str(name).casefold() for name in names)}:
            return _setting_name(field_name)
    return None


SETTING_NAMES: tuple[str, ...] = tuple(_setting_name(field) for field in AppSettings.model_fields)
"""Every app setting the app reads, by the name it has in the environment."""


@cache
def load_settings() -> AppSettings:
    """The process's settings, validated once; raises :class:`SettingsError` naming each bad one."""
    try:
        return AppSettings()
    except ValidationError as error:
        problems = []
        for detail in error.errors(include_input=False, include_url=False):
            field = str(detail["loc"][0]) if detail["loc"] else ""
            message = detail["msg"].removeprefix("Value error, ")
            setting = _setting_of(field) if field else None
            if setting is not None:
                problems.append(f"{setting}: {message}")
            else:  # a rule across settings names them in its message
                problems.append(message)
        raise SettingsError("Invalid app settings: " + "; ".join(problems)) from None
