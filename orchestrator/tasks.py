"""Small building blocks shared by the orchestrators."""

from collections.abc import Generator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df

from schemas.orchestration import ActivityRetry


def retry_options(policy: ActivityRetry) -> df.RetryOptions:
    return df.RetryOptions(
        first_retry_interval_in_milliseconds=max(1, round(policy.firstIntervalSeconds * 1000)),
        max_number_of_attempts=policy.maxAttempts,
    )


@dataclass(frozen=True)
class Settled:
    """A task's end: its value, or the error it failed with after its retries."""

    ok: bool
    value: Any = None
    error: str | None = None


def settle_all(
    context: df.DurableOrchestrationContext, tasks: Sequence[Any]
) -> Generator[Any, Any, list[Settled]]:
    """Run tasks in parallel and report each one's end, failures included.

    ``task_all`` fails as soon as one task fails; the others keep running, so each one is then
    awaited on its own. Yielding a task that is already scheduled adds no action, which keeps
    this replay-safe under every replay schema.
    """
    if not tasks:
        return []
    with suppress(Exception):  # a failure is collected per task below
        yield context.task_all(list(tasks))
    settled: list[Settled] = []
    for task in tasks:
        try:
            value = yield task
        except Exception as error:
            settled.append(Settled(ok=False, error=failure_message(error)))
        else:
            settled.append(Settled(ok=True, value=value))
    return settled


def failure_message(error: BaseException) -> str:
    # The SDK reports a failed task as "<reason> \n <details>"; the reason is the message.
    text = str(error).split(" \n ", 1)[0].strip()
    return text or type(error).__name__
