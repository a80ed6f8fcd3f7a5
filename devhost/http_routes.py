"""Serve the app's ``httpTrigger`` functions under the route prefix (``api`` by default).

Route templates follow the Functions host: ``jobs/{jobId}``, constraints such as ``{id:int}``,
optional ``{name?}`` and catch-all ``{*path}`` parameters. Requests become real
``func.HttpRequest`` objects and the function's ``func.HttpResponse`` is sent back as is.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web

from devhost.app_loader import AppFunction
from devhost.function_invoker import FunctionInvoker

log = logging.getLogger("devhost.http")

_PARAMETER = re.compile(r"\{(?P<star>\*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<spec>[^}]*)\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "float": r"-?\d+(?:\.\d+)?",
    "double": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
}


@dataclass(frozen=True)
class Route:
    function: AppFunction
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str] | None
    specificity: tuple[int, int]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.methods is not None and method not in self.methods:
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[int, int]]:
    """Turn a route template into a regex; also a sort key (literal routes before generic ones)."""
    parts: list[str] = []
    position = 0
    literal_chars = 0
    catch_all = 0
    cleaned = template.strip("/")
    for found in _PARAMETER.finditer(cleaned):
        literal = cleaned[position : found.start()]
        literal_chars += len(literal)
        parts.append(re.escape(literal))
        spec = found.group("spec")
        optional = spec.endswith("?")
        constraint = spec.rstrip("?").lstrip(":").split(":")[0].split("(")[0].lower()
        if found.group("star"):
            catch_all = 1
            body = r".*"
        else:
            body = _CONSTRAINTS.get(constraint, r"[^/]+")
        group = f"(?P<{found.group('name')}>{body})"
        if optional or found.group("star"):
            # An optional last segment may be left out together with the slash before it.
            if parts and parts[-1].endswith("/"):
                parts[-1] = parts[-1][:-1]
                group = f"(?:/{group})?"
            else:
                group = f"{group}?"
        parts.append(group)
        position = found.end()
    tail = cleaned[position:]
    literal_chars += len(tail)
    parts.append(re.escape(tail))
    return re.compile("".join(parts), re.IGNORECASE), (catch_all, -literal_chars)


def build_routes(functions: Mapping[str, AppFunction]) -> list[Route]:
    routes: list[Route] = []
    for function in functions.values():
        template = str(function.trigger.get("route") or function.name)
        methods = function.trigger.get("methods")
        pattern, specificity = compile_template(template)
        routes.append(
            Route(
                function=function,
                template=template,
                pattern=pattern,
                methods=frozenset(str(m).upper() for m in methods) if methods else None,
                specificity=specificity,
            )
        )
    return sorted(routes, key=lambda r: r.specificity)


def to_aiohttp(response: Any) -> web.Response:
    """Convert what an HTTP function returned into the response the host sends."""
    if response is None:
        return web.Response(status=204)
    if isinstance(response, func.HttpResponse):
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        if response.mimetype and "content-type" not in {k.lower() for k in headers}:
            charset = f"; charset={response.charset}" if response.charset else ""
            headers["Content-Type"] = f"{response.mimetype}{charset}"
        return web.Response(status=response.status_code, body=response.get_body(), headers=headers)
    if isinstance(response, bytes | bytearray):
        return web.Response(body=bytes(response))
    return web.Response(text=str(response))


class HttpRoutes:
    def __init__(
        self, *, functions: Mapping[str, AppFunction], invoker: FunctionInvoker, route_prefix: str
    ) -> None:
        self._routes = build_routes(functions)
        self._invoker = invoker
        self._prefix = route_prefix.strip("/")

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def add_routes(self, app: web.Application) -> None:
        path = f"/{self._prefix}/{{tail:.*}}" if self._prefix else "/{tail:.*}"
        app.router.add_route("*", path, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"].strip("/")
        method = request.method.upper()
        for route in self._routes:
            params = route.match(method, path)
            if params is None:
                continue
            return await self._invoke(route, params, request)
        return web.Response(status=404, text="Not Found")

    async def _invoke(
        self, route: Route, params: dict[str, str], request: web.Request
    ) -> web.StreamResponse:
        started = time.monotonic()
        http_request = func.HttpRequest(
            method=request.method.upper(),
            url=str(request.url),
            headers=dict(request.headers),
            params={key: request.query[key] for key in request.query},
            route_params=params,
            body=await request.read(),
        )
        try:
            invocation = await self._invoker.invoke(route.function, http_request)
            named = [
                b.get("name")
                for b in route.function.bindings
                if b.get("type") == "http" and b.get("name") != "$return"
            ]
            result = invocation.outputs.get(str(named[0])) if named else invocation.return_value
            response = to_aiohttp(result)
        except Exception as exc:
            log.error(
                "http %s %s -> function %s raised %s",
                request.method,
                request.path,
                route.function.name,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            response = web.Response(status=500, text="Internal Server Error")
        log.info(
            "http %s %s -> %s %d in %.0f ms",
            request.method,
            request.path,
            route.function.name,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response
