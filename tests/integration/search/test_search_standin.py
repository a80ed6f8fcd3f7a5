"""The stand-in's own HTTP contract, seen by a plain HTTP client (no SDK in between)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from port_for import get_port

from tests.support.search_standin import SearchStandIn

ROOT = Path(__file__).resolve().parents[3]
RUN = "/indexers('docs')/search.run?api-version=2026-04-01"


def request(
    url: str, method: str = "POST", api_key: str | None = None
) -> tuple[int, dict[str, Any] | None]:
    headers = {"api-key": api_key} if api_key is not None else {}
    req = urllib.request.Request(
        url, method=method, headers=headers, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else None


def test_missing_key_is_403_with_an_error_body(search_standin: SearchStandIn) -> None:
    search_standin.script("docs")

    status, body = request(search_standin.endpoint + RUN)

    assert status == 403
    assert body is not None
    assert set(body["error"]) == {"code", "message"}
    [call] = search_standin.calls()
    assert call.api_key_ok is False


def test_unknown_indexer_is_404_with_the_service_error_shape(search_standin: SearchStandIn) -> None:
    status, body = request(search_standin.endpoint + RUN, api_key=search_standin.api_key)

    assert status == 404
    assert body == {
        "error": {
            "code": "",
            "message": "No indexer with the name 'docs' was found in a service named 'standin'.",
        }
    }


def test_api_version_is_required(search_standin: SearchStandIn) -> None:
    search_standin.script("docs")

    status, body = request(
        search_standin.endpoint + "/indexers('docs')/search.run", api_key=search_standin.api_key
    )

    assert status == 400
    assert body is not None
    assert "api-version" in body["error"]["message"]


def test_scripts_run_in_order_then_repeat(search_standin: SearchStandIn) -> None:
    search_standin.script("docs", 409, 503, then=202)
    url, key = search_standin.endpoint + RUN, search_standin.api_key

    statuses = [request(url, api_key=key)[0] for _ in range(4)]

    assert statuses == [409, 503, 202, 202]
    assert len(search_standin.wait_for_calls(4, "docs", timeout=0.1)) == 4
    assert [c.status for c in search_standin.calls("docs")] == statuses
    times = [c.at for c in search_standin.calls("docs")]
    assert times == sorted(times)


def test_forget_and_keyless_mode(search_standin: SearchStandIn) -> None:
    search_standin.script("docs")
    search_standin.require_api_key(None)
    assert request(search_standin.endpoint + RUN)[0] == 202
    search_standin.forget("docs")
    assert request(search_standin.endpoint + RUN)[0] == 404
    assert [c.api_key_ok for c in search_standin.calls()] == [None, None]


def test_run_needs_post(search_standin: SearchStandIn) -> None:
    search_standin.script("docs")

    status, _ = request(search_standin.endpoint + RUN, method="GET", api_key=search_standin.api_key)

    assert status == 405


def test_command_line_server_by_url() -> None:
    port = get_port(None)
    assert port is not None
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.search_standin",
            "--port",
            str(port),
            "--api-key",
            "k",
            "--indexer",
            "docs=409,202",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"127.0.0.1:{port}" in banner
        endpoint = f"http://127.0.0.1:{port}"

        statuses = [request(endpoint + RUN, api_key="k")[0] for _ in range(3)]
        _, calls = request(endpoint + "/_standin/calls", method="GET")

        assert statuses == [409, 202, 202]
        assert calls is not None
        assert [c["status"] for c in calls["value"]] == [409, 202, 202]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
