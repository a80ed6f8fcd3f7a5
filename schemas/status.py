"""The status API's answer: ``GET /api/jobs/{jobId}`` (contract 5)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from schemas.fields import JobId


class JobStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", title="JobStatus")

    jobId: JobId
    runtimeStatus: str = Field(description="Running, Completed, Failed, Terminated or Pending.")
    customStatus: JsonValue = Field(description="The job's phase, e.g. WaitingForPipeline.")
    output: JsonValue = Field(description="The orchestration output once the job finished.")
    createdTime: str | None
    lastUpdatedTime: str | None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
