"""What happens to a message on the pending queue: start a job, ignore a twin, or dead-letter it."""

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from schemas.classify import Rejection, classify_pending
from schemas.orchestration import (
    CustomJob,
    DefaultJob,
    Job,
    OrchestrationConfig,
    PipelineJobInput,
)
from schemas.pending import CustomJobRequest
from schemas.queues import PENDING_POISON_QUEUE, PENDING_QUEUE
from services.durable_client import DurableClient, instance_exists
from services.pipeline_queues import PipelineQueues, start_message_overflow

ORCHESTRATOR_NAME = "PipelineJobOrchestrator"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeResult:
    action: Literal["started", "duplicate", "dead-lettered"]
    job_id: str | None
    detail: str


class PendingJobIntake:
    def __init__(self, queues: PipelineQueues, config: OrchestrationConfig) -> None:
        self._queues = queues
        self._config = config

    async def receive(self, body: bytes, client: DurableClient) -> IntakeResult:
        classified = classify_pending(body)
        if isinstance(classified, Rejection):
            return self._dead_letter(body, classified, job_id=None)
        job: Job = (
            CustomJob(request=classified)
            if isinstance(classified, CustomJobRequest)
            else DefaultJob(request=classified)
        )
        job_id = classified.jobId
        overflow = start_message_overflow(job)
        if overflow:
            return self._dead_letter(
                body,
                Rejection(
                    reason=f"Job '{job_id}' is too large to forward: its start message would be "
                    f"{overflow} bytes over the 64 KiB queue message limit once base64-encoded. "
                    "Send fewer parameters or userDataIds."
                ),
                job_id=job_id,
            )
        existing = await client.get_status(job_id, show_input=True)
        if instance_exists(existing):
            return self._already_known(body, job, existing.input_)
        orchestration_input = PipelineJobInput(job=job, config=self._config)
        try:
            await client.start_new(
                ORCHESTRATOR_NAME, job_id, orchestration_input.model_dump(mode="json")
            )
        except Exception:
            # A twin message may have started the same jobId between our check and our start;
            # the extension then refuses the start. That is a duplicate, not a failure.
            existing = await client.get_status(job_id, show_input=True)
            if instance_exists(existing):
                return self._already_known(body, job, existing.input_)
            raise
        logger.info("Job %s: started %s job", job_id, job.schema_)
        return IntakeResult("started", job_id, f"started {job.schema_} job")

    def _already_known(self, body: bytes, job: Job, stored_input: Any) -> IntakeResult:
        job_id = job.request.jobId
        if _job_of(stored_input) == job:
            logger.info("Job %s: ignored a duplicate of the pending message (same content)", job_id)
            return IntakeResult("duplicate", job_id, "same content as the running job")
        return self._dead_letter(
            body,
            Rejection(
                reason=f"The jobId '{job_id}' is already used by another job with different "
                "content. Send this job again with a new jobId."
            ),
            job_id=job_id,
        )

    def _dead_letter(self, body: bytes, rejection: Rejection, job_id: str | None) -> IntakeResult:
        self._queues.dead_letter(
            poison_queue=PENDING_POISON_QUEUE,
            source_queue=PENDING_QUEUE,
            original=body.decode("utf-8", errors="replace"),
            reason=rejection.reason,
            errors=rejection.errors,
            at=datetime.now(UTC),
        )
        logger.warning(
            "Job %s: pending message dead-lettered to %s: %s",
            job_id or "(no valid jobId)",
            PENDING_POISON_QUEUE,
            rejection.reason,
        )
        return IntakeResult("dead-lettered", job_id, rejection.reason)


def _job_of(stored_input: Any) -> Job | None:
    """The job inside an orchestration's stored input, whatever shape the client returned."""
    try:
        data = json.loads(stored_input) if isinstance(stored_input, str) else stored_input
        return PipelineJobInput.model_validate(data).job
    except (ValueError, ValidationError):
        return None
