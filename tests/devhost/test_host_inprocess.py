"""The host running the sample app in-process, against real Azurite queues."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.background import BackgroundHost
from devhost.durable_api import client_binding_json
from devhost.host import HostOptions
from tests.devhost.conftest import (
    SAMPLE_APP,
    SampleQueues,
    http,
    wait_for,
    wait_for_status,
)


@pytest.fixture
def host(
    sample_queues: SampleQueues, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BackgroundHost]:
    for name, value in sample_queues.settings.items():
        monkeypatch.setenv(name, value)
    options = HostOptions(
        app=str(SAMPLE_APP),
        port=0,
        state_dir=tmp_path / "state",
        settings=tmp_path / "no-local.settings.json",
    )
    with BackgroundHost(options) as running:
        yield running


def client(host: BackgroundHost) -> df.DurableOrchestrationClient:
    return df.DurableOrchestrationClient(client_binding_json(host.base_url, "DevhostSample"))


def test_a_queued_job_runs_through_activities_retry_and_event_to_completion(
    host: BackgroundHost, sample_queues: SampleQueues
) -> None:
    sample_queues.send(sample_queues.start, {"jobId": "job-ok", "failures": 1})
    waiting = wait_for_status(host.base_url, "job-ok", "waiting")
    assert waiting["runtimeStatus"] == "Running"

    sample_queues.send(sample_queues.finish, {"jobId": "job-ok", "status": "Succeeded"})
    done = wait_for_status(host.base_url, "job-ok", "Completed")

    assert done["customStatus"] == "done"
    assert done["output"] == {
        "greeting": "hello job-ok",
        "flaky": "flaky ok after 2",
        "finished": {"jobId": "job-ok", "status": "Succeeded"},
    }
    wait_for(lambda: sample_queues.peek(sample_queues.start) == [], what="start queue to drain")


def test_a_failing_message_goes_to_the_poison_queue_after_max_dequeue_count(
    host: BackgroundHost, sample_queues: SampleQueues
) -> None:
    sample_queues.send(sample_queues.start, {"jobId": "job-bad", "reject": True})
    sample_queues.send_text(sample_queues.start, "this is not base64!")
    poison = f"{sample_queues.start}-poison"

    moved = wait_for(
        lambda: (
            sorted(sample_queues.peek(poison)) if len(sample_queues.peek(poison)) == 2 else None
        ),
        what="two poison messages",
    )

    assert "this is not base64!" in moved
    assert any(text.startswith("eyJqb2JJZCI6ICJqb2ItYmFkIi") for text in moved)
    assert sample_queues.peek(sample_queues.start) == []
    assert http("GET", f"{host.base_url}/api/jobs/job-bad")[0] == 404


def test_fan_out_with_retry_and_sub_orchestration_over_http(host: BackgroundHost) -> None:
    status, body = http("POST", f"{host.base_url}/api/orchestrators/FanOutOrchestrator/fan-1", {})
    assert status == 202
    assert body["id"] == "fan-1"
    assert body["statusQueryGetUri"].startswith(host.base_url)

    done = wait_for_status(host.base_url, "fan-1", "Completed")

    assert done["output"] == {
        "results": ["flaky ok after 3", "a", "b", "child:c"],
        "after": "hello after",
    }
    status, full = http(
        "GET",
        f"{host.base_url}/runtime/webhooks/durabletask/instances/fan-1?showHistory=true",
    )
    assert status == 200
    scheduled = [
        (e["EventType"], e.get("Name"))
        for e in full["history"]
        if e["EventType"] in {"TaskScheduled", "TimerCreated", "SubOrchestrationInstanceCreated"}
    ]
    assert [e for e in full["history"] if "EventId" in e] == sorted(
        (e for e in full["history"] if "EventId" in e), key=lambda e: e["EventId"]
    )
    assert scheduled[:4] == [
        ("TaskScheduled", "flaky"),
        ("TaskScheduled", "slow"),
        ("TaskScheduled", "slow"),
        ("SubOrchestrationInstanceCreated", "ChildOrchestrator"),
    ]
    assert scheduled.count(("TimerCreated", None)) == 2, "one retry timer per failed attempt"


def test_failed_orchestration_reports_the_error(host: BackgroundHost) -> None:
    http("POST", f"{host.base_url}/api/orchestrators/FailingOrchestrator/fail-1")

    failed = wait_for_status(host.base_url, "fail-1", "Failed")

    assert failed["output"].startswith("Orchestrator function 'FailingOrchestrator' failed:")
    assert "the activity exploded" in failed["output"]


def test_durable_client_calls_behave_like_the_extension(host: BackgroundHost) -> None:
    sdk = client(host)

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        seen["unknown_status"] = bool(await sdk.get_status("nobody"))
        with pytest.raises(Exception, match="No instance with ID nobody found"):
            await sdk.raise_event("nobody", "Finished", {})
        with pytest.raises(Exception, match="doesn't exist"):
            await sdk.start_new("NoSuchOrchestrator", "x")

        instance_id = await sdk.start_new("SampleOrchestrator", "client-1", {"jobId": "client-1"})
        seen["id"] = instance_id
        with pytest.raises(Exception, match="already exists"):
            await sdk.start_new("SampleOrchestrator", "client-1", {"jobId": "client-1"})
        await sdk.terminate("client-1", "stop it")
        return seen

    seen = host.run(scenario())
    assert seen == {"unknown_status": False, "id": "client-1"}
    terminated = wait_for_status(host.base_url, "client-1", "Terminated")
    assert terminated["output"] == "stop it"

    async def after_termination() -> tuple[int, str, int]:
        with pytest.raises(Exception, match="is gone"):
            await sdk.raise_event("client-1", "Finished", {})
        status = await sdk.get_status("client-1", show_input=True)
        statuses = await sdk.get_status_by(
            runtime_status=[df.OrchestrationRuntimeStatus.Terminated]
        )
        purged = await sdk.purge_instance_history("client-1")
        return len(statuses), json.dumps(status.input_), purged.instances_deleted

    count, shown_input, deleted = host.run(after_termination())
    assert (count, shown_input, deleted) == (1, '{"jobId": "client-1"}', 1)
    assert http("GET", f"{host.base_url}/api/jobs/client-1")[0] == 404

    async def restart() -> str:
        restarted: str = await sdk.start_new(
            "SampleOrchestrator", "client-1", {"jobId": "client-1"}
        )
        return restarted

    assert host.run(restart()) == "client-1"
    wait_for_status(host.base_url, "client-1", "waiting")


def test_unknown_routes_are_404(host: BackgroundHost) -> None:
    assert http("GET", f"{host.base_url}/api/nothing/here")[0] == 404
    assert http("DELETE", f"{host.base_url}/api/jobs/x")[0] == 404
