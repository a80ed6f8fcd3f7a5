"""Replays are deterministic: the same history always gives the same actions and output.

The Durable extension replays an orchestrator from the start of its history in every episode
(and again after a host restart), so any decision that depends on something other than the
history (the wall clock, randomness, settings read at run time) breaks running jobs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devhost.replay import HistoryEventType, replay
from tests.orchestrator import jobs
from tests.orchestrator.scenario import Scenario

JOB = "PipelineJobOrchestrator"
POST = "PipelineJobDefaultFinished"
BUSY = jobs.indexer_answer("users-indexer", "busy", 409, "already running")


def custom_run(pipeline_job: Any) -> Scenario:
    """A whole custom job: start retried once, early report, status recorded."""
    run = Scenario(pipeline_job, name=JOB, instance_id="custom-job-1", input=jobs.custom_input())
    send = run.replay().activity("SendStartMessage")
    run.fail(send, "queue unavailable")
    run.replay()
    run.fire_retry(send)
    run.replay()
    run.complete(send, jobs.start_message(jobs.custom_input()["job"]))
    running = run.replay().activity("RecordJobStatus")
    run.complete(running, "Running")
    run.replay()
    run.raise_event("PipelineJobFinished", jobs.report("Failed", error="boom"))
    final = run.replay().activity("RecordJobStatus")
    run.complete(final, "Failed")
    assert run.replay().is_done
    return run


def post_processing_run(default_finished: Any) -> Scenario:
    """Post-processing with a failing branch and an indexer retried after a timer."""
    run = Scenario(
        default_finished,
        name=POST,
        instance_id=f"default-job-1:{POST}",
        input=jobs.finished_input([7, 8]),
        parent_instance_id="default-job-1",
    )
    first = run.replay()
    docs, users = first.activities("RunSearchIndexer")
    run.complete(docs, jobs.indexer_answer("docs-indexer", "started", 202))
    run.complete(users, BUSY)
    run.complete(first.activity("ClearUserCache"), {"ok": True, "deletedKeys": 1})
    run.fail_every_attempt(first.activity("DeactivateUserData"), "db down")
    timer = run.last.timer()
    retry = run.fire(timer).replay().activity("RunSearchIndexer")
    run.complete(retry, jobs.indexer_answer("users-indexer", "started", 202))
    assert run.replay().is_done
    return run


@pytest.fixture(params=["custom", "post-processing"])
def recorded(request: pytest.FixtureRequest, pipeline_job: Any, default_finished: Any) -> Scenario:
    if request.param == "custom":
        return custom_run(pipeline_job)
    return post_processing_run(default_finished)


def again(run: Scenario, history: list[dict[str, Any]]) -> Any:
    return replay(
        run.orchestrator,
        instance_id=run.instance_id,
        history=history,
        parent_instance_id=run.parent_instance_id,
    )


def test_replaying_a_full_history_twice_gives_identical_results(recorded: Scenario) -> None:
    history = recorded.history.events

    first, second = again(recorded, history), again(recorded, history)

    assert first.actions == second.actions
    assert first.output == second.output
    assert first.custom_status == second.custom_status
    assert json.dumps(first.state, sort_keys=True) == json.dumps(second.state, sort_keys=True)


def test_replaying_a_completed_run_reproduces_its_output(recorded: Scenario) -> None:
    result = again(recorded, recorded.history.events)

    assert result.is_done
    assert result.output == recorded.last.output
    assert result.custom_status == recorded.last.custom_status
    assert result.actions == recorded.actions()


def test_every_episode_replays_to_the_same_decisions(recorded: Scenario) -> None:
    """Cut the history at each episode's end: what the orchestrator asked for then is what a
    later replay still asks for, in the same order."""
    history = recorded.history.events
    final_actions = recorded.actions()
    cuts = [
        i
        for i, event in enumerate(history)
        if event["EventType"] == HistoryEventType.ORCHESTRATOR_COMPLETED
    ]
    assert len(cuts) == len(recorded.episodes)

    for episode, cut in zip(recorded.episodes, cuts, strict=True):
        prefix = [dict(event) for event in history[:cut]]
        result = again(recorded, prefix)
        seen = len(result.actions)
        assert seen == len(episode.result.actions)
        assert [_plain(a) for a in result.actions] == [_plain(a) for a in final_actions[:seen]]
        assert result.custom_status == episode.custom_status


def test_a_restarted_host_replaying_everything_as_played_decides_the_same(
    recorded: Scenario,
) -> None:
    history = [{**event, "IsPlayed": True} for event in recorded.history.events]

    result = again(recorded, history)

    assert result.is_done
    assert result.output == recorded.last.output
    assert result.actions == recorded.actions()


def _plain(action: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in action.items() if key != "isCanceled"}
