"""Uploads: large job inputs stored in the database and referenced by id.

A run's message stays under 64 KiB (marketq.common.publish.MAX_MESSAGE_BYTES), so a CSV
for ``data_import`` is uploaded first (the raw file as the request body, up to
``MARKETQ_IMPORT_MAX_BYTES``) and the run names it: ``{"upload_id": "..."}``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from anyio import to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel

from marketq.api.access import Trigger
from marketq.api.errors import ApiError, ErrorDetail, ErrorResponse
from marketq.api.routes.runs import ERRORS
from marketq.api.state import State
from marketq.common.db.models import Upload

router = APIRouter(prefix="/api/v1", tags=["runs"])
UPLOAD_PATH = "/api/v1/uploads"


class UploadAccepted(BaseModel):
    upload_id: str
    size: int
    sha256: str


@router.post(
    "/uploads",
    status_code=201,
    response_model=UploadAccepted,
    summary="Upload a file a run reads by id (data_import's upload_id)",
    responses={
        **ERRORS,
        413: {"model": ErrorResponse, "description": "Larger than MARKETQ_IMPORT_MAX_BYTES."},
        422: {"model": ErrorResponse, "description": "Empty, or not UTF-8 text."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def upload(request: Request, _principal: Trigger, state: State) -> UploadAccepted:
    """Store the request body (the file itself, e.g. ``Content-Type: text/csv``) and
    answer its id; pass it as ``params.upload_id`` of a ``data_import`` run."""
    raw = await request.body()  # the body limit allows this route the import limit
    if not raw:
        raise ApiError(
            422,
            "invalid_request",
            "the upload is empty",
            [ErrorDetail(field="body", message="empty")],
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(
            422,
            "invalid_request",
            f"the upload is not UTF-8 text ({exc.reason})",
            [ErrorDetail(field="body", message="not UTF-8")],
        ) from None
    now = datetime.now(UTC)
    row = Upload(
        id=str(uuid.uuid4()),
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        content=text,
        created_at=now,
        updated_at=now,
    )

    def store() -> None:
        with state.sessions.begin() as session:
            session.add(row)

    await to_thread.run_sync(store)
    return UploadAccepted(upload_id=row.id, size=row.size, sha256=row.sha256)
