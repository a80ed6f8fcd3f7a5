"""De-activates a user's ``UserData`` rows."""

import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from activities.errors import StepFailedError, describe
from activities.names import DEACTIVATE_USER_DATA
from schemas.orchestration import DeactivateUserData, UserDataOutcome
from wiring import app_services

bp = df.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name(DEACTIVATE_USER_DATA)
@bp.activity_trigger(input_name="request")
def deactivate_user_data(request: dict[str, Any]) -> dict[str, Any]:
    work = DeactivateUserData.model_validate(request)
    try:
        count = app_services().user_data.deactivate(
            work.userId, work.userDataIds, at=datetime.now(UTC)
        )
    except Exception as error:
        raise StepFailedError(f"Could not de-activate UserData rows: {describe(error)}") from error
    logger.info("Job %s: %d UserData rows de-activated", work.jobId, count)
    return UserDataOutcome(ok=True, deactivated=count).model_dump(mode="json")
