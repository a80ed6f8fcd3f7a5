"""Start messages sent to the data pipeline (contract 3.4)."""

from pydantic import ConfigDict

from schemas.fields import UtcTimestamp
from schemas.pending import CustomJobRequest, DefaultJobRequest


class CustomJobStart(CustomJobRequest):
    """The normalized custom job request plus the time the orchestrator started it."""

    model_config = ConfigDict(title="CustomJobStart")

    startedAt: UtcTimestamp


class DefaultJobStart(DefaultJobRequest):
    """The normalized default job request plus the time the orchestrator started it."""

    model_config = ConfigDict(title="DefaultJobStart")

    startedAt: UtcTimestamp
