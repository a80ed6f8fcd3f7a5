"""The Durable extension's HTTP management API, which the SDK's client calls at ``rpcBaseUrl``.

``DurableOrchestrationClient`` (built by DFApp from the ``durableClient`` binding JSON) talks
HTTP to the extension; serving the same URLs, bodies and status codes here lets the app's client
code run unmodified. Note the SDK posts inputs and event data as a JSON *string* holding the JSON
text (``json=df_dumps(value)``); that text is what the orchestration receives.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from devhost.durable_store import (
    CreateResult,
    DeliveryResult,
    DurableStore,
    InstanceRecord,
    NewInstance,
    RuntimeStatus,
)
from devhost.orchestration_runner import utc_now
from devhost.replay import HistoryEventType, make_event

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
_CONNECTION = "Storage"
_INVALID_ID_CHARACTERS = set("/\\#?")
MAX_INSTANCE_ID_LENGTH = 256


def client_binding_json(base_url: str, task_hub: str, connection: str | None = None) -> str:
    """The ``durableClient`` binding data the extension hands to the worker."""
    webhook = f"{base_url.rstrip('/')}{WEBHOOK_PATH}"
    query = f"taskHub={quote(task_hub)}&connection={quote(connection or _CONNECTION)}"
    instance = f"{webhook}/instances/INSTANCEID"
    return json.dumps(
        {
            "taskHubName": task_hub,
            "creationUrls": {
                "createNewInstancePostUri": (
                    f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]?{query}"
                ),
                "createAndWaitOnNewInstancePostUri": (
                    f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
                    f"?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{query}"
                ),
            },
            "managementUrls": {
                "id": "INSTANCEID",
                "statusQueryGetUri": f"{instance}?{query}",
                "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
                "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
                "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
                "purgeHistoryDeleteUri": f"{instance}?{query}",
                "restartPostUri": f"{instance}/restart?{query}",
                "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
                "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
            },
            "baseUrl": webhook,
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": f"{webhook}/",
            "httpBaseUrl": "",
        }
    )


def _management_payload(base_url: str, task_hub: str, instance_id: str) -> dict[str, str]:
    urls = json.loads(client_binding_json(base_url, task_hub))["managementUrls"]
    encoded = quote(instance_id, safe="")
    payload = {key: value.replace("INSTANCEID", encoded) for key, value in urls.items()}
    payload["id"] = instance_id
    return payload


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _input_text(body: bytes) -> str | None:
    """The JSON text of an input posted by the SDK client (or by hand, as plain JSON)."""
    if not body.strip():
        return None
    parsed = json.loads(body)
    if parsed is None:
        return None
    if isinstance(parsed, str):
        try:
            json.loads(parsed)
        except json.JSONDecodeError:
            return json.dumps(parsed)
        return parsed
    return json.dumps(parsed)


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() == "true"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"Message": message, "ExceptionMessage": message}, status=status)


_HISTORY_HIDDEN = {
    int(HistoryEventType.ORCHESTRATOR_STARTED),
    int(HistoryEventType.ORCHESTRATOR_COMPLETED),
}


def _history_view(events: list[dict[str, Any]], show_output: bool) -> list[dict[str, Any]]:
    view: list[dict[str, Any]] = []
    for event in events:
        event_type = int(event["EventType"])
        if event_type in _HISTORY_HIDDEN:
            continue
        entry: dict[str, Any] = {
            "EventType": "".join(p.title() for p in HistoryEventType(event_type).name.split("_")),
            "Timestamp": event["Timestamp"],
        }
        for key in (
            "EventId",
            "Name",
            "InstanceId",
            "TaskScheduledId",
            "TimerId",
            "FireAt",
            "Reason",
            "Details",
            "OrchestrationStatus",
        ):
            if event.get(key) is not None and not (key == "EventId" and event[key] < 0):
                entry[key] = event[key]
        if show_output:
            for key in ("Input", "Result"):
                if event.get(key) is not None:
                    entry[key] = _decode(event[key])
        view.append(entry)
    return view


class DurableApi:
    def __init__(
        self,
        *,
        store: DurableStore,
        is_orchestrator: Callable[[str], bool],
        wake: Callable[[], None],
        task_hub: str,
        base_url: Callable[[], str],
    ) -> None:
        self._store = store
        self._is_orchestrator = is_orchestrator
        self._wake = wake
        self._task_hub = task_hub
        self._base_url = base_url

    def add_routes(self, app: web.Application) -> None:
        base = WEBHOOK_PATH
        app.router.add_post(f"{base}/orchestrators/{{name}}", self.start)
        app.router.add_post(f"{base}/orchestrators/{{name}}/{{instance_id}}", self.start)
        app.router.add_get(f"{base}/instances", self.list_instances)
        app.router.add_get(f"{base}/instances/", self.list_instances)
        app.router.add_delete(f"{base}/instances", self.purge_many)
        app.router.add_delete(f"{base}/instances/", self.purge_many)
        app.router.add_get(f"{base}/instances/{{instance_id}}", self.get_status)
        app.router.add_delete(f"{base}/instances/{{instance_id}}", self.purge)
        app.router.add_post(
            f"{base}/instances/{{instance_id}}/raiseEvent/{{event_name}}", self.raise_event
        )
        app.router.add_post(f"{base}/instances/{{instance_id}}/terminate", self.terminate)
        for action in ("rewind", "suspend", "resume", "restart"):
            app.router.add_post(f"{base}/instances/{{instance_id}}/{action}", self.unsupported)

    # ---------------------------------------------------------------- handlers

    async def start(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        instance_id = request.match_info.get("instance_id") or uuid.uuid4().hex
        if not self._is_orchestrator(name):
            return _error(
                400,
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator"
                " function. Additional info: the app registers no orchestrator by that name.",
            )
        problem = _instance_id_problem(instance_id)
        if problem is not None:
            return _error(400, problem)
        try:
            input_text = _input_text(await request.read())
        except json.JSONDecodeError:
            return _error(400, "Only application/json request content is supported")
        new = NewInstance(instance_id=instance_id, name=name, input=input_text)
        result = await asyncio.to_thread(self._store.create_instance, new, utc_now())
        if result is CreateResult.ALREADY_RUNNING:
            existing = await asyncio.to_thread(self._store.get_instance, instance_id)
            status = existing.status.value if existing else RuntimeStatus.RUNNING.value
            return _error(
                400,
                f"An Orchestration instance with the status {status} already exists"
                f" (instance ID '{instance_id}').",
            )
        self._wake()
        payload = _management_payload(self._base_url(), self._task_hub, instance_id)
        return web.json_response(
            payload, status=202, headers={"Location": payload["statusQueryGetUri"]}
        )

    async def raise_event(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        try:
            input_text = _input_text(await request.read())
        except json.JSONDecodeError:
            return _error(400, "Only application/json request content is supported")
        event = make_event(
            HistoryEventType.EVENT_RAISED,
            timestamp=utc_now(),
            Name=request.match_info["event_name"],
            Input=input_text if input_text is not None else "null",
        )
        result = await asyncio.to_thread(self._store.deliver, instance_id, event)
        return self._delivery_response(result, instance_id)

    async def terminate(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        event = make_event(
            HistoryEventType.EXECUTION_TERMINATED,
            timestamp=utc_now(),
            Input=request.query.get("reason", ""),
        )
        result = await asyncio.to_thread(self._store.deliver, instance_id, event)
        return self._delivery_response(result, instance_id)

    def _delivery_response(self, result: DeliveryResult, instance_id: str) -> web.Response:
        if result is DeliveryResult.NOT_FOUND:
            return _error(404, f"No instance with ID '{instance_id}' found.")
        if result is DeliveryResult.GONE:
            return _error(
                410, f"Instance with ID '{instance_id}' is completed, failed or terminated."
            )
        self._wake()
        return web.Response(status=202)

    async def get_status(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        instance = await asyncio.to_thread(self._store.get_instance, instance_id)
        if instance is None:
            return web.json_response(None, status=404)
        body = self._status_json(
            instance,
            show_input=_flag(request, "showInput", True),
        )
        if _flag(request, "showHistory", False):
            events = await asyncio.to_thread(self._store.history, instance_id)
            body["history"] = _history_view(events, _flag(request, "showHistoryOutput", False))
        status = 202
        if instance.status.is_terminal:
            status = 200
            failed = instance.status is RuntimeStatus.FAILED
            if failed and _flag(request, "returnInternalServerErrorOnFailure", False):
                status = 500
        headers = {}
        if status == 202:
            headers["Location"] = _management_payload(
                self._base_url(), self._task_hub, instance_id
            )["statusQueryGetUri"]
        return web.json_response(body, status=status, headers=headers)

    async def _query(self, request: web.Request, *, by_prefix: bool) -> list[InstanceRecord]:
        """The instances a list or purge request's query string selects."""
        statuses = [s for s in request.query.get("runtimeStatus", "").split(",") if s]
        return await asyncio.to_thread(
            lambda: self._store.list_instances(
                created_from=request.query.get("createdTimeFrom"),
                created_to=request.query.get("createdTimeTo"),
                statuses=statuses,
                prefix=request.query.get("instanceIdPrefix") if by_prefix else None,
            )
        )

    async def list_instances(self, request: web.Request) -> web.Response:
        instances = await self._query(request, by_prefix=True)
        show_input = _flag(request, "showInput", False)
        return web.json_response([self._status_json(i, show_input=show_input) for i in instances])

    async def purge(self, request: web.Request) -> web.Response:
        deleted = await asyncio.to_thread(self._store.purge, request.match_info["instance_id"])
        return web.json_response({"instancesDeleted": deleted}, status=200 if deleted else 404)

    async def purge_many(self, request: web.Request) -> web.Response:
        instances = await self._query(request, by_prefix=False)
        deleted = 0
        for instance in instances:
            deleted += await asyncio.to_thread(self._store.purge, instance.instance_id)
        return web.json_response({"instancesDeleted": deleted}, status=200 if deleted else 404)

    async def unsupported(self, request: web.Request) -> web.Response:
        action = request.path.rstrip("/").rsplit("/", 1)[-1]
        return _error(501, f"devhost does not support {action}")

    @staticmethod
    def _status_json(instance: InstanceRecord, *, show_input: bool) -> dict[str, Any]:
        return {
            "name": instance.name,
            "instanceId": instance.instance_id,
            "createdTime": instance.created_at,
            "lastUpdatedTime": instance.updated_at,
            "input": _decode(instance.input) if show_input else None,
            "output": _decode(instance.output),
            "runtimeStatus": instance.status.value,
            "customStatus": _decode(instance.custom_status),
        }


def _instance_id_problem(instance_id: str) -> str | None:
    if not instance_id.strip():
        return "Instance ID must not be empty."
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        return f"Instance ID must be at most {MAX_INSTANCE_ID_LENGTH} characters."
    if any(c in _INVALID_ID_CHARACTERS or ord(c) < 0x20 for c in instance_id):
        return "Instance ID must not contain /, \\, #, ? or control characters."
    return None
