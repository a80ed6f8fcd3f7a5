"""The host's small parts: settings file, host.json, route templates, message encoding, loading."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import azure.functions as func
import pytest

from devhost.app_loader import AppLoadError, load_app, resolve_setting_expressions
from devhost.host_config import HostConfigError, load_host_config, parse_timespan
from devhost.http_routes import compile_template, to_aiohttp
from devhost.queue_codec import MessageDecodeError, decode_body, encode_body, output_bodies
from devhost.settings_file import SettingsFileError, apply_local_settings
from devhost.storage_accounts import ConnectionSettingError, check_connection


def test_local_settings_fill_in_but_never_override(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "from-file", "B": "from-file", "C": True}}))
    environ = {"A": "from-env"}

    applied = apply_local_settings(path, environ)

    assert environ == {"A": "from-env", "B": "from-file", "C": "true"}
    assert applied == ["B", "C"]


def test_missing_settings_file_is_fine_and_broken_one_is_an_error(tmp_path: Path) -> None:
    assert apply_local_settings(tmp_path / "absent.json", {}) == []
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SettingsFileError, match="not valid JSON"):
        apply_local_settings(broken, {})


def test_host_json_defaults_and_overrides(tmp_path: Path) -> None:
    defaults = load_host_config(tmp_path)
    assert defaults.route_prefix == "api"
    assert defaults.queues.message_encoding == "base64"
    assert defaults.queues.max_dequeue_count == 5
    assert defaults.queues.visibility_timeout == timedelta(0)

    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "http": {"routePrefix": ""},
                    "queues": {
                        "messageEncoding": "none",
                        "maxDequeueCount": 3,
                        "visibilityTimeout": "00:00:05",
                        "maxPollingInterval": "00:00:00.500",
                        "batchSize": 64,
                    },
                },
            }
        )
    )
    config = load_host_config(tmp_path)
    assert config.route_prefix == ""
    assert config.queues.message_encoding == "none"
    assert config.queues.max_dequeue_count == 3
    assert config.queues.visibility_timeout == timedelta(seconds=5)
    assert config.queues.max_polling_interval == timedelta(milliseconds=500)
    assert config.queues.batch_size == 32


def test_timespans_parse_like_dotnet() -> None:
    assert parse_timespan("1.02:03:04.5", "x") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    with pytest.raises(HostConfigError):
        parse_timespan("five seconds", "x")


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("jobs/{jobId}", "jobs/abc-1", {"jobId": "abc-1"}),
        ("jobs/{jobId}", "JOBS/abc", {"jobId": "abc"}),
        ("jobs/{jobId}", "jobs/a/b", None),
        ("items/{id:int}", "items/42", {"id": "42"}),
        ("items/{id:int}", "items/x", None),
        ("files/{*rest}", "files/a/b/c", {"rest": "a/b/c"}),
        ("list/{page?}", "list", {}),
        ("list/{page?}", "list/2", {"page": "2"}),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    pattern, _ = compile_template(template)
    found = pattern.fullmatch(path)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert {k: v for k, v in found.groupdict().items() if v is not None} == expected


def test_http_response_is_sent_as_returned() -> None:
    response = to_aiohttp(
        func.HttpResponse(
            '{"a": 1}', status_code=201, mimetype="application/json", headers={"X-A": "b"}
        )
    )
    assert response.status == 201
    assert response.headers["X-A"] == "b"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.body == b'{"a": 1}'


def test_message_encodings() -> None:
    assert decode_body("eyJhIjogMX0=", "base64") == b'{"a": 1}'
    assert decode_body('{"a": 1}', "none") == b'{"a": 1}'
    with pytest.raises(MessageDecodeError):
        decode_body('{"a": 1}', "base64")
    assert encode_body(b'{"a": 1}', "base64") == "eyJhIjogMX0="
    assert output_bodies(["x", {"k": 1}, None]) == [b"x", b'{"k": 1}']


def test_setting_expressions_and_connections() -> None:
    assert resolve_setting_expressions("%Q%-poison", {"Q": "jobs"}) == "jobs-poison"
    with pytest.raises(AppLoadError, match="%MISSING%"):
        resolve_setting_expressions("%MISSING%", {})
    check_connection("Store", {"Store": "UseDevelopmentStorage=true"})
    check_connection("Store", {"Store__queueServiceUri": "https://acct.queue.core.windows.net"})
    with pytest.raises(ConnectionSettingError, match="'Store'"):
        check_connection("Store", {})


def test_an_app_that_raises_on_import_reports_its_message(tmp_path: Path) -> None:
    app_file = tmp_path / "function_app.py"
    app_file.write_text("raise ValueError('setting DATABASE_URL is not a valid URL')\n")

    with pytest.raises(AppLoadError, match="DATABASE_URL is not a valid URL"):
        load_app(str(tmp_path))


def test_an_app_without_a_function_app_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty_app.py").write_text("VALUE = 1\n")

    with pytest.raises(AppLoadError, match="no FunctionApp"):
        load_app(str(tmp_path / "empty_app.py"))
