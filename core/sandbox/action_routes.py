"""HTTP answers of the action Run Command API and the built-in command documents.

The POST answers 202 with ``Location`` (``final-state-via: location``: 202 while the run goes
on, then 200 with the ``RunCommandResult``) and ``Azure-AsyncOperation`` (the operation status,
with ``properties.output`` once done), as reference 3.1 and azure-storage-and-scale-sets.md 7.2
describe. A run that failed (agent Not Ready, the script could not start, the 90-minute cap)
answers its error on both URLs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.sandbox.action_runs import NOT_FOUND_MESSAGE, ActionRun
from core.sandbox.builtin_commands import BUILTINS, builtin
from core.sandbox.errors import ArmError


def accepted(request: Request, run: ActionRun, retry_after: str) -> Response:
    base = f"{request.url.scheme}://{request.url.netloc}"
    version = request.query_params["api-version"]
    where = (f"{base}/subscriptions/{run.subscription}/providers/Microsoft.Compute/locations/"
             f"{run.location}/operations/{run.id}")
    return Response(status_code=202, headers={
        "Azure-AsyncOperation": f"{where}?api-version={version}",
        "Location": f"{where}?monitor=true&api-version={version}",
        "Retry-After": retry_after,
    })


def operation(request: Request, run: ActionRun, retry_after: str) -> Response:
    """The operation's status URL, or with ``monitor=true`` its result URL."""
    if request.query_params.get("monitor", "").lower() != "true":
        return JSONResponse(run.operation_status())
    status = run.status
    if status == "InProgress":
        return Response(status_code=202,
                        headers={"Location": str(request.url), "Retry-After": retry_after})
    error = run.error
    if error is not None:
        return JSONResponse({"error": error}, status_code=409)
    return JSONResponse(run.result())


def builtin_list() -> Response:
    return JSONResponse({"value": [command.summary() for command in BUILTINS]})


def builtin_document(command_id: str) -> Response:
    command = builtin(command_id)
    if command is None:
        raise ArmError(404, "NotFound", NOT_FOUND_MESSAGE)
    return JSONResponse(command.document())
