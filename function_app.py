"""The Azure Functions app: registers the blueprints, nothing else.

Settings are validated here, at import, because that is the app's start-up: a bad setting
stops the host with a message naming it instead of failing on the first job.
"""

import azure.durable_functions as df

from activities import cache, job_status, search_indexers, start_message, user_data
from orchestrator import default_finished, pipeline_job
from settings import load_settings
from triggers import finished_queue, pending_queue, queue_setup, status_api

load_settings()

app = df.DFApp()

for blueprint in (
    queue_setup.bp,
    pending_queue.bp,
    finished_queue.bp,
    status_api.bp,
    pipeline_job.bp,
    default_finished.bp,
    start_message.bp,
    job_status.bp,
    cache.bp,
    user_data.bp,
    search_indexers.bp,
):
    app.register_functions(blueprint)
