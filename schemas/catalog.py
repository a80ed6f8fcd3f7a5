"""The messages the app publishes a JSON Schema for, with the file each one is written to."""

from typing import Literal

from pydantic import BaseModel

from schemas.dead_letter import DeadLetter
from schemas.finished import FinishReport
from schemas.pending import CustomJobRequest, DefaultJobRequest
from schemas.start import CustomJobStart, DefaultJobStart
from schemas.status import JobStatus

SchemaMode = Literal["validation", "serialization"]

# Incoming messages are described as the app validates them, outgoing ones as it writes them.
PUBLISHED_SCHEMAS: dict[str, tuple[type[BaseModel], SchemaMode]] = {
    "pending-custom.schema.json": (CustomJobRequest, "validation"),
    "pending-default.schema.json": (DefaultJobRequest, "validation"),
    "start-custom.schema.json": (CustomJobStart, "serialization"),
    "start-default.schema.json": (DefaultJobStart, "serialization"),
    "finished.schema.json": (FinishReport, "validation"),
    "dead-letter.schema.json": (DeadLetter, "serialization"),
    "job-status.schema.json": (JobStatus, "serialization"),
}
