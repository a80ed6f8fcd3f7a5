"""``GetJobStatus`` (``GET /api/jobs/{jobId}``), contract 5, with a real ``func.HttpRequest``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from tests.integration.queues.storage import utc_z
from tests.triggers.durable_double import FakeDurableClient
from tests.triggers.messages import http_get, run

GetStatus = Callable[[str], func.HttpResponse]

SUCCEEDED_DEFAULT_OUTPUT = {
    "jobId": "job-1",
    "schema": "default",
    "pipelineStatus": "Succeeded",
    "finishedAt": "2026-12-04T10:30:00Z",
    "postProcessing": {
        "searchIndexers": {"ok": True, "skipped": False, "indexers": {}},
        "cache": {"ok": True, "skipped": False, "deletedKeys": 12},
        "userData": {
            "ok": False,
            "error": "database unavailable",
            "skipped": False,
            "deactivated": 0,
        },
    },
}


@pytest.fixture
def get_status(user_code: Callable[[str], Any], durable: FakeDurableClient) -> GetStatus:
    function = user_code("GetJobStatus")

    def call(job_id: str) -> func.HttpResponse:
        response = run(function(req=http_get(f"jobs/{job_id}", job_id), client=durable))
        assert isinstance(response, func.HttpResponse)
        return response

    return call


def json_of(response: func.HttpResponse) -> Any:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


def test_unknown_job_is_404_with_a_json_error(
    get_status: GetStatus, durable: FakeDurableClient
) -> None:
    response = get_status("job-404")

    assert response.status_code == 404
    assert "job-404" in json_of(response)["error"]
    assert [c["instance_id"] for c in durable.calls_to("get_status")] == ["job-404"]


@pytest.mark.parametrize(
    "job_id",
    [
        "job-1:PipelineJobDefaultFinished",  # a sub-orchestration, not a job
        "job-1\n",
        "",
        "-job",
        "j" * 101,
        "jöb",
    ],
    ids=["sub-orchestration", "trailing-newline", "empty", "leading-dash", "too-long", "non-ascii"],
)
def test_invalid_job_id_is_404_without_asking_durable(
    get_status: GetStatus, durable: FakeDurableClient, job_id: str
) -> None:
    # Even when an instance with that id exists, it is no job.
    durable.add_instance(job_id, runtime_status="Running", name="PipelineJobDefaultFinished")

    response = get_status(job_id)

    assert response.status_code == 404
    assert "error" in json_of(response)
    assert durable.calls == []


def test_waiting_job_is_200_with_its_status(
    get_status: GetStatus, durable: FakeDurableClient
) -> None:
    durable.add_instance(
        "job-1",
        runtime_status="Running",
        custom_status="WaitingForPipeline",
        input={"job": {"schema": "default"}},
        created_time="2026-12-04T10:00:00Z",
        last_updated_time="2026-12-04T10:00:02.5Z",
    )

    response = get_status("job-1")

    assert response.status_code == 200
    assert json_of(response) == {
        "jobId": "job-1",
        "runtimeStatus": "Running",
        "customStatus": "WaitingForPipeline",
        "output": None,
        "createdTime": "2026-12-04T10:00:00Z",
        "lastUpdatedTime": "2026-12-04T10:00:02.500000Z",
    }


@pytest.mark.parametrize("output_as_json_text", [False, True], ids=["object", "json-text"])
def test_finished_job_is_200_with_its_output(
    get_status: GetStatus, durable: FakeDurableClient, output_as_json_text: bool
) -> None:
    durable.add_instance(
        "job-1",
        runtime_status="Completed",
        custom_status="Done",
        output=json.dumps(SUCCEEDED_DEFAULT_OUTPUT)
        if output_as_json_text
        else SUCCEEDED_DEFAULT_OUTPUT,
        created_time="2026-12-04T10:00:00.1234567Z",
        last_updated_time="2026-12-04T12:30:00+02:00",
    )

    response = get_status("job-1")

    assert response.status_code == 200
    body = json_of(response)
    assert body == {
        "jobId": "job-1",
        "runtimeStatus": "Completed",
        "customStatus": "Done",
        "output": SUCCEEDED_DEFAULT_OUTPUT,
        "createdTime": "2026-12-04T10:00:00.123456Z",
        "lastUpdatedTime": "2026-12-04T10:30:00Z",
    }
    assert utc_z(body["createdTime"])
    assert utc_z(body["lastUpdatedTime"])
    assert durable.calls_to("get_status")[0]["instance_id"] == "job-1"


@pytest.mark.parametrize(
    ("runtime_status", "custom_status"),
    [("Pending", None), ("Failed", "WaitingForPipeline"), ("Terminated", "WaitingForPipeline")],
)
def test_every_runtime_status_is_reported(
    get_status: GetStatus, durable: FakeDurableClient, runtime_status: str, custom_status: Any
) -> None:
    durable.add_instance("job-1", runtime_status=runtime_status, custom_status=custom_status)

    body = json_of(get_status("job-1"))

    assert body["runtimeStatus"] == runtime_status
    assert body["customStatus"] == custom_status
