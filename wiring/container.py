"""The process-wide container: every client is built once, on first use, and then shared.

Building is lazy so that importing ``function_app`` (which the Functions host does to index
the app) needs no network, and a step that is not configured (no Redis, no search service)
never builds a client at all. Activities run on several threads at once, so building is
guarded by a lock: two threads never build two engines or two connection pools.
"""

import threading
from collections.abc import Callable
from functools import cache
from typing import TypeVar, cast

from azure.identity import DefaultAzureCredential
from azure.storage.queue import QueueServiceClient
from sqlalchemy.engine import Engine

from services.cache import CacheCleaner, create_redis_client
from services.database import create_database_engine, ensure_tables
from services.finish_reports import FinishReportRouter
from services.job_intake import PendingJobIntake
from services.job_status import PipelineJobStatusStore
from services.pipeline_queues import PipelineQueues
from services.search_indexers import IndexerRunner, create_search_indexer_client
from services.user_data import UserDataDeactivator
from settings import AppSettings, load_settings

T = TypeVar("T")


class AppServices:
    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._built: dict[str, object] = {}

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return cast(T, self._built[name])

    @property
    def queues(self) -> PipelineQueues:
        return self._once("queues", self._build_queues)

    @property
    def pending_intake(self) -> PendingJobIntake:
        return self._once(
            "pending_intake",
            lambda: PendingJobIntake(self.queues, self.settings.orchestration_config()),
        )

    @property
    def finish_reports(self) -> FinishReportRouter:
        return self._once("finish_reports", lambda: FinishReportRouter(self.queues))

    @property
    def engine(self) -> Engine:
        return self._once("engine", self._build_engine)

    @property
    def job_status(self) -> PipelineJobStatusStore:
        return self._once("job_status", lambda: PipelineJobStatusStore(self.engine))

    @property
    def user_data(self) -> UserDataDeactivator:
        return self._once("user_data", lambda: UserDataDeactivator(self.engine))

    @property
    def cache_cleaner(self) -> CacheCleaner:
        return self._once("cache_cleaner", self._build_cache_cleaner)

    @property
    def indexer_runner(self) -> IndexerRunner:
        return self._once("indexer_runner", self._build_indexer_runner)

    def _build_queues(self) -> PipelineQueues:
        connection = self.settings.pipeline_storage_connection
        if connection is not None:
            service = QueueServiceClient.from_connection_string(connection)
        else:
            account_url = self.settings.pipeline_storage_queue_service_uri
            assert account_url is not None  # the settings guarantee one of the two
            service = QueueServiceClient(
                account_url=account_url, credential=DefaultAzureCredential()
            )
        queues = PipelineQueues(service)
        queues.ensure_queues()
        return queues

    def _build_engine(self) -> Engine:
        engine = create_database_engine(self.settings.database_url.get_secret_value())
        ensure_tables(engine)
        return engine

    def _build_cache_cleaner(self) -> CacheCleaner:
        if self.settings.redis_url is None:
            raise RuntimeError("REDIS_URL is not set: the cache step is skipped, not run")
        return CacheCleaner(create_redis_client(self.settings.redis_url.get_secret_value()))

    def _build_indexer_runner(self) -> IndexerRunner:
        endpoint = self.settings.search_endpoint
        if endpoint is None:
            raise RuntimeError("SEARCH_ENDPOINT is not set: the indexer step is skipped, not run")
        key = self.settings.search_api_key
        return IndexerRunner(
            create_search_indexer_client(endpoint, key.get_secret_value() if key else None)
        )


@cache
def app_services() -> AppServices:
    return AppServices(load_settings())
