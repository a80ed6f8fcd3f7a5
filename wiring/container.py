"""The process-wide container: every client is built once, on first use, and then shared.

Building is lazy so that importing ``function_app`` (which the Functions host does to index
the app) needs no network, and a step that is not configured (no Redis, no search service)
never builds a client at all.
"""

from functools import cache, cached_property

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


class AppServices:
    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings

    @cached_property
    def queues(self) -> PipelineQueues:
        queues = PipelineQueues(self._queue_service())
        queues.ensure_queues()
        return queues

    @cached_property
    def pending_intake(self) -> PendingJobIntake:
        return PendingJobIntake(self.queues, self.settings.orchestration_config())

    @cached_property
    def finish_reports(self) -> FinishReportRouter:
        return FinishReportRouter(self.queues)

    @cached_property
    def engine(self) -> Engine:
        engine = create_database_engine(self.settings.database_url.get_secret_value())
        ensure_tables(engine)
        return engine

    @cached_property
    def job_status(self) -> PipelineJobStatusStore:
        return PipelineJobStatusStore(self.engine)

    @cached_property
    def user_data(self) -> UserDataDeactivator:
        return UserDataDeactivator(self.engine)

    @cached_property
    def cache_cleaner(self) -> CacheCleaner:
        if self.settings.redis_url is None:
            raise RuntimeError("REDIS_URL is not set: the cache step is skipped, not run")
        return CacheCleaner(create_redis_client(self.settings.redis_url.get_secret_value()))

    @cached_property
    def indexer_runner(self) -> IndexerRunner:
        endpoint = self.settings.search_endpoint
        if endpoint is None:
            raise RuntimeError("SEARCH_ENDPOINT is not set: the indexer step is skipped, not run")
        key = self.settings.search_api_key
        return IndexerRunner(
            create_search_indexer_client(endpoint, key.get_secret_value() if key else None)
        )

    def _queue_service(self) -> QueueServiceClient:
        connection = self.settings.pipeline_storage_connection
        if connection is not None:
            return QueueServiceClient.from_connection_string(connection)
        account_url = self.settings.pipeline_storage_queue_service_uri
        assert account_url is not None  # the settings guarantee one of the two
        return QueueServiceClient(account_url=account_url, credential=DefaultAzureCredential())


@cache
def app_services() -> AppServices:
    return AppServices(load_settings())
