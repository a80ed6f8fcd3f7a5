"""``PipelineJobOrchestrator``: one instance per job, its instance id is the jobId.

Sends the start message, waits for the pipeline's finish report racing a durable timer, then
records a custom job's status or post-processes a succeeded default job.
"""

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.names import RECORD_JOB_STATUS, SEND_START_MESSAGE
from orchestrator.names import DEFAULT_FINISHED_ORCHESTRATOR, PIPELINE_JOB_ORCHESTRATOR
from orchestrator.tasks import retry_options
from schemas.finished import FinishReport
from schemas.orchestration import (
    JOB_FINISHED_EVENT,
    CustomJob,
    DefaultFinishedInput,
    DefaultJob,
    JobPhase,
    PipelineJobInput,
    PipelineJobOutput,
    PipelineStatus,
    PostProcessingOutcome,
    RecordJobStatus,
    StartPipelineJob,
)

bp = df.Blueprint()


@bp.function_name(PIPELINE_JOB_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def pipeline_job_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    job_input = PipelineJobInput.model_validate(context.get_input())
    job, config = job_input.job, job_input.config
    job_id = job.request.jobId
    is_custom = isinstance(job, CustomJob)
    retry = retry_options(config.activityRetry)

    context.set_custom_status(JobPhase.STARTING_PIPELINE.value)
    yield context.call_activity_with_retry(
        SEND_START_MESSAGE, retry, StartPipelineJob(job=job).model_dump(mode="json")
    )
    if is_custom:
        yield context.call_activity_with_retry(
            RECORD_JOB_STATUS, retry, _status_update(job_id, "Running", None)
        )

    context.set_custom_status(JobPhase.WAITING_FOR_PIPELINE.value)
    timeout = context.create_timer(
        context.current_utc_datetime + timedelta(seconds=config.timeoutSeconds)
    )
    report_event = context.wait_for_external_event(JOB_FINISHED_EVENT)
    winner = yield context.task_any([report_event, timeout])

    pipeline_status: PipelineStatus
    if winner == report_event:
        timeout.cancel()
        report = FinishReport.model_validate(report_event.result)
        pipeline_status, error, finished_at = report.status, report.error, report.finishedAt
    else:
        pipeline_status, finished_at = "TimedOut", None
        error = f"No finish report arrived within {config.timeoutSeconds} seconds."
        # Set before anything else runs, so a late report is recognised as late.
        context.set_custom_status(JobPhase.TIMED_OUT.value)

    post_processing: PostProcessingOutcome | None = None
    if is_custom:
        if pipeline_status != "TimedOut":
            context.set_custom_status(JobPhase.RECORDING_STATUS.value)
        yield context.call_activity_with_retry(
            RECORD_JOB_STATUS, retry, _status_update(job_id, pipeline_status, error)
        )
    elif isinstance(job, DefaultJob) and pipeline_status == "Succeeded":
        context.set_custom_status(JobPhase.POST_PROCESSING.value)
        request = job.request
        outcome = yield context.call_sub_orchestrator(
            DEFAULT_FINISHED_ORCHESTRATOR,
            DefaultFinishedInput(
                jobId=job_id,
                userId=request.userId,
                userDataIds=request.userDataIds,
                config=config.postProcessing,
            ).model_dump(mode="json"),
            instance_id=f"{job_id}:{DEFAULT_FINISHED_ORCHESTRATOR}",
        )
        post_processing = PostProcessingOutcome.model_validate(outcome)

    if pipeline_status != "TimedOut":
        context.set_custom_status(JobPhase.DONE.value)
    return PipelineJobOutput(
        jobId=job_id,
        schema=job.schema_,
        pipelineStatus=pipeline_status,
        error=error,
        finishedAt=finished_at,
        postProcessing=post_processing,
    ).model_dump(mode="json", exclude_none=True)


def _status_update(job_id: str, status: str, error: str | None) -> dict[str, Any]:
    return RecordJobStatus.model_validate(
        {"jobId": job_id, "status": status, "error": error}
    ).model_dump(mode="json")
