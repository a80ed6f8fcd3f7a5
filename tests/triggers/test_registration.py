"""The functions the app registers for the outside world: names, queues, connection, route."""

from __future__ import annotations

from typing import Any

import pytest

from tests.triggers.conftest import registered_functions


@pytest.fixture
def bindings(app_on_azurite: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Function name -> binding type -> the binding as the host indexes it."""
    return {
        f.get_function_name(): {b.type: b.get_dict_repr() for b in f.get_bindings()}
        for f in registered_functions(app_on_azurite.app)
    }


@pytest.mark.parametrize(
    ("function_name", "queue"),
    [
        ("PendingJobReceived", "data-pipeline-job-pending"),
        ("PipelineJobFinishedReceived", "data-pipeline-job-finished"),
    ],
)
def test_queue_triggers_listen_on_the_contract_queues_of_pipeline_storage(
    bindings: dict[str, dict[str, dict[str, Any]]], function_name: str, queue: str
) -> None:
    trigger = bindings[function_name]["queueTrigger"]
    assert trigger["queueName"] == queue
    assert trigger["connection"] == "PipelineStorage"
    assert "durableClient" in bindings[function_name]


def test_status_api_is_a_get_on_jobs_job_id(
    bindings: dict[str, dict[str, dict[str, Any]]],
) -> None:
    trigger = bindings["GetJobStatus"]["httpTrigger"]
    assert trigger["route"] == "jobs/{jobId}"
    assert [str(method.value) for method in trigger["methods"]] == ["GET"]
    assert "durableClient" in bindings["GetJobStatus"]


def test_the_registered_functions_keep_their_user_code(app_on_azurite: Any) -> None:
    functions = {f.get_function_name(): f for f in registered_functions(app_on_azurite.app)}
    for name in ("PendingJobReceived", "PipelineJobFinishedReceived", "GetJobStatus"):
        assert callable(functions[name].get_user_function().client_function), name
