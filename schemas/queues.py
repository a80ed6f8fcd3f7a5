"""Names of the Storage queues the app reads and writes (the contract's section 2)."""

from typing import Final

PENDING_QUEUE: Final = "data-pipeline-job-pending"
CUSTOM_START_QUEUE: Final = "data-pipeline-job-custom-start"
DEFAULT_START_QUEUE: Final = "data-pipeline-job-default-start"
FINISHED_QUEUE: Final = "data-pipeline-job-finished"
PENDING_POISON_QUEUE: Final = f"{PENDING_QUEUE}-poison"
FINISHED_POISON_QUEUE: Final = f"{FINISHED_QUEUE}-poison"

ALL_QUEUES: Final = (
    PENDING_QUEUE,
    CUSTOM_START_QUEUE,
    DEFAULT_START_QUEUE,
    FINISHED_QUEUE,
    PENDING_POISON_QUEUE,
    FINISHED_POISON_QUEUE,
)

# The Storage service rejects larger messages; checked before sending so the error names the job.
MAX_MESSAGE_BYTES: Final = 64 * 1024
