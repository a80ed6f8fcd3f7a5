"""Turns a Durable orchestration status into the status API's answer."""

from datetime import datetime

from schemas.fields import format_utc
from schemas.status import JobStatus
from services.durable_client import DurableClient, decoded, instance_exists


async def job_status_of(job_id: str, client: DurableClient) -> JobStatus | None:
    status = await client.get_status(job_id)
    if not instance_exists(status) or status.runtime_status is None:
        return None
    return JobStatus(
        jobId=job_id,
        runtimeStatus=status.runtime_status.value,
        customStatus=decoded(status.custom_status),
        output=decoded(status.output),
        createdTime=_timestamp(status.created_time),
        lastUpdatedTime=_timestamp(status.last_updated_time),
    )


def _timestamp(value: datetime | None) -> str | None:
    return format_utc(value) if value is not None else None
