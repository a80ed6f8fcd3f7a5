"""Clears a user's keys from the Redis cache."""

import logging
from typing import Any

import azure.durable_functions as df

from activities.errors import StepFailedError, describe
from activities.names import CLEAR_USER_CACHE
from schemas.orchestration import CacheOutcome, ClearUserCache
from services.cache import CacheClearError
from wiring import app_services

bp = df.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name(CLEAR_USER_CACHE)
@bp.activity_trigger(input_name="request")
def clear_user_cache(request: dict[str, Any]) -> dict[str, Any]:
    work = ClearUserCache.model_validate(request)
    try:
        deleted = app_services().cache_cleaner.clear(work.patterns, work.userId)
    except CacheClearError as error:
        message = f"Could not clear the cache after deleting {error.deleted} keys: "
        raise StepFailedError(message + describe(error.__cause__ or error)) from error
    except Exception as error:
        raise StepFailedError(f"Could not clear the cache: {describe(error)}") from error
    logger.info("Job %s: cache cleared, %d keys deleted", work.jobId, deleted)
    return CacheOutcome(ok=True, deletedKeys=deleted).model_dump(mode="json")
