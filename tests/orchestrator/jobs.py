"""Inputs for the orchestrators, built with the app's own models, and the activities' answers."""

from __future__ import annotations

from typing import Any

from schemas.orchestration import (
    ActivityRetry,
    CustomJob,
    DefaultFinishedInput,
    DefaultJob,
    IndexerRetry,
    OrchestrationConfig,
    PipelineJobInput,
    PostProcessingConfig,
)
from schemas.pending import CustomJobRequest, DefaultJobRequest

TIMEOUT_SECONDS = 3600
ACTIVITY_RETRY = ActivityRetry(firstIntervalSeconds=5, maxAttempts=3)
INDEXER_RETRY = IndexerRetry(firstIntervalSeconds=5, maxIntervalSeconds=20, windowSeconds=60)
PATTERNS = ["search:{userId}:*", "profile:{userId}"]
INDEXERS = ["docs-indexer", "users-indexer"]


def post_processing(
    *,
    search: bool = True,
    cache: bool = True,
    indexers: list[str] | None = None,
    indexer_retry: IndexerRetry = INDEXER_RETRY,
) -> PostProcessingConfig:
    return PostProcessingConfig(
        searchEnabled=search,
        searchIndexers=list(INDEXERS if indexers is None else indexers),
        cacheEnabled=cache,
        cacheKeyPatterns=list(PATTERNS),
        indexerRetry=indexer_retry,
        activityRetry=ACTIVITY_RETRY,
    )


def config(**post: Any) -> OrchestrationConfig:
    return OrchestrationConfig(
        timeoutSeconds=TIMEOUT_SECONDS,
        activityRetry=ACTIVITY_RETRY,
        postProcessing=post_processing(**post),
    )


CUSTOM_REQUEST = CustomJobRequest.model_validate(
    {
        "jobId": "custom-job-1",
        "pipeline": "ingest",
        "requestedBy": "platform-api",
        "requestedAt": "2024-01-01T02:00:00+02:00",
        "parameters": {"day": "2024-01-01"},
    }
)
DEFAULT_REQUEST = DefaultJobRequest.model_validate(
    {"jobId": "default-job-1", "userId": "user-42", "userDataIds": [7, 8]}
)


def custom_input(**post: Any) -> dict[str, Any]:
    job = CustomJob(request=CUSTOM_REQUEST)
    return PipelineJobInput(job=job, config=config(**post)).model_dump(mode="json")


def default_input(request: DefaultJobRequest = DEFAULT_REQUEST, **post: Any) -> dict[str, Any]:
    job = DefaultJob(request=request)
    return PipelineJobInput(job=job, config=config(**post)).model_dump(mode="json")


def finished_input(
    user_data_ids: list[int] | None = None, *, job_id: str = "default-job-1", **post: Any
) -> dict[str, Any]:
    return DefaultFinishedInput(
        jobId=job_id,
        userId="user-42",
        userDataIds=user_data_ids,
        config=post_processing(**post),
    ).model_dump(mode="json")


def report(status: str, **extra: Any) -> dict[str, Any]:
    """A finish report as the finished-queue trigger raises it (validated, normalised)."""
    return {"jobId": extra.pop("jobId", "custom-job-1"), "status": status, **extra}


def start_message(job: dict[str, Any]) -> dict[str, Any]:
    """What SendStartMessage returns: the start message it sent."""
    return {**job["request"], "startedAt": "2024-01-01T00:00:01Z"}


def indexer_answer(
    name: str, result: str, status_code: int | None = None, message: str | None = None
) -> dict[str, Any]:
    """What RunSearchIndexer returns (schemas.orchestration.IndexerAttempt)."""
    return {"indexer": name, "result": result, "statusCode": status_code, "message": message}
