"""The orchestrators exactly as ``function_app`` registers them."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest


@cache
def registered_functions() -> dict[str, Any]:
    import function_app

    app = function_app.app
    # get_functions() remembers the names it listed and refuses them on a second call (the
    # worker indexes an app once); list them afresh and leave the app as it was.
    remembered = app.functions_bindings
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = remembered
    return {function.get_function_name(): function for function in functions}


def registered_orchestrator(name: str) -> Any:
    functions = registered_functions()
    assert name in functions, f"{name} is not registered; registered: {sorted(functions)}"
    function = functions[name]
    trigger = function.get_trigger()
    assert trigger is not None
    assert trigger.type == "orchestrationTrigger"
    return function.get_user_function()


@pytest.fixture(scope="session")
def pipeline_job() -> Any:
    return registered_orchestrator("PipelineJobOrchestrator")


@pytest.fixture(scope="session")
def default_finished() -> Any:
    return registered_orchestrator("PipelineJobDefaultFinished")
