"""The published JSON Schema files are exactly what the models generate (the drift test)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import PUBLISHED_SCHEMAS
from schemas.fields import JOB_ID_PATTERN
from schemas.generate import SCHEMA_DIR, render

REGENERATE = "run `python -m schemas.generate` and commit the files under schemas/json"


def load(file_name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMA_DIR / file_name).read_text(encoding="utf-8"))
    return document


def test_generator_writes_into_the_committed_directory() -> None:
    project = Path(__file__).resolve().parents[2]

    assert SCHEMA_DIR.resolve() == project / "schemas" / "json"
    assert SCHEMA_DIR.is_dir()


@pytest.mark.parametrize("file_name", sorted(PUBLISHED_SCHEMAS))
def test_committed_schema_file_matches_the_models(file_name: str) -> None:
    path = SCHEMA_DIR / file_name
    assert path.is_file(), f"schemas/json/{file_name} is missing; {REGENERATE}"
    committed = path.read_text(encoding="utf-8")

    assert committed == render(file_name), (
        f"schemas/json/{file_name} differs from what the models generate; {REGENERATE}"
    )


def test_no_stray_schema_files() -> None:
    present = {path.name for path in SCHEMA_DIR.iterdir()}

    stray = present - set(PUBLISHED_SCHEMAS)
    assert not stray, (
        f"schemas/json holds files no model generates: {sorted(stray)}; "
        f"delete them and {REGENERATE}"
    )


def test_every_contract_message_has_a_schema() -> None:
    # Contract: a JSON Schema for every message (pending x2, start x2, finished, dead letter).
    assert {
        "pending-custom.schema.json",
        "pending-default.schema.json",
        "start-custom.schema.json",
        "start-default.schema.json",
        "finished.schema.json",
        "dead-letter.schema.json",
    } <= set(PUBLISHED_SCHEMAS)


@pytest.mark.parametrize("file_name", sorted(PUBLISHED_SCHEMAS))
def test_schema_file_is_a_self_describing_2020_12_schema(file_name: str) -> None:
    document = load(file_name)

    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == file_name
    assert document["type"] == "object"
    assert (SCHEMA_DIR / file_name).read_text(encoding="utf-8").endswith("}\n")


@pytest.mark.parametrize("file_name", ["pending-custom.schema.json", "pending-default.schema.json"])
def test_pending_schemas_reject_unknown_fields(file_name: str) -> None:
    assert load(file_name)["additionalProperties"] is False


def test_finish_report_schema_allows_fields_added_later() -> None:
    assert load("finished.schema.json").get("additionalProperties", True) is not False


@pytest.mark.parametrize(
    "file_name",
    [
        "pending-custom.schema.json",
        "pending-default.schema.json",
        "start-custom.schema.json",
        "start-default.schema.json",
        "finished.schema.json",
    ],
)
def test_job_id_rule_is_published(file_name: str) -> None:
    job_id = load(file_name)["properties"]["jobId"]

    assert job_id["type"] == "string"
    assert job_id["pattern"] == JOB_ID_PATTERN
    assert (job_id["minLength"], job_id["maxLength"]) == (1, 100)
    pattern = re.compile(job_id["pattern"])
    assert pattern.search("Job_1.a-b")
    assert not pattern.search("-job")
    assert not pattern.search("a" * 101)


@pytest.mark.parametrize(
    ("file_name", "required"),
    [
        ("pending-custom.schema.json", {"jobId", "pipeline", "requestedBy", "requestedAt"}),
        ("pending-default.schema.json", {"jobId", "userId"}),
        (
            "start-custom.schema.json",
            {"jobId", "pipeline", "requestedBy", "requestedAt", "parameters", "startedAt"},
        ),
        ("start-default.schema.json", {"jobId", "userId", "userDataIds", "startedAt"}),
        ("finished.schema.json", {"jobId", "status"}),
        ("dead-letter.schema.json", {"reason", "errors", "original", "queue", "deadLetteredAt"}),
    ],
)
def test_required_fields(file_name: str, required: set[str]) -> None:
    assert set(load(file_name)["required"]) == required


def test_pending_field_limits_are_published() -> None:
    custom = load("pending-custom.schema.json")["properties"]
    default = load("pending-default.schema.json")["properties"]

    for field in ("pipeline", "requestedBy"):
        assert (custom[field]["minLength"], custom[field]["maxLength"]) == (1, 200)
    assert custom["parameters"]["type"] == "object"
    assert custom["requestedAt"]["format"] == "date-time"
    assert (default["userId"]["minLength"], default["userId"]["maxLength"]) == (1, 200)
    ids = default["userDataIds"]
    array = next(branch for branch in ids["anyOf"] if branch.get("type") == "array")
    assert array["items"] == {"exclusiveMinimum": 0, "maximum": 2**31 - 1, "type": "integer"}
    assert array["maxItems"] == 10_000
    assert ids["uniqueItems"] is True
    assert {"type": "null"} in ids["anyOf"]


def test_finish_report_limits_are_published() -> None:
    properties = load("finished.schema.json")["properties"]

    status_pattern = re.compile(properties["status"]["pattern"])
    for accepted in ("Succeeded", "succeeded", "FAILED", "Failed"):
        assert status_pattern.fullmatch(accepted)
    for refused in ("Success", "Running", "", "Succeeded "):
        assert not status_pattern.fullmatch(refused)
    error = next(b for b in properties["error"]["anyOf"] if b.get("type") == "string")
    assert error["maxLength"] == 4000


def test_start_messages_are_pending_messages_plus_started_at() -> None:
    for schema in ("custom", "default"):
        pending = load(f"pending-{schema}.schema.json")["properties"]
        start = load(f"start-{schema}.schema.json")["properties"]
        assert set(start) == set(pending) | {"startedAt"}
        assert start["startedAt"]["format"] == "date-time"
