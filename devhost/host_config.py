"""The parts of ``host.json`` the local host honours, with the Functions host's defaults."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

# The real host polls at most once a minute when idle; locally a message should be picked up
# within a couple of seconds, so the default cap is lower unless host.json says otherwise.
DEFAULT_MAX_POLLING_INTERVAL = timedelta(seconds=2)
MAX_BATCH_SIZE = 32

_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{2}):(?P<seconds>\d{2})"
    r"(?:\.(?P<fraction>\d{1,7}))?$"
)


class HostConfigError(ValueError):
    """host.json holds a value the host cannot use."""


def parse_timespan(value: Any, setting: str) -> timedelta:
    """Parse a .NET TimeSpan string (``[d.]hh:mm:ss[.fffffff]``) or a number of milliseconds."""
    if isinstance(value, bool):
        raise HostConfigError(f"host.json {setting}: expected a TimeSpan like 00:00:02")
    if isinstance(value, int | float):
        return timedelta(milliseconds=float(value))
    if isinstance(value, str):
        match = _TIMESPAN.match(value.strip())
        if match:
            fraction = match.group("fraction") or "0"
            return timedelta(
                days=int(match.group("days") or 0),
                hours=int(match.group("hours")),
                minutes=int(match.group("minutes")),
                seconds=int(match.group("seconds")),
                microseconds=int(fraction.ljust(7, "0")) // 10,
            )
    raise HostConfigError(f"host.json {setting}: expected a TimeSpan like 00:00:02, got {value!r}")


@dataclass(frozen=True)
class QueuesConfig:
    message_encoding: str = "base64"
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = DEFAULT_MAX_POLLING_INTERVAL
    batch_size: int = 16
    new_batch_threshold: int = 8


@dataclass(frozen=True)
class DurableConfig:
    hub_name: str = "TestHubName"
    max_concurrent_activities: int = 8


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueuesConfig = QueuesConfig()
    durable: DurableConfig = DurableConfig()


def _section(data: dict[str, Any], *path: str) -> dict[str, Any]:
    current: Any = data
    for key in path:
        current = current.get(key, {}) if isinstance(current, dict) else {}
    return current if isinstance(current, dict) else {}


def _int(section: dict[str, Any], key: str, default: int, setting: str, minimum: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HostConfigError(f"host.json {setting}.{key}: expected an integer >= {minimum}")
    return value


def _queues(data: dict[str, Any]) -> QueuesConfig:
    section = _section(data, "extensions", "queues")
    where = "extensions.queues"
    encoding = str(section.get("messageEncoding", "base64")).strip().lower()
    if encoding not in {"base64", "none"}:
        raise HostConfigError(f"host.json {where}.messageEncoding: expected base64 or none")
    batch_size = min(_int(section, "batchSize", 16, where, 1), MAX_BATCH_SIZE)
    polling = DEFAULT_MAX_POLLING_INTERVAL
    if "maxPollingInterval" in section:
        polling = parse_timespan(section["maxPollingInterval"], f"{where}.maxPollingInterval")
    visibility = timedelta(0)
    if "visibilityTimeout" in section:
        visibility = parse_timespan(section["visibilityTimeout"], f"{where}.visibilityTimeout")
    return QueuesConfig(
        message_encoding=encoding,
        max_dequeue_count=_int(section, "maxDequeueCount", 5, where, 1),
        visibility_timeout=visibility,
        max_polling_interval=max(polling, timedelta(milliseconds=10)),
        batch_size=batch_size,
        new_batch_threshold=_int(section, "newBatchThreshold", batch_size // 2, where, 0),
    )


def _durable(data: dict[str, Any]) -> DurableConfig:
    section = _section(data, "extensions", "durableTask")
    hub = section.get("hubName") or "TestHubName"
    return DurableConfig(
        hub_name=str(hub),
        max_concurrent_activities=_int(
            section, "maxConcurrentActivityFunctions", 8, "extensions.durableTask", 1
        ),
    )


def load_host_config(app_dir: Path) -> HostConfig:
    """Read ``host.json`` next to the app; a missing file means all defaults."""
    path = app_dir / "host.json"
    if not path.exists():
        return HostConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HostConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise HostConfigError(f"{path}: expected a JSON object")
    http = _section(data, "extensions", "http")
    prefix = http.get("routePrefix", "api")
    return HostConfig(
        route_prefix=str(prefix).strip("/"),
        queues=_queues(data),
        durable=_durable(data),
    )
