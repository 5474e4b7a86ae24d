"""The naive peer of `make bench-api`: a FastAPI endpoint that calls ``apply_async``.

What a team writes first: the worker's Celery app (marketq.worker.app, the same app and
configuration Flower is given), one POST route, ``task.apply_async(kwargs=...)`` per
request, the task id back. A plain ``def`` route, so FastAPI runs the blocking publish
in its thread pool. No auth, no validation beyond the task's own, no rate limit, no run
record: everything the marketq API does on top is missing here.

Served by uvicorn exactly like marketq-api (asyncio's loop, its httptools protocol, no
access log, the same worker count):

    uvicorn bench.naive_api:app --host 127.0.0.1 --port P --loop asyncio \
        --http marketq.api.http_protocol:NoDelayHttpToolsProtocol
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from marketq.worker.app import app as celery_app

app = FastAPI(title="naive apply_async endpoint (benchmark peer)")


class Submit(BaseModel):
    kwargs: dict[str, Any] = Field(default_factory=dict)


@app.post("/tasks/{name}", status_code=202)
def submit(name: str, body: Submit) -> dict[str, str]:
    task = celery_app.tasks.get(name)
    if task is None:
        raise HTTPException(404, f"unknown task {name!r}")
    result = task.apply_async(kwargs=body.kwargs)
    return {"task_id": result.id}


@app.post("/noop", status_code=202)
async def noop(body: Submit) -> dict[str, str]:
    """No publish at all: the ceiling of one uvicorn + FastAPI process on this machine."""
    return {"task_id": "none"}
