"""Import the function app and index its functions, the way the Python worker does.

Everything the host runs is discovered from ``app.get_functions()``: the trigger binding of each
function says whether it is a queue trigger, a timer, an HTTP route, an orchestrator or an
activity.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from azure.functions.decorators.function_app import FunctionRegister

QUEUE_TRIGGER = "queueTrigger"
HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
DURABLE_CLIENT = "durableClient"


_APP_SETTING_EXPRESSION = re.compile(r"%([^%]+)%")


class AppLoadError(RuntimeError):
    """The app could not be imported or indexed; the message says why."""


def resolve_setting_expressions(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace ``%Name%`` with the app setting ``Name``, as the host does in binding values."""
    env = os.environ if environ is None else environ

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise AppLoadError(
                f"the binding expression '%{name}%' names an app setting that is not set"
            )
        return env[name]

    return _APP_SETTING_EXPRESSION.sub(lookup, value)


@dataclass(frozen=True)
class AppFunction:
    """One indexed function: its name, bindings (as in function.json) and the callable."""

    name: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    func: Callable[..., Any] = field(repr=False)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type", ""))

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    def bindings_of_type(self, binding_type: str) -> list[dict[str, Any]]:
        return [b for b in self.bindings if b.get("type") == binding_type]


@dataclass(frozen=True)
class LoadedApp:
    module: ModuleType = field(repr=False)
    app_dir: Path
    functions: tuple[AppFunction, ...]

    def with_trigger(self, trigger_type: str) -> dict[str, AppFunction]:
        return {f.name: f for f in self.functions if f.trigger_type == trigger_type}

    @property
    def queue_functions(self) -> dict[str, AppFunction]:
        return self.with_trigger(QUEUE_TRIGGER)

    @property
    def timer_functions(self) -> dict[str, AppFunction]:
        return self.with_trigger(TIMER_TRIGGER)

    @property
    def http_functions(self) -> dict[str, AppFunction]:
        return self.with_trigger(HTTP_TRIGGER)

    @property
    def orchestrators(self) -> dict[str, AppFunction]:
        return self.with_trigger(ORCHESTRATION_TRIGGER)

    @property
    def activities(self) -> dict[str, AppFunction]:
        return self.with_trigger(ACTIVITY_TRIGGER)


def resolve_app_location(app: str) -> tuple[str, Path | None, Path]:
    """Split ``--app`` into (module name, file to load or None, app directory).

    ``--app`` is a module name importable from the current directory (``function_app``) or a
    path to the app's ``.py`` file or to the folder holding ``function_app.py``.
    """
    candidate = Path(app)
    if candidate.is_dir():
        candidate = candidate / "function_app.py"
    if candidate.suffix == ".py" or candidate.exists():
        if not candidate.is_file():
            raise AppLoadError(f"app file not found: {candidate}")
        resolved = candidate.resolve()
        return resolved.stem, resolved, resolved.parent
    return app, None, Path.cwd()


def _import(module_name: str, file: Path | None, app_dir: Path) -> ModuleType:
    # The app imports its own packages (settings, services, ...) relative to its folder.
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    if file is None:
        return importlib.import_module(module_name)
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__file__", None) == str(file):
        return existing
    # Under its own name only when it is the app of the current directory: an app loaded from
    # elsewhere (a test's sample app) must not shadow the project's own ``function_app``.
    own_name = existing is None and file.parent == Path.cwd().resolve()
    name = module_name if own_name else f"_devhost_app_{module_name}_{abs(hash(str(file)))}"
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _find_function_register(module: ModuleType) -> FunctionRegister:
    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if not apps:
        raise AppLoadError(
            f"{module.__name__} defines no FunctionApp/DFApp instance at module level"
        )
    if len(apps) > 1:
        raise AppLoadError(f"{module.__name__} defines more than one FunctionApp instance")
    return apps[0]


def index_functions(app: FunctionRegister) -> tuple[AppFunction, ...]:
    indexed: list[AppFunction] = []
    # get_functions() remembers the names it saw and refuses them on a second call; the worker
    # indexes once per process, a host started again in the same process indexes again.
    app.functions_bindings = None
    for function in app.get_functions():
        name = function.get_function_name()
        # function.json form: enums become plain strings, keys are the binding's JSON names.
        bindings = tuple(json.loads(function.get_function_json())["bindings"])
        trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), None)
        if name is None or trigger is None:
            raise AppLoadError(f"function {name!r} has no trigger")
        indexed.append(
            AppFunction(
                name=name,
                trigger=trigger,
                bindings=bindings,
                func=function.get_user_function(),
            )
        )
    return tuple(indexed)


def load_app(app: str) -> LoadedApp:
    """Import the app module and index its functions.

    Any exception the app raises while importing (such as its settings validation) becomes an
    ``AppLoadError`` carrying the app's own message.
    """
    module_name, file, app_dir = resolve_app_location(app)
    try:
        module = _import(module_name, file, app_dir)
    except AppLoadError:
        raise
    except (Exception, SystemExit) as exc:
        message = str(exc).strip() or type(exc).__name__
        raise AppLoadError(message) from exc
    try:
        functions = index_functions(_find_function_register(module))
    except AppLoadError:
        raise
    except Exception as exc:
        raise AppLoadError(f"cannot index the app's functions: {exc}") from exc
    return LoadedApp(module=module, app_dir=app_dir, functions=functions)
