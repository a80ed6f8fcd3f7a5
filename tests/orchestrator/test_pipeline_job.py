"""``PipelineJobOrchestrator`` as registered in ``function_app``, replayed through the real SDK."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devhost.replay import ActionType, HistoryEventType
from schemas.orchestration import (
    DefaultFinishedInput,
    PipelineJobOutput,
    PostProcessingOutcome,
    RecordJobStatus,
    StartPipelineJob,
)
from tests.orchestrator import jobs
from tests.orchestrator.scenario import Episode, Scenario, Work

# The SDK warns when an event arrives before the orchestrator waits for it; that buffering is
# what some tests here exercise.
pytestmark = pytest.mark.filterwarnings("ignore:Potential duplicate Task completion:UserWarning")

ORCHESTRATOR = "PipelineJobOrchestrator"
SUB_ORCHESTRATOR = "PipelineJobDefaultFinished"
EVENT = "PipelineJobFinished"
CUSTOM_ID = "custom-job-1"
DEFAULT_ID = "default-job-1"

POST_PROCESSING_OK = {
    "searchIndexers": {
        "ok": True,
        "skipped": False,
        "indexers": {
            "docs-indexer": {"ok": True, "attempts": 1},
            "users-indexer": {"ok": True, "attempts": 2},
        },
    },
    "cache": {"ok": True, "skipped": False, "deletedKeys": 3},
    "userData": {"ok": True, "skipped": False, "deactivated": 2},
}


def custom_job(pipeline_job: Any, **post: Any) -> Scenario:
    return Scenario(
        pipeline_job, name=ORCHESTRATOR, instance_id=CUSTOM_ID, input=jobs.custom_input(**post)
    )


def default_job(pipeline_job: Any, **post: Any) -> Scenario:
    return Scenario(
        pipeline_job, name=ORCHESTRATOR, instance_id=DEFAULT_ID, input=jobs.default_input(**post)
    )


def job_of(run: Scenario) -> dict[str, Any]:
    job: dict[str, Any] = json.loads(run.history.events[1]["Input"])["job"]
    return job


def start_pipeline(run: Scenario) -> Episode:
    """Episodes until the orchestrator waits for the finish report; returns that episode."""
    first = run.replay()
    run.complete(first.activity("SendStartMessage"), jobs.start_message(job_of(run)))
    episode = run.replay()
    if episode.activities("RecordJobStatus"):
        run.complete(episode.activity("RecordJobStatus"), "Running")
        episode = run.replay()
    return episode


def waiting_timer(episode: Episode) -> Work:
    assert [w.kind for w in episode.new] == ["event", "timer"], episode.new
    assert episode.new[0].name == EVENT
    return episode.timer()


def scheduled_names(run: Scenario) -> list[str]:
    return [
        e["Name"]
        for e in run.history.events
        if e["EventType"]
        in (HistoryEventType.TASK_SCHEDULED, HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED)
    ]


def statuses(run: Scenario) -> list[Any]:
    return [episode.custom_status for episode in run.episodes]


# --- custom jobs ------------------------------------------------------------------------------


def test_custom_job_succeeded_episode_by_episode(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    job = job_of(run)

    first = run.replay()
    send = first.activity("SendStartMessage")
    assert len(first.new) == 1
    assert send.input == {"job": job}
    StartPipelineJob.model_validate(send.input)
    assert job["request"]["requestedAt"] == "2024-01-01T00:00:00Z"
    assert first.custom_status == "StartingPipeline"
    assert not first.is_done

    run.complete(send, jobs.start_message(job))
    second = run.replay()
    running = second.activity("RecordJobStatus")
    assert len(second.new) == 1
    assert running.input == {"jobId": CUSTOM_ID, "status": "Running", "error": None}
    RecordJobStatus.model_validate(running.input)
    assert second.custom_status == "StartingPipeline"

    run.complete(running, "Running")
    third = run.replay()
    timer = waiting_timer(third)
    assert timer.fire_at == run.now + timedelta(seconds=jobs.TIMEOUT_SECONDS)
    assert third.custom_status == "WaitingForPipeline"

    run.raise_event(EVENT, jobs.report("Succeeded", finishedAt="2024-01-01T00:30:00Z"))
    fourth = run.replay()
    final = fourth.activity("RecordJobStatus")
    assert len(fourth.new) == 1
    assert final.input == {"jobId": CUSTOM_ID, "status": "Succeeded", "error": None}
    RecordJobStatus.model_validate(final.input)
    assert timer.canceled
    assert fourth.custom_status == "RecordingStatus"

    run.complete(final, "Succeeded")
    done = run.replay()
    assert done.is_done
    assert done.new == []
    assert done.custom_status == "Done"
    assert done.output == {
        "jobId": CUSTOM_ID,
        "schema": "custom",
        "pipelineStatus": "Succeeded",
        "finishedAt": "2024-01-01T00:30:00Z",
    }
    PipelineJobOutput.model_validate(done.output)
    assert scheduled_names(run) == ["SendStartMessage", "RecordJobStatus", "RecordJobStatus"]


def test_custom_job_failed_records_the_error(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    start_pipeline(run)

    run.raise_event(EVENT, jobs.report("Failed", error="step 3: out of memory"))
    recording = run.replay()
    final = recording.activity("RecordJobStatus")
    assert final.input == {"jobId": CUSTOM_ID, "status": "Failed", "error": "step 3: out of memory"}

    run.complete(final, "Failed")
    done = run.replay()
    assert done.output == {
        "jobId": CUSTOM_ID,
        "schema": "custom",
        "pipelineStatus": "Failed",
        "error": "step 3: out of memory",
    }
    assert done.custom_status == "Done"
    assert SUB_ORCHESTRATOR not in scheduled_names(run)


def test_custom_job_times_out_when_the_timer_fires_first(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    timer = waiting_timer(start_pipeline(run))

    run.fire(timer)
    timed_out = run.replay()
    final = timed_out.activity("RecordJobStatus")
    assert final.input == {
        "jobId": CUSTOM_ID,
        "status": "TimedOut",
        "error": f"No finish report arrived within {jobs.TIMEOUT_SECONDS} seconds.",
    }
    assert timed_out.custom_status == "TimedOut"

    run.complete(final, "TimedOut")
    done = run.replay()
    assert done.is_done
    assert done.custom_status == "TimedOut"
    assert done.output["pipelineStatus"] == "TimedOut"
    assert done.output["jobId"] == CUSTOM_ID
    assert done.output["schema"] == "custom"
    assert "finishedAt" not in done.output


def test_a_report_after_the_timeout_changes_nothing(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    timer = waiting_timer(start_pipeline(run))
    run.fire(timer)
    final = run.replay().activity("RecordJobStatus")

    run.raise_event(EVENT, jobs.report("Succeeded"))
    late = run.replay()
    assert late.new == []
    run.complete(final, "TimedOut")
    done = run.replay()

    assert done.output["pipelineStatus"] == "TimedOut"
    assert done.custom_status == "TimedOut"


def test_only_the_first_report_counts(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    start_pipeline(run)

    run.raise_event(EVENT, jobs.report("Succeeded")).raise_event(
        EVENT, jobs.report("Failed", error="second")
    )
    recording = run.replay()

    assert recording.activity("RecordJobStatus").input["status"] == "Succeeded"


# --- default jobs -----------------------------------------------------------------------------


def test_default_job_succeeded_runs_post_processing_as_a_sub_orchestration(
    pipeline_job: Any,
) -> None:
    run = default_job(pipeline_job)
    job = job_of(run)

    first = run.replay()
    assert first.activity("SendStartMessage").input == {"job": job}
    run.complete(first.activity("SendStartMessage"), jobs.start_message(job))
    waiting = run.replay()
    waiting_timer(waiting)  # no PipelineJob row for a default job: straight to waiting
    assert waiting.custom_status == "WaitingForPipeline"

    run.raise_event(EVENT, jobs.report("Succeeded", jobId=DEFAULT_ID))
    post = run.replay()
    sub = post.sub_orchestration(SUB_ORCHESTRATOR)
    assert len(post.new) == 1
    assert sub.action_type == ActionType.CALL_SUB_ORCHESTRATOR
    assert sub.instance_id == f"{DEFAULT_ID}:{SUB_ORCHESTRATOR}"
    assert sub.input == {
        "jobId": DEFAULT_ID,
        "userId": "user-42",
        "userDataIds": [7, 8],
        "config": jobs.post_processing().model_dump(mode="json"),
    }
    DefaultFinishedInput.model_validate(sub.input)
    assert post.custom_status == "PostProcessing"

    run.complete(sub, POST_PROCESSING_OK)
    done = run.replay()
    assert done.is_done
    assert done.custom_status == "Done"
    assert done.output == {
        "jobId": DEFAULT_ID,
        "schema": "default",
        "pipelineStatus": "Succeeded",
        "postProcessing": POST_PROCESSING_OK,
    }
    assert scheduled_names(run) == ["SendStartMessage", SUB_ORCHESTRATOR]


def test_default_job_without_user_data_ids_passes_none(pipeline_job: Any) -> None:
    request = jobs.DEFAULT_REQUEST.model_copy(update={"userDataIds": None})
    run = Scenario(
        pipeline_job,
        name=ORCHESTRATOR,
        instance_id=DEFAULT_ID,
        input=jobs.default_input(request),
    )
    start_pipeline(run)

    run.raise_event(EVENT, jobs.report("Succeeded", jobId=DEFAULT_ID))
    sub = run.replay().sub_orchestration(SUB_ORCHESTRATOR)

    assert sub.input["userDataIds"] is None


def test_default_job_post_processing_config_comes_from_the_input(pipeline_job: Any) -> None:
    run = default_job(pipeline_job, search=False, cache=False)
    start_pipeline(run)

    run.raise_event(EVENT, jobs.report("Succeeded", jobId=DEFAULT_ID))
    sub = run.replay().sub_orchestration(SUB_ORCHESTRATOR)

    assert sub.input["config"]["searchEnabled"] is False
    assert sub.input["config"]["cacheEnabled"] is False


@pytest.mark.parametrize("error", [None, "input file missing"])
def test_default_job_failed_runs_no_post_processing(pipeline_job: Any, error: str | None) -> None:
    run = default_job(pipeline_job)
    timer = waiting_timer(start_pipeline(run))
    report = jobs.report("Failed", jobId=DEFAULT_ID)
    if error is not None:
        report["error"] = error

    run.raise_event(EVENT, report)
    done = run.replay()

    assert done.is_done
    assert done.new == []
    assert timer.canceled
    expected = {"jobId": DEFAULT_ID, "schema": "default", "pipelineStatus": "Failed"}
    if error is not None:
        expected["error"] = error
    assert done.output == expected
    assert done.custom_status == "Done"
    assert scheduled_names(run) == ["SendStartMessage"]


def test_default_job_timed_out_runs_no_post_processing(pipeline_job: Any) -> None:
    run = default_job(pipeline_job)
    timer = waiting_timer(start_pipeline(run))

    run.fire(timer)
    done = run.replay()

    assert done.is_done
    assert done.new == []
    assert done.custom_status == "TimedOut"
    assert done.output["pipelineStatus"] == "TimedOut"
    assert "postProcessing" not in done.output
    assert scheduled_names(run) == ["SendStartMessage"]


def test_default_job_with_the_real_sub_orchestration(
    pipeline_job: Any, default_finished: Any
) -> None:
    run = default_job(pipeline_job, indexers=["docs-indexer"])
    start_pipeline(run)
    run.raise_event(EVENT, jobs.report("Succeeded", jobId=DEFAULT_ID))
    sub = run.replay().sub_orchestration(SUB_ORCHESTRATOR)

    child = Scenario(
        default_finished,
        name=SUB_ORCHESTRATOR,
        instance_id=sub.instance_id or "",
        input=sub.input,
        parent_instance_id=DEFAULT_ID,
    )
    branches = child.replay()
    child.complete(branches.activity("DeactivateUserData"), {"ok": True, "deactivated": 2})
    child.complete(branches.activity("ClearUserCache"), {"ok": True, "deletedKeys": 5})
    child.complete(
        branches.activity("RunSearchIndexer"), jobs.indexer_answer("docs-indexer", "started", 202)
    )
    child_done = child.replay()
    assert child_done.is_done

    run.complete(sub, child_done.output)
    done = run.replay()

    outcome = PostProcessingOutcome.model_validate(done.output["postProcessing"])
    assert outcome.userData.deactivated == 2
    assert outcome.cache.deletedKeys == 5
    assert outcome.searchIndexers.indexers["docs-indexer"].ok


# --- a report that comes early ----------------------------------------------------------------


def test_custom_report_raised_while_starting_is_taken(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    first = run.replay()
    run.complete(first.activity("SendStartMessage"), jobs.start_message(job_of(run)))
    run.raise_event(EVENT, jobs.report("Failed", error="fast failure"))
    second = run.replay()
    running = second.activity("RecordJobStatus")
    assert running.input["status"] == "Running"

    run.complete(running, "Running")
    third = run.replay()
    final = third.activity("RecordJobStatus")
    assert final.input == {"jobId": CUSTOM_ID, "status": "Failed", "error": "fast failure"}
    assert third.timer().canceled
    run.complete(final, "Failed")
    done = run.replay()

    assert done.output["pipelineStatus"] == "Failed"
    assert done.output["error"] == "fast failure"


def test_report_raised_before_the_first_episode_ran_is_taken(pipeline_job: Any) -> None:
    run = default_job(pipeline_job)
    run.raise_event(EVENT, jobs.report("Succeeded", jobId=DEFAULT_ID))
    first = run.replay()
    assert first.custom_status == "StartingPipeline"

    run.complete(first.activity("SendStartMessage"), jobs.start_message(job_of(run)))
    second = run.replay()

    sub = second.sub_orchestration(SUB_ORCHESTRATOR)
    assert sub.instance_id == f"{DEFAULT_ID}:{SUB_ORCHESTRATOR}"
    assert second.timer().canceled
    assert second.custom_status == "PostProcessing"


def test_report_raised_in_the_same_episode_as_the_start_completes(pipeline_job: Any) -> None:
    run = default_job(pipeline_job)
    first = run.replay()
    run.raise_event(EVENT, jobs.report("Failed", jobId=DEFAULT_ID))
    run.complete(first.activity("SendStartMessage"), jobs.start_message(job_of(run)))

    done = run.replay()

    assert done.is_done
    assert done.output["pipelineStatus"] == "Failed"


# --- custom status per phase ------------------------------------------------------------------


def test_custom_status_per_phase_custom_job(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    start_pipeline(run)
    run.raise_event(EVENT, jobs.report("Succeeded"))
    run.complete(run.replay().activity("RecordJobStatus"), "Succeeded")
    run.replay()

    assert statuses(run) == [
        "StartingPipeline",
        "StartingPipeline",
        "WaitingForPipeline",
        "RecordingStatus",
        "Done",
    ]


def test_custom_status_per_phase_default_job(pipeline_job: Any) -> None:
    run = default_job(pipeline_job)
    start_pipeline(run)
    run.raise_event(EVENT, jobs.report("Succeeded", jobId=DEFAULT_ID))
    run.complete(run.replay().sub_orchestration(SUB_ORCHESTRATOR), POST_PROCESSING_OK)
    run.replay()

    assert statuses(run) == ["StartingPipeline", "WaitingForPipeline", "PostProcessing", "Done"]


def test_custom_status_per_phase_timed_out_custom_job(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    timer = waiting_timer(start_pipeline(run))
    run.fire(timer)
    run.complete(run.replay().activity("RecordJobStatus"), "TimedOut")
    run.replay()

    assert statuses(run)[-3:] == ["WaitingForPipeline", "TimedOut", "TimedOut"]


# --- retries ----------------------------------------------------------------------------------


def test_every_activity_is_called_with_the_configured_retry(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    start_pipeline(run)
    run.raise_event(EVENT, jobs.report("Succeeded"))
    run.complete(run.replay().activity("RecordJobStatus"), "Succeeded")
    run.replay()

    activities = [a for a in run.actions() if "functionName" in a]
    assert [a["functionName"] for a in activities] == [
        "SendStartMessage",
        "RecordJobStatus",
        "RecordJobStatus",
    ]
    for action in activities:
        assert action["actionType"] == ActionType.CALL_ACTIVITY_WITH_RETRY
        assert action["retryOptions"] == {
            "firstRetryIntervalInMilliseconds": 5000,
            "maxNumberOfAttempts": 3,
        }


def test_retry_options_follow_the_input(pipeline_job: Any) -> None:
    job_input = jobs.custom_input()
    job_input["config"]["activityRetry"] = {"firstIntervalSeconds": 2.5, "maxAttempts": 7}
    run = Scenario(pipeline_job, name=ORCHESTRATOR, instance_id=CUSTOM_ID, input=job_input)

    send = run.replay().activity("SendStartMessage")

    assert send.action["retryOptions"] == {
        "firstRetryIntervalInMilliseconds": 2500,
        "maxNumberOfAttempts": 7,
    }


def test_start_message_retried_then_sent(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    send = run.replay().activity("SendStartMessage")
    run.fail(send, "queue unavailable")
    assert run.replay().new == []
    run.fire_retry(send)
    assert run.replay().new == []

    run.complete(send, jobs.start_message(job_of(run)))
    episode = run.replay()

    assert send.attempts == 2
    assert episode.activity("RecordJobStatus").input["status"] == "Running"


def test_start_message_failing_every_attempt_fails_the_job(pipeline_job: Any) -> None:
    run = custom_job(pipeline_job)
    send = run.replay().activity("SendStartMessage")

    last = run.fail_every_attempt(send, "queue unavailable")

    assert last.result.failed
    assert "queue unavailable" in (last.result.error or "")
    assert send.attempts == 3
    assert scheduled_names(run) == ["SendStartMessage"] * 3


def long_timeout_job(pipeline_job: Any, days: int) -> Scenario:
    job_input = jobs.custom_input()
    job_input["config"]["timeoutSeconds"] = days * 86_400
    return Scenario(pipeline_job, name=ORCHESTRATOR, instance_id=CUSTOM_ID, input=job_input)


def test_long_timeout_is_chained_timers_and_still_times_out(pipeline_job: Any) -> None:
    run = long_timeout_job(pipeline_job, days=8)
    episode = start_pipeline(run)
    deadline = run.now + timedelta(days=8)
    timer = waiting_timer(episode)

    fire_times = []
    while not episode.activities("RecordJobStatus"):
        assert timer.fire_at is not None
        # The Azure Storage backend takes timers of at most six days.
        assert timer.fire_at - run.now <= timedelta(days=6)
        fire_times.append(timer.fire_at)
        episode = run.fire(timer).replay()
        if not episode.activities("RecordJobStatus"):
            timer = episode.timer()

    assert len(fire_times) == 2
    assert fire_times[-1] == deadline
    assert episode.activity("RecordJobStatus").input["status"] == "TimedOut"


def test_long_timeout_is_cancelled_by_the_report(pipeline_job: Any) -> None:
    run = long_timeout_job(pipeline_job, days=8)
    start_pipeline(run)

    run.raise_event(EVENT, jobs.report("Succeeded"))
    episode = run.replay()

    assert episode.activity("RecordJobStatus").input["status"] == "Succeeded"
    assert episode.custom_status == "RecordingStatus"
