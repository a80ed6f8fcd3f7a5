"""A small Durable Functions app the devhost tests run: every trigger kind the host serves.

Queue names come from app settings (``%SAMPLE_START_QUEUE%``) so each test uses its own queues.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func


def _positive_seconds(name: str, default: str) -> float:
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        # Mirrors how the real app reports a bad setting: the message names the setting.
        raise ValueError(f"setting {name} must be a positive number of seconds")
    return value


FINISH_TIMEOUT_SECONDS = _positive_seconds("SAMPLE_TIMEOUT_SECONDS", "60")
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=200, max_number_of_attempts=3)

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# Attempts per key, to make "flaky" fail a set number of times within one host process.
_attempts: dict[str, int] = {}


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_START_QUEUE%", connection="SampleStorage")
@app.durable_client_input(client_name="client")
async def start_job(msg: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    job = json.loads(msg.get_body())
    if job.get("reject"):
        raise ValueError("this job is rejected on purpose")
    await client.start_new("SampleOrchestrator", job["jobId"], job)


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_FINISH_QUEUE%", connection="SampleStorage")
@app.durable_client_input(client_name="client")
async def finish_job(msg: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    report = json.loads(msg.get_body())
    await client.raise_event(report["jobId"], "Finished", report)


@app.orchestration_trigger(context_name="context")
def SampleOrchestrator(context: df.DurableOrchestrationContext) -> Any:
    job = context.get_input()
    greeting = yield context.call_activity("greet", job["jobId"])
    flaky = yield context.call_activity_with_retry(
        "flaky", RETRY, {"key": job["jobId"], "failures": job.get("failures", 0)}
    )
    pause = job.get("pauseSeconds", 0)
    if pause:
        context.set_custom_status("paused")
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=pause))
    context.set_custom_status("waiting")
    finished = context.wait_for_external_event("Finished")
    timeout = context.create_timer(
        context.current_utc_datetime
        + timedelta(seconds=job.get("timeoutSeconds", FINISH_TIMEOUT_SECONDS))
    )
    winner = yield context.task_any([finished, timeout])
    if winner == finished:
        timeout.cancel()
        outcome = finished.result
    else:
        outcome = "timed out"
    context.set_custom_status("done")
    return {"greeting": greeting, "flaky": flaky, "finished": outcome}


@app.orchestration_trigger(context_name="context")
def FanOutOrchestrator(context: df.DurableOrchestrationContext) -> Any:
    """A retrying activity fails while its siblings are still running."""
    key = context.instance_id
    results = yield context.task_all(
        [
            context.call_activity_with_retry("flaky", RETRY, {"key": key, "failures": 2}),
            context.call_activity("slow", {"value": "a", "seconds": 0.6}),
            context.call_activity("slow", {"value": "b", "seconds": 0.1}),
            context.call_sub_orchestrator("ChildOrchestrator", {"value": "c"}),
        ]
    )
    after = yield context.call_activity("greet", "after")
    return {"results": results, "after": after}


@app.orchestration_trigger(context_name="context")
def ChildOrchestrator(context: df.DurableOrchestrationContext) -> Any:
    payload = context.get_input()
    value = yield context.call_activity("slow", {"value": payload["value"], "seconds": 0.05})
    return f"child:{value}"


@app.orchestration_trigger(context_name="context")
def FailingOrchestrator(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("explode", None)
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def SleepyOrchestrator(context: df.DurableOrchestrationContext) -> Any:
    result = yield context.call_activity("sleepy", context.instance_id)
    return result


@app.activity_trigger(input_name="key")
def sleepy(key: str) -> str:
    """Hangs on its first run (to be cut off by a host stop), returns at once afterwards."""
    import time
    from pathlib import Path

    runs = Path(os.environ["SAMPLE_RUN_LOG"])
    previous = runs.read_text().count(key) if runs.exists() else 0
    with runs.open("a") as log:
        log.write(f"{key}\n")
    if previous == 0:
        time.sleep(120)
    return f"run {previous + 1}"


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"hello {name}"


@app.activity_trigger(input_name="payload")
def flaky(payload: dict[str, Any]) -> str:
    key = payload["key"]
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] <= payload["failures"]:
        raise RuntimeError(f"flaky failure {_attempts[key]}")
    return f"flaky ok after {_attempts[key]}"


@app.activity_trigger(input_name="payload")
async def slow(payload: dict[str, Any]) -> str:
    import asyncio

    await asyncio.sleep(payload["seconds"])
    return str(payload["value"])


@app.activity_trigger(input_name="payload")
def explode(payload: Any) -> None:
    raise RuntimeError("the activity exploded")


@app.route(route="jobs/{jobId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def job_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    status = await client.get_status(req.route_params["jobId"])
    if not status:
        return func.HttpResponse(status_code=404)
    body = {
        "jobId": status.instance_id,
        "runtimeStatus": status.runtime_status.value if status.runtime_status else None,
        "customStatus": status.custom_status,
        "output": status.output,
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": (
            status.last_updated_time.isoformat() if status.last_updated_time else None
        ),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="orchestrators/{name}/{instanceId}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_orchestration(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["name"], req.route_params["instanceId"], json.loads(body) if body else None
    )
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@app.route(route="events/{instanceId}/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def raise_event(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    await client.raise_event(
        req.route_params["instanceId"], req.route_params["name"], req.get_json()
    )
    return func.HttpResponse(status_code=202)
