"""The finish report the data pipeline sends to ``data-pipeline-job-finished`` (contract 3.5)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from schemas.fields import JobId, UtcTimestamp

PipelineOutcome = Literal["Succeeded", "Failed"]


class FinishReport(BaseModel):
    # The pipeline may add fields in later versions; they must not break the app.
    model_config = ConfigDict(extra="ignore", title="FinishReport")

    jobId: JobId
    status: Annotated[
        PipelineOutcome,
        # Published as a case-insensitive pattern: the app accepts any casing.
        WithJsonSchema(
            {
                "type": "string",
                "pattern": "^([Ss][Uu][Cc][Cc][Ee][Ee][Dd][Ee][Dd]|[Ff][Aa][Ii][Ll][Ee][Dd])$",
                "description": "Succeeded or Failed, case-insensitive.",
            }
        ),
    ]
    finishedAt: UtcTimestamp | None = None
    error: str | None = Field(default=None, max_length=4000)

    @field_validator("status", mode="before")
    @classmethod
    def _status_case_insensitive(cls, value: Any) -> Any:
        if isinstance(value, str):
            for known in ("Succeeded", "Failed"):
                if value.casefold() == known.casefold():
                    return known
        return value
