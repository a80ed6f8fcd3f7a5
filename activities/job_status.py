"""Writes a custom job's status to the ``PipelineJob`` table."""

import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from activities.errors import StepFailedError, describe
from activities.names import RECORD_JOB_STATUS
from schemas.orchestration import RecordJobStatus
from wiring import app_services

bp = df.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name(RECORD_JOB_STATUS)
@bp.activity_trigger(input_name="request")
def record_job_status(request: dict[str, Any]) -> str:
    update = RecordJobStatus.model_validate(request)
    store = app_services().job_status
    now = datetime.now(UTC)
    try:
        if update.status == "Running":
            store.mark_running(update.jobId, at=now)
        else:
            store.record_outcome(update.jobId, update.status, update.error, at=now)
    except Exception as error:
        message = f"Could not record status {update.status}: {describe(error)}"
        raise StepFailedError(message) from error
    logger.info("Job %s: PipelineJob status is %s", update.jobId, update.status)
    return update.status
