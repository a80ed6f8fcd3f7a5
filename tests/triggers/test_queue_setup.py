"""``EnsurePipelineQueues`` (timer trigger, run on start-up): creates the six contract queues."""

from __future__ import annotations

from typing import Any

from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueServiceClient

from schemas.queues import ALL_QUEUES
from tests.triggers.conftest import registered_functions


def _timer_function(app: Any) -> Any:
    (function,) = [
        f for f in registered_functions(app) if f.get_function_name() == "EnsurePipelineQueues"
    ]
    return function


def test_registered_as_a_timer_that_runs_at_start_up(app_on_azurite: Any) -> None:
    trigger = _timer_function(app_on_azurite.app).get_trigger()
    assert trigger.get_binding_name() == "timerTrigger"
    assert trigger.get_dict_repr()["runOnStartup"] is True
    assert trigger.get_dict_repr()["schedule"] == "0 */30 * * * *"


def test_creates_every_missing_queue_and_is_harmless_when_they_exist(
    app_on_azurite: Any, clean_queues: QueueServiceClient
) -> None:
    for name in ALL_QUEUES:
        clean_queues.delete_queue(name)
    ensure = _timer_function(app_on_azurite.app).get_user_function()
    timer = TimerRequest(past_due=False)

    ensure(timer)
    ensure(timer)

    existing = {queue.name for queue in clean_queues.list_queues()}
    assert set(ALL_QUEUES) <= existing
