"""Start messages sent to the data pipeline (contract 3.4)."""

from pydantic import ConfigDict

from schemas.fields import UtcTimestamp
from schemas.pending import CustomJobRequest, DefaultJobRequest


class CustomJobStart(CustomJobRequest):
    """The normalized custom job request plus the time the orchestrator started it."""

    # Defaults are always written, so the published schema lists every field as required.
    model_config = ConfigDict(
        title="CustomJobStart", json_schema_serialization_defaults_required=True
    )

    startedAt: UtcTimestamp


class DefaultJobStart(DefaultJobRequest):
    """The normalized default job request plus the time the orchestrator started it."""

    # Defaults are always written, so the published schema lists every field as required.
    model_config = ConfigDict(
        title="DefaultJobStart", json_schema_serialization_defaults_required=True
    )

    startedAt: UtcTimestamp
