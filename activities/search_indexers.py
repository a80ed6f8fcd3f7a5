"""Asks Azure AI Search to run one indexer, once; the orchestrator owns retrying."""

import logging
from typing import Any

import azure.durable_functions as df

from activities.names import RUN_SEARCH_INDEXER
from schemas.orchestration import IndexerAttempt, RunSearchIndexer
from wiring import app_services

bp = df.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name(RUN_SEARCH_INDEXER)
@bp.activity_trigger(input_name="request")
def run_search_indexer(request: dict[str, Any]) -> dict[str, Any]:
    work = RunSearchIndexer.model_validate(request)
    attempt = app_services().indexer_runner.run_once(work.indexer)
    result = IndexerAttempt(
        indexer=work.indexer,
        result=attempt.outcome,
        statusCode=attempt.status_code,
        message=attempt.message,
    )
    logger.info(
        "Job %s: indexer %s run request: %s%s",
        work.jobId,
        work.indexer,
        result.result,
        f" ({result.statusCode})" if result.statusCode else "",
    )
    return result.model_dump(mode="json")
