"""Classification of pending queue messages (contract 3.1-3.3) and finish reports (3.5).

One table of messages; each is classified plain and base64-encoded, because senders differ.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.classify import Rejection, classify_pending
from schemas.finished import FinishReport
from schemas.pending import CustomJobRequest, DefaultJobRequest, wire_form

CUSTOM_MIN: dict[str, Any] = {
    "jobId": "job-1",
    "pipeline": "ingest",
    "requestedBy": "platform-api",
    "requestedAt": "2026-12-04T10:00:00Z",
}
CUSTOM_FULL: dict[str, Any] = {
    **CUSTOM_MIN,
    "jobId": "Job_2.a-b",
    "parameters": {"date": "2026-12-04", "depth": 3, "flags": [True, None], "nested": {"a": 1.5}},
}
DEFAULT_MIN: dict[str, Any] = {"jobId": "job-1", "userId": "user-42"}
DEFAULT_FULL: dict[str, Any] = {**DEFAULT_MIN, "userDataIds": [3, 1, 2]}


def plain(message: Any) -> bytes:
    return json.dumps(message).encode("utf-8")


def b64(message: Any) -> bytes:
    return base64.b64encode(plain(message))


ENCODINGS = [pytest.param(plain, id="plain"), pytest.param(b64, id="base64")]


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


def rejected(body: bytes | str) -> Rejection:
    result = classify_pending(body)
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    return result


def locs(rejection: Rejection) -> set[str]:
    return {error.loc for error in rejection.errors}


# --- valid messages ---------------------------------------------------------------------------

VALID = [
    pytest.param(CUSTOM_MIN, CustomJobRequest, id="custom-minimal"),
    pytest.param(CUSTOM_FULL, CustomJobRequest, id="custom-full"),
    pytest.param(DEFAULT_MIN, DefaultJobRequest, id="default-minimal"),
    pytest.param(DEFAULT_FULL, DefaultJobRequest, id="default-full"),
    pytest.param(changed(DEFAULT_MIN, userDataIds=None), DefaultJobRequest, id="default-null-ids"),
    pytest.param(changed(DEFAULT_MIN, userDataIds=[]), DefaultJobRequest, id="default-empty-ids"),
    pytest.param(
        changed(DEFAULT_MIN, userDataIds=list(range(1, 10_001))),
        DefaultJobRequest,
        id="default-10000-ids",
    ),
    pytest.param(changed(CUSTOM_MIN, jobId="a" * 100), CustomJobRequest, id="jobId-100-chars"),
    pytest.param(changed(DEFAULT_MIN, jobId="7"), DefaultJobRequest, id="jobId-1-digit"),
    pytest.param(changed(CUSTOM_MIN, pipeline="p" * 200), CustomJobRequest, id="pipeline-200"),
    pytest.param(changed(CUSTOM_MIN, requestedBy="r" * 200), CustomJobRequest, id="by-200"),
    pytest.param(changed(DEFAULT_MIN, userId="u" * 200), DefaultJobRequest, id="userId-200"),
    pytest.param(
        changed(CUSTOM_MIN, requestedAt="2026-12-04T10:00:00.123-05:30"),
        CustomJobRequest,
        id="requestedAt-fraction-negative-offset",
    ),
]


@pytest.mark.parametrize("encode", ENCODINGS)
@pytest.mark.parametrize(("message", "kind"), VALID)
def test_valid_message_is_classified_by_its_schema(
    message: dict[str, Any], kind: type, encode: Any
) -> None:
    result = classify_pending(encode(message))

    assert type(result) is kind
    assert not isinstance(result, Rejection)
    assert result.jobId == message["jobId"]
    dumped = wire_form(result)
    for key in message.keys() - {"requestedAt"}:
        assert dumped[key] == message[key]


def test_classify_accepts_str_as_well_as_bytes() -> None:
    assert isinstance(classify_pending(json.dumps(CUSTOM_MIN)), CustomJobRequest)
    assert isinstance(classify_pending(b64(DEFAULT_MIN).decode("ascii")), DefaultJobRequest)


def test_base64_with_surrounding_whitespace_is_accepted() -> None:
    assert isinstance(classify_pending(b"  " + b64(DEFAULT_MIN) + b"\n"), DefaultJobRequest)


# --- normalisation ----------------------------------------------------------------------------


def test_custom_request_is_normalised_to_utc_and_defaults() -> None:
    result = classify_pending(plain(changed(CUSTOM_MIN, requestedAt="2026-12-04T12:30:00+02:00")))

    assert isinstance(result, CustomJobRequest)
    assert result.model_dump(mode="json") == {
        "jobId": "job-1",
        "pipeline": "ingest",
        "requestedBy": "platform-api",
        "requestedAt": "2026-12-04T10:30:00Z",
        "parameters": {},
    }
    assert wire_form(result) == result.model_dump(mode="json")


def test_fractional_seconds_survive_normalisation() -> None:
    result = classify_pending(plain(changed(CUSTOM_MIN, requestedAt="2026-12-04T10:00:00.5-01:00")))

    assert isinstance(result, CustomJobRequest)
    assert result.model_dump(mode="json")["requestedAt"] == "2026-12-04T11:00:00.500000Z"


@pytest.mark.parametrize(
    "message",
    [pytest.param(DEFAULT_MIN, id="absent"), pytest.param(changed(DEFAULT_MIN, userDataIds=None))],
)
def test_absent_or_null_user_data_ids_mean_all_rows(message: dict[str, Any]) -> None:
    result = classify_pending(plain(message))

    assert isinstance(result, DefaultJobRequest)
    assert result.userDataIds is None
    assert result.model_dump(mode="json") == {
        "jobId": "job-1",
        "userId": "user-42",
        "userDataIds": None,
    }


def test_user_data_ids_keep_their_order() -> None:
    result = classify_pending(plain(DEFAULT_FULL))

    assert isinstance(result, DefaultJobRequest)
    assert result.userDataIds == [3, 1, 2]


# --- every rule broken once -------------------------------------------------------------------

INVALID = [
    # jobId, in both schemas
    pytest.param(changed(CUSTOM_MIN, jobId=""), "custom.jobId", id="custom-jobId-empty"),
    pytest.param(changed(DEFAULT_MIN, jobId=""), "default.jobId", id="default-jobId-empty"),
    pytest.param(changed(CUSTOM_MIN, jobId="a" * 101), "custom.jobId", id="custom-jobId-101"),
    pytest.param(changed(DEFAULT_MIN, jobId="a" * 101), "default.jobId", id="default-jobId-101"),
    pytest.param(changed(CUSTOM_MIN, jobId="-job"), "custom.jobId", id="jobId-leading-dash"),
    pytest.param(changed(DEFAULT_MIN, jobId=".job"), "default.jobId", id="jobId-leading-dot"),
    pytest.param(changed(DEFAULT_MIN, jobId="_job"), "default.jobId", id="jobId-lead-underscore"),
    pytest.param(changed(CUSTOM_MIN, jobId="job 1"), "custom.jobId", id="jobId-space"),
    pytest.param(changed(DEFAULT_MIN, jobId="job/1"), "default.jobId", id="jobId-slash"),
    pytest.param(changed(DEFAULT_MIN, jobId="jöb"), "default.jobId", id="jobId-non-ascii"),
    # Python's `$` also matches before a final newline: the jobId rule must still hold.
    pytest.param(changed(DEFAULT_MIN, jobId="job-1\n"), "default.jobId", id="jobId-trailing-nl"),
    pytest.param(changed(CUSTOM_MIN, jobId="job-1\n"), "custom.jobId", id="custom-jobId-nl"),
    pytest.param(changed(DEFAULT_MIN, jobId=42), "default.jobId", id="jobId-number"),
    pytest.param(without(CUSTOM_MIN, "jobId"), "custom.jobId", id="custom-jobId-missing"),
    pytest.param(without(DEFAULT_MIN, "jobId"), "default.jobId", id="default-jobId-missing"),
    # pipeline / requestedBy
    pytest.param(changed(CUSTOM_MIN, pipeline=""), "custom.pipeline", id="pipeline-empty"),
    pytest.param(changed(CUSTOM_MIN, pipeline="p" * 201), "custom.pipeline", id="pipeline-201"),
    pytest.param(without(CUSTOM_MIN, "pipeline"), "custom.pipeline", id="pipeline-missing"),
    pytest.param(changed(CUSTOM_MIN, requestedBy=""), "custom.requestedBy", id="by-empty"),
    pytest.param(changed(CUSTOM_MIN, requestedBy="r" * 201), "custom.requestedBy", id="by-201"),
    pytest.param(without(CUSTOM_MIN, "requestedBy"), "custom.requestedBy", id="by-missing"),
    # requestedAt
    pytest.param(
        changed(CUSTOM_MIN, requestedAt="2026-12-04T10:00:00"),
        "custom.requestedAt",
        id="requestedAt-no-offset",
    ),
    pytest.param(
        changed(CUSTOM_MIN, requestedAt="2026-12-04"), "custom.requestedAt", id="requestedAt-date"
    ),
    pytest.param(
        changed(CUSTOM_MIN, requestedAt="yesterday"), "custom.requestedAt", id="requestedAt-text"
    ),
    pytest.param(
        changed(CUSTOM_MIN, requestedAt=1_796_378_400),
        "custom.requestedAt",
        id="requestedAt-number",
    ),
    pytest.param(
        changed(CUSTOM_MIN, requestedAt="2026-02-30T10:00:00Z"),
        "custom.requestedAt",
        id="requestedAt-no-such-day",
    ),
    pytest.param(without(CUSTOM_MIN, "requestedAt"), "custom.requestedAt", id="requestedAt-gone"),
    # parameters
    pytest.param(changed(CUSTOM_MIN, parameters=[1, 2]), "custom.parameters", id="params-array"),
    pytest.param(changed(CUSTOM_MIN, parameters="a=1"), "custom.parameters", id="params-string"),
    pytest.param(changed(CUSTOM_MIN, parameters=None), "custom.parameters", id="params-null"),
    # userId
    pytest.param(changed(DEFAULT_MIN, userId=""), "default.userId", id="userId-empty"),
    pytest.param(changed(DEFAULT_MIN, userId="u" * 201), "default.userId", id="userId-201"),
    pytest.param(changed(DEFAULT_MIN, userId=42), "default.userId", id="userId-number"),
    pytest.param(without(DEFAULT_MIN, "userId"), "default.userId", id="userId-missing"),
    # userDataIds
    pytest.param(changed(DEFAULT_MIN, userDataIds=[0]), "default.userDataIds[0]", id="ids-zero"),
    pytest.param(
        changed(DEFAULT_MIN, userDataIds=[1, -2]), "default.userDataIds[1]", id="ids-negative"
    ),
    pytest.param(
        changed(DEFAULT_MIN, userDataIds=[1, 2, 1]), "default.userDataIds", id="ids-duplicate"
    ),
    pytest.param(changed(DEFAULT_MIN, userDataIds=["5"]), "default.userDataIds[0]", id="ids-str"),
    pytest.param(changed(DEFAULT_MIN, userDataIds=[5.0]), "default.userDataIds[0]", id="ids-float"),
    pytest.param(changed(DEFAULT_MIN, userDataIds=[True]), "default.userDataIds[0]", id="ids-bool"),
    pytest.param(changed(DEFAULT_MIN, userDataIds=[None]), "default.userDataIds[0]", id="ids-null"),
    pytest.param(changed(DEFAULT_MIN, userDataIds=5), "default.userDataIds", id="ids-not-a-list"),
    pytest.param(
        changed(DEFAULT_MIN, userDataIds=list(range(1, 10_002))),
        "default.userDataIds",
        id="ids-10001",
    ),
    # unknown fields, in both schemas
    pytest.param(changed(CUSTOM_MIN, priority=1), "custom.priority", id="custom-unknown-field"),
    pytest.param(changed(DEFAULT_MIN, priority=1), "default.priority", id="default-unknown-field"),
    pytest.param(changed(DEFAULT_MIN, jobid="x"), "default.jobid", id="field-names-are-exact"),
]


@pytest.mark.parametrize("encode", ENCODINGS)
@pytest.mark.parametrize(("message", "expected_loc"), INVALID)
def test_each_broken_rule_rejects_with_its_field(
    message: dict[str, Any], expected_loc: str, encode: Any
) -> None:
    rejection = rejected(encode(message))

    assert expected_loc in locs(rejection)
    field = expected_loc.split(".", 1)[1]
    assert field in rejection.reason
    assert rejection.reason.startswith("The message matches neither job schema.")


SECRET = "s3cr3t value that must not be echoed"


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(changed(DEFAULT_MIN, password=SECRET), id="unknown-field"),
        pytest.param(changed(DEFAULT_MIN, jobId=SECRET), id="bad-jobId"),
        pytest.param(changed(CUSTOM_MIN, requestedAt=SECRET), id="bad-timestamp"),
        pytest.param(changed(DEFAULT_MIN, userDataIds=[SECRET]), id="bad-id"),
        pytest.param(changed(DEFAULT_MIN, userId=SECRET * 10), id="too-long"),
    ],
)
def test_rejections_never_echo_the_input_values(message: dict[str, Any]) -> None:
    # The dead letter carries the original body; reason and errors must not repeat values
    # (they end up in logs).
    rejection = rejected(plain(message))

    assert SECRET not in rejection.reason
    assert all(SECRET not in error.msg for error in rejection.errors)


def test_mixed_fields_are_rejected_with_the_errors_of_both_schemas() -> None:
    rejection = rejected(plain({**CUSTOM_MIN, "userId": "user-42"}))

    assert {"custom.userId", "default.pipeline", "default.requestedBy", "default.requestedAt"} <= (
        locs(rejection)
    )
    assert {loc.split(".")[0] for loc in locs(rejection)} == {"custom", "default"}
    assert "As a custom job: userId" in rejection.reason
    assert "As a default job:" in rejection.reason
    default_part = rejection.reason.split("As a default job:", 1)[1]
    assert "pipeline" in default_part
    assert "requestedAt" in default_part


def test_an_empty_object_lists_every_required_field_of_both_schemas() -> None:
    rejection = rejected(b"{}")

    assert locs(rejection) == {
        "custom.jobId",
        "custom.pipeline",
        "custom.requestedBy",
        "custom.requestedAt",
        "default.jobId",
        "default.userId",
    }


# --- bodies that are not a JSON object ---------------------------------------------------------

NOT_AN_OBJECT = [
    pytest.param(b"not json at all", "not JSON", id="text"),
    pytest.param(b"", "not JSON", id="empty"),
    pytest.param(b"   ", "not JSON", id="blank"),
    pytest.param(b'{"jobId": "job-1", "userId": "u"', "not JSON", id="truncated-json"),
    pytest.param(b"\xff\xfe{}", "not UTF-8", id="invalid-utf8"),
    pytest.param(b'{"jobId": "j\xe9"}', "not UTF-8", id="latin1-json"),
    pytest.param(b"[1, 2]", "not a JSON array", id="array"),
    pytest.param(b'"job-1"', "not a JSON string", id="string"),
    pytest.param(b"42", "not a JSON number", id="number"),
    pytest.param(b"4.5", "not a JSON number", id="float"),
    pytest.param(b"null", "not a JSON null", id="null"),
    pytest.param(b"true", "not a JSON boolean", id="boolean"),
    pytest.param(base64.b64encode(b"[1, 2]"), "not a JSON array", id="base64-array"),
    pytest.param(base64.b64encode(b"null"), "not a JSON null", id="base64-null"),
    pytest.param(base64.b64encode(b"hello world"), "base64-encoded but", id="base64-text"),
    pytest.param(base64.b64encode(b'{"jobId": '), "base64-encoded but", id="base64-truncated"),
    pytest.param(base64.b64encode(b"\xff\xfe\xfd"), "not JSON", id="base64-of-binary"),
]


@pytest.mark.parametrize(("body", "reason_part"), NOT_AN_OBJECT)
def test_body_that_is_not_a_json_object_is_rejected(body: bytes, reason_part: str) -> None:
    rejection = rejected(body)

    assert reason_part in rejection.reason
    assert rejection.errors == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("héllo wörld".encode(), id="non-ascii-text"),
        pytest.param('{"jobId": "é"'.encode(), id="non-ascii-truncated-json"),
        pytest.param(b"\xef\xbb\xbf" + plain(DEFAULT_MIN), id="utf8-bom"),
        pytest.param("ünïcode", id="non-ascii-str"),
    ],
)
def test_non_ascii_text_never_raises(body: bytes | str) -> None:
    # Whatever the verdict, classification answers: an exception would leave the message
    # to the host's poison handling instead of a dead letter with a reason (contract 3.3).
    result = classify_pending(body)

    assert isinstance(result, Rejection | DefaultJobRequest)
    if isinstance(result, Rejection):
        assert "JSON" in result.reason


# --- finish reports ---------------------------------------------------------------------------

REPORT = {"jobId": "job-1", "status": "Succeeded"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Succeeded", "Succeeded"),
        ("succeeded", "Succeeded"),
        ("SUCCEEDED", "Succeeded"),
        ("Failed", "Failed"),
        ("FAILED", "Failed"),
        ("failed", "Failed"),
    ],
)
def test_finish_report_status_is_case_insensitive(status: str, expected: str) -> None:
    report = FinishReport.model_validate({**REPORT, "status": status})

    assert report.status == expected


def test_finish_report_ignores_unknown_fields_and_normalises() -> None:
    report = FinishReport.model_validate(
        {
            **REPORT,
            "status": "failed",
            "error": "out of memory",
            "finishedAt": "2026-12-04T11:00:00+01:00",
            "rowsWritten": 10,
            "pipelineVersion": {"major": 2},
        }
    )

    assert report.model_dump(mode="json") == {
        "jobId": "job-1",
        "status": "Failed",
        "finishedAt": "2026-12-04T10:00:00Z",
        "error": "out of memory",
    }


def test_finish_report_minimal_has_no_error_or_time() -> None:
    report = FinishReport.model_validate(REPORT)

    assert report.error is None
    assert report.finishedAt is None


def test_finish_report_error_of_4000_chars_is_accepted() -> None:
    assert FinishReport.model_validate({**REPORT, "error": "e" * 4000}).error == "e" * 4000


@pytest.mark.parametrize(
    ("report", "field"),
    [
        pytest.param({**REPORT, "error": "e" * 4001}, "error", id="error-4001"),
        pytest.param({**REPORT, "status": "Done"}, "status", id="status-unknown"),
        pytest.param({**REPORT, "status": "Succeeded "}, "status", id="status-padded"),
        pytest.param({**REPORT, "status": "TimedOut"}, "status", id="status-timedout"),
        pytest.param({**REPORT, "status": 1}, "status", id="status-number"),
        pytest.param({"jobId": "job-1"}, "status", id="status-missing"),
        pytest.param({"status": "Failed"}, "jobId", id="jobId-missing"),
        pytest.param({**REPORT, "jobId": "-job"}, "jobId", id="jobId-bad"),
        pytest.param({**REPORT, "finishedAt": "2026-12-04T10:00:00"}, "finishedAt", id="no-offset"),
        pytest.param({**REPORT, "finishedAt": 1_796_378_400}, "finishedAt", id="time-number"),
    ],
)
def test_invalid_finish_report_is_rejected(report: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FinishReport.model_validate(report)

    assert {error["loc"][0] for error in caught.value.errors()} == {field}
