"""``GET /api/jobs/{jobId}``: a job's orchestration status (contract 5)."""

import json
import re

import azure.durable_functions as df
import azure.functions as func

from schemas.fields import JOB_ID_PATTERN
from services.job_status_view import job_status_of

bp = df.Blueprint()

_JOB_ID = re.compile(JOB_ID_PATTERN)


@bp.route(route="jobs/{jobId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def GetJobStatus(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    job_id = req.route_params.get("jobId", "")
    # Sub-orchestrations have ids no job can have: only jobs are shown here.
    status = await job_status_of(job_id, client) if _JOB_ID.fullmatch(job_id) else None
    if status is None:
        return _json(404, {"error": f"No job with jobId '{job_id}' exists."})
    return _json(200, status.to_json())


def _json(status_code: int, body: object) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status_code, mimetype="application/json")
