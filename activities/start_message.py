"""Sends a job's start message to the data pipeline."""

import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from activities.names import SEND_START_MESSAGE
from schemas.orchestration import StartPipelineJob
from wiring import app_services

bp = df.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name(SEND_START_MESSAGE)
@bp.activity_trigger(input_name="request")
def send_start_message(request: dict[str, Any]) -> dict[str, Any]:
    job = StartPipelineJob.model_validate(request).job
    start = app_services().queues.send_start(job, started_at=datetime.now(UTC))
    logger.info("Job %s: start message sent (%s)", start.jobId, job.schema_)
    return start.model_dump(mode="json")
