"""``local.settings.json``: its ``Values`` become app settings, as Core Tools does."""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from pathlib import Path


class SettingsFileError(ValueError):
    """The settings file exists but cannot be used."""


def apply_local_settings(path: Path, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy ``Values`` into the environment, never overriding what is already set.

    Returns the names that were applied (never the values: they may be secrets).
    A missing file is fine: settings then come from the environment alone.
    """
    target = os.environ if environ is None else environ
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsFileError(f"{path}: not valid JSON ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise SettingsFileError(f"{path}: expected a JSON object with a Values object")
    if data.get("IsEncrypted") is True:
        raise SettingsFileError(f"{path}: encrypted settings are not supported; decrypt them")
    values = data.get("Values", {})
    if not isinstance(values, dict):
        raise SettingsFileError(f"{path}: Values must be an object of strings")
    applied: list[str] = []
    for name, value in values.items():
        if name in target:
            continue
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise SettingsFileError(f"{path}: Values.{name} must be a string")
        target[name] = str(value).lower() if isinstance(value, bool) else str(value)
        applied.append(name)
    return applied
