"""Messages between the queue triggers, the orchestrators and the activities.

They cross a process boundary (Durable Functions stores them as JSON in the task hub), so
they are models like the queue messages. Everything an orchestrator needs from the app
settings travels in its input: orchestrators never read settings themselves.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.fields import JobId, UtcTimestamp
from schemas.pending import CustomJobRequest, DefaultJobRequest

JOB_FINISHED_EVENT = "PipelineJobFinished"

PipelineStatus = Literal["Succeeded", "Failed", "TimedOut"]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)


class JobPhase(StrEnum):
    """The orchestration's custom status: where the job is now."""

    STARTING_PIPELINE = "StartingPipeline"
    WAITING_FOR_PIPELINE = "WaitingForPipeline"
    RECORDING_STATUS = "RecordingStatus"
    POST_PROCESSING = "PostProcessing"
    TIMED_OUT = "TimedOut"
    DONE = "Done"


ACCEPTS_FINISH_REPORT = frozenset({JobPhase.STARTING_PIPELINE, JobPhase.WAITING_FOR_PIPELINE})


class ActivityRetry(_Message):
    """Retry options for activities that are safe to run again."""

    firstIntervalSeconds: float = Field(gt=0)
    maxAttempts: int = Field(ge=1)


class IndexerRetry(_Message):
    """Backoff for indexers that are busy (409) or failing transiently (5xx)."""

    firstIntervalSeconds: float = Field(gt=0)
    maxIntervalSeconds: float = Field(gt=0)
    windowSeconds: float = Field(gt=0, description="Give up on an indexer after this long.")


class PostProcessingConfig(_Message):
    searchEnabled: bool
    searchIndexers: list[str]
    cacheEnabled: bool
    cacheKeyPatterns: list[str]
    indexerRetry: IndexerRetry
    activityRetry: ActivityRetry


class OrchestrationConfig(_Message):
    timeoutSeconds: int = Field(gt=0)
    activityRetry: ActivityRetry
    postProcessing: PostProcessingConfig


class CustomJob(_Message):
    schema_: Literal["custom"] = Field(default="custom", alias="schema")
    request: CustomJobRequest


class DefaultJob(_Message):
    schema_: Literal["default"] = Field(default="default", alias="schema")
    request: DefaultJobRequest


Job = Annotated[CustomJob | DefaultJob, Field(discriminator="schema_")]


class PipelineJobInput(_Message):
    """Input of ``PipelineJobOrchestrator``."""

    job: Job
    config: OrchestrationConfig


# --- activity inputs -------------------------------------------------------------------------


class StartPipelineJob(_Message):
    job: Job


class RecordJobStatus(_Message):
    jobId: JobId
    status: Literal["Running", "Succeeded", "Failed", "TimedOut"]
    error: str | None = None


class ClearUserCache(_Message):
    jobId: JobId
    userId: str
    patterns: list[str]


class DeactivateUserData(_Message):
    jobId: JobId
    userId: str
    userDataIds: list[int] | None


class RunSearchIndexer(_Message):
    jobId: JobId
    indexer: str


# --- outcomes --------------------------------------------------------------------------------


class StepOutcome(_Message):
    """What one post-processing step reports: it never raises, so one failure hides nothing."""

    ok: bool
    error: str | None = None
    skipped: bool = False


class CacheOutcome(StepOutcome):
    deletedKeys: int = 0


class UserDataOutcome(StepOutcome):
    deactivated: int = 0


IndexerAttemptResult = Literal["started", "busy", "transient", "failed"]


class IndexerAttempt(_Message):
    """One call to run an indexer, classified for the retry loop."""

    indexer: str
    result: IndexerAttemptResult
    statusCode: int | None = None
    message: str | None = None


class IndexerOutcome(_Message):
    ok: bool
    attempts: int
    error: str | None = None


class SearchIndexersOutcome(StepOutcome):
    indexers: dict[str, IndexerOutcome] = Field(default_factory=dict)


class PostProcessingOutcome(_Message):
    """Output of ``PipelineJobDefaultFinished``."""

    searchIndexers: SearchIndexersOutcome
    cache: CacheOutcome
    userData: UserDataOutcome


class PipelineJobOutput(_Message):
    """Output of ``PipelineJobOrchestrator``, shown by the status API."""

    jobId: JobId
    schema_: Literal["custom", "default"] = Field(alias="schema")
    pipelineStatus: PipelineStatus
    error: str | None = None
    finishedAt: UtcTimestamp | None = None
    postProcessing: PostProcessingOutcome | None = None


class DefaultFinishedInput(_Message):
    """Input of ``PipelineJobDefaultFinished``."""

    jobId: JobId
    userId: str
    userDataIds: list[int] | None
    config: PostProcessingConfig
