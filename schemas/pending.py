"""The two schemas a job request on ``data-pipeline-job-pending`` may have (contract 3.1, 3.2)."""

from collections import Counter
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictInt, field_validator

from schemas.fields import JobId, UtcTimestamp

MAX_USER_DATA_IDS = 10_000

# UserData.Id is an integer column: larger ids cannot exist, so they are rejected up front.
UserDataId = Annotated[StrictInt, Field(gt=0, le=2**31 - 1)]


class CustomJobRequest(BaseModel):
    """A job request produced by the Platform API."""

    model_config = ConfigDict(extra="forbid", title="CustomJobRequest")

    jobId: JobId
    pipeline: str = Field(min_length=1, max_length=200)
    requestedBy: str = Field(min_length=1, max_length=200)
    requestedAt: UtcTimestamp
    parameters: dict[str, JsonValue] = Field(default_factory=dict)

    job_schema: ClassVar[Literal["custom"]] = "custom"


class DefaultJobRequest(BaseModel):
    """A job request written by hand by a developer."""

    model_config = ConfigDict(extra="forbid", title="DefaultJobRequest")

    jobId: JobId
    userId: str = Field(min_length=1, max_length=200)
    userDataIds: list[UserDataId] | None = Field(
        default=None,
        max_length=MAX_USER_DATA_IDS,
        json_schema_extra={"uniqueItems": True},
        description="Absent: all of the user's active rows.",
    )

    job_schema: ClassVar[Literal["default"]] = "default"

    @field_validator("userDataIds")
    @classmethod
    def _ids_are_distinct(cls, ids: list[int] | None) -> list[int] | None:
        if ids is not None and len(set(ids)) != len(ids):
            repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ValueError(f"ids must be distinct; repeated: {repeated[:10]}")
        return ids


JobRequest = CustomJobRequest | DefaultJobRequest


def wire_form(request: JobRequest) -> dict[str, Any]:
    """The normalized message as JSON-ready data: defaults filled in, timestamps in UTC."""
    return request.model_dump(mode="json")
