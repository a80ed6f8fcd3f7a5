"""``PipelineJobDefaultFinished``: post-processing of a succeeded default job.

The search indexers, the cache clear and the UserData de-activation start together; each
reports its own outcome and none can stop or hide another. Busy (409) or transiently failing
(5xx) indexers are retried with exponential backoff on durable timers, so no worker sits
waiting, until the retry window closes.
"""

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.names import CLEAR_USER_CACHE, DEACTIVATE_USER_DATA, RUN_SEARCH_INDEXER
from orchestrator.names import DEFAULT_FINISHED_ORCHESTRATOR
from orchestrator.tasks import Settled, retry_options, settle_all
from schemas.orchestration import (
    CacheOutcome,
    ClearUserCache,
    DeactivateUserData,
    DefaultFinishedInput,
    IndexerAttempt,
    IndexerOutcome,
    IndexerRetry,
    PostProcessingOutcome,
    RunSearchIndexer,
    SearchIndexersOutcome,
    UserDataOutcome,
)

bp = df.Blueprint()

_RETRYABLE = {"busy", "transient"}


@bp.function_name(DEFAULT_FINISHED_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def default_finished_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    work = DefaultFinishedInput.model_validate(context.get_input())
    config = work.config
    retry = retry_options(config.activityRetry)
    indexers = config.searchIndexers if config.searchEnabled else []

    user_data_task = context.call_activity_with_retry(
        DEACTIVATE_USER_DATA,
        retry,
        DeactivateUserData(
            jobId=work.jobId, userId=work.userId, userDataIds=work.userDataIds
        ).model_dump(mode="json"),
    )
    cache_tasks = (
        [
            context.call_activity_with_retry(
                CLEAR_USER_CACHE,
                retry,
                ClearUserCache(
                    jobId=work.jobId, userId=work.userId, patterns=config.cacheKeyPatterns
                ).model_dump(mode="json"),
            )
        ]
        if config.cacheEnabled
        else []
    )
    indexer_tasks = [_run_indexer(context, work.jobId, name) for name in indexers]

    settled = yield from settle_all(context, [user_data_task, *cache_tasks, *indexer_tasks])
    user_data_end = settled[0]
    cache_end = settled[1] if cache_tasks else None
    first_attempts = settled[1 + len(cache_tasks) :]

    indexer_outcomes = yield from _finish_indexers(
        context, work.jobId, dict(zip(indexers, first_attempts, strict=True)), config.indexerRetry
    )

    return PostProcessingOutcome(
        searchIndexers=_search_outcome(config.searchEnabled, indexer_outcomes),
        cache=_cache_outcome(cache_end) if cache_end else CacheOutcome(ok=True, skipped=True),
        userData=_user_data_outcome(user_data_end),
    ).model_dump(mode="json", exclude_none=True)


def _run_indexer(context: df.DurableOrchestrationContext, job_id: str, name: str) -> Any:
    return context.call_activity(
        RUN_SEARCH_INDEXER, RunSearchIndexer(jobId=job_id, indexer=name).model_dump(mode="json")
    )


def _finish_indexers(
    context: df.DurableOrchestrationContext,
    job_id: str,
    first_attempts: dict[str, Settled],
    policy: IndexerRetry,
) -> Generator[Any, Any, dict[str, IndexerOutcome]]:
    outcomes: dict[str, IndexerOutcome] = {}
    attempts = dict.fromkeys(first_attempts, 1)
    waiting: dict[str, str] = {}

    def take(name: str, end: Settled) -> None:
        if not end.ok:
            outcomes[name] = IndexerOutcome(ok=False, attempts=attempts[name], error=end.error)
            return
        attempt = IndexerAttempt.model_validate(end.value)
        if attempt.result == "started":
            outcomes[name] = IndexerOutcome(ok=True, attempts=attempts[name])
        elif attempt.result in _RETRYABLE:
            waiting[name] = _describe(attempt)
        else:
            outcomes[name] = IndexerOutcome(
                ok=False, attempts=attempts[name], error=_describe(attempt)
            )

    for name, end in first_attempts.items():
        take(name, end)

    give_up_at = context.current_utc_datetime + timedelta(seconds=policy.windowSeconds)
    round_number = 0
    while waiting:
        delay = min(policy.firstIntervalSeconds * 2**round_number, policy.maxIntervalSeconds)
        fire_at = context.current_utc_datetime + timedelta(seconds=delay)
        if fire_at > give_up_at:
            for name, last in waiting.items():
                outcomes[name] = IndexerOutcome(
                    ok=False,
                    attempts=attempts[name],
                    error=f"gave up after {_attempts(attempts[name])} within "
                    f"{policy.windowSeconds:g} seconds; last answer: {last}",
                )
            break
        yield context.create_timer(fire_at)
        round_number += 1
        names = list(waiting)
        waiting.clear()
        ends = yield from settle_all(context, [_run_indexer(context, job_id, n) for n in names])
        for name, end in zip(names, ends, strict=True):
            attempts[name] += 1
            take(name, end)
    return outcomes


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _describe(attempt: IndexerAttempt) -> str:
    code = f"HTTP {attempt.statusCode}" if attempt.statusCode else attempt.result
    return f"{code}: {attempt.message}" if attempt.message else code


def _search_outcome(enabled: bool, outcomes: dict[str, IndexerOutcome]) -> SearchIndexersOutcome:
    if not enabled:
        return SearchIndexersOutcome(ok=True, skipped=True)
    failed = {name: o.error for name, o in outcomes.items() if not o.ok}
    return SearchIndexersOutcome(
        ok=not failed,
        error="; ".join(f"{name}: {error}" for name, error in failed.items()) or None,
        indexers=outcomes,
    )


def _cache_outcome(end: Settled) -> CacheOutcome:
    if end.ok:
        return CacheOutcome.model_validate(end.value)
    return CacheOutcome(ok=False, error=end.error)


def _user_data_outcome(end: Settled) -> UserDataOutcome:
    if end.ok:
        return UserDataOutcome.model_validate(end.value)
    return UserDataOutcome(ok=False, error=end.error)
