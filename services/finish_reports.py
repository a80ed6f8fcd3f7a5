"""What happens to a finish report: hand it to its job, ignore a repeat, or dead-letter it."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from azure.durable_functions.models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus,
)
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus,
)
from pydantic import ValidationError

from schemas.classify import UndecodableMessageError, decode_message_text
from schemas.dead_letter import FieldError, field_errors
from schemas.finished import FinishReport
from schemas.orchestration import ACCEPTS_FINISH_REPORT, JOB_FINISHED_EVENT, JobPhase
from schemas.queues import FINISHED_POISON_QUEUE, FINISHED_QUEUE
from services.durable_client import DurableClient, decoded, instance_exists
from services.pipeline_queues import PipelineQueues

logger = logging.getLogger(__name__)

_STILL_RUNNING = {OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending}


@dataclass(frozen=True)
class ReportResult:
    action: Literal["delivered", "duplicate", "dead-lettered"]
    job_id: str | None
    detail: str


class FinishReportRouter:
    def __init__(self, queues: PipelineQueues) -> None:
        self._queues = queues

    async def receive(self, body: bytes, client: DurableClient) -> ReportResult:
        try:
            value = decode_message_text(body)
        except UndecodableMessageError as error:
            return self._dead_letter(body, None, error.reason)
        if not isinstance(value, dict):
            return self._dead_letter(body, None, "The finish report must be a JSON object.")
        try:
            report = FinishReport.model_validate(value)
        except ValidationError as error:
            errors = field_errors(error.errors())
            summary = "; ".join(f"{e.loc}: {e.msg}" for e in errors)
            reason = f"The finish report is invalid: {summary}."
            return self._dead_letter(body, None, reason, errors)

        job_id = report.jobId
        status = await client.get_status(job_id)
        if not instance_exists(status):
            return self._dead_letter(body, job_id, f"No job with jobId '{job_id}' exists.")
        phase = decoded(status.custom_status)
        if status.runtime_status in _STILL_RUNNING and (
            phase is None or phase in ACCEPTS_FINISH_REPORT
        ):
            # Raised before the orchestrator waits (still starting), Durable buffers the event.
            await client.raise_event(job_id, JOB_FINISHED_EVENT, report.model_dump(mode="json"))
            logger.info("Job %s: finish report (%s) delivered", job_id, report.status)
            return ReportResult("delivered", job_id, report.status)
        if phase == JobPhase.TIMED_OUT or _pipeline_status(status) == "TimedOut":
            return self._dead_letter(
                body,
                job_id,
                f"Job '{job_id}' already timed out waiting for its finish report; "
                "the report came too late and was not applied.",
            )
        if status.runtime_status in _STILL_RUNNING | {OrchestrationRuntimeStatus.Completed}:
            logger.info(
                "Job %s: ignored a second finish report (%s); the job already has one",
                job_id,
                report.status,
            )
            return ReportResult("duplicate", job_id, "the job already took a finish report")
        runtime = status.runtime_status.value if status.runtime_status else "unknown"
        return self._dead_letter(
            body, job_id, f"Job '{job_id}' is {runtime} and can no longer take a finish report."
        )

    def _dead_letter(
        self, body: bytes, job_id: str | None, reason: str, errors: list[FieldError] | None = None
    ) -> ReportResult:
        self._queues.dead_letter(
            poison_queue=FINISHED_POISON_QUEUE,
            source_queue=FINISHED_QUEUE,
            original=body.decode("utf-8", errors="replace"),
            reason=reason,
            errors=errors or [],
            at=datetime.now(UTC),
        )
        logger.warning(
            "Job %s: finish report dead-lettered to %s: %s",
            job_id or "(no valid jobId)",
            FINISHED_POISON_QUEUE,
            reason,
        )
        return ReportResult("dead-lettered", job_id, reason)


def _pipeline_status(status: DurableOrchestrationStatus) -> Any:
    output = decoded(status.output)
    return output.get("pipelineStatus") if isinstance(output, dict) else None
