"""Celery protocol-2 messages in kombu's Redis envelope, built without Celery's per-call cost.

``apply_async`` costs ~0.7 ms of CPU per message (a Redis client object per publish,
``maybe_declare``, a result-channel subscription). ``MessageBuilder`` writes the same
message Celery's own protocol-2 builder (``app.amqp.as_task_v2``) would, in kombu's Redis
envelope, from a per-job skeleton (the constant headers come from ``as_task_v2`` itself,
once per job), and skips ``saferepr`` when plain ``repr`` is provably the same string
(``kwargs_repr``).

tests/integration/test_api_messages.py compares every message with Celery's own and runs
them on a real worker: it is the gate for upgrading Celery or kombu.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from celery import Celery
from celery.utils.saferepr import saferepr

from marketq.common.routing import PRIORITY_STEPS
from marketq.common.tracing import inject_trace_headers

if TYPE_CHECKING:
    from marketq.common.publish import PreparedRun

PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport default `sep`
ORIGIN = "marketq"


class RandomIds:
    """uuid4 strings from os.urandom fetched 4 KiB at a time: the same randomness as
    uuid.uuid4(), without its getrandom syscall per id (21% of a batch's CPU here)."""

    _CHUNK = 16 * 256

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0

    def __call__(self) -> str:
        if self._offset >= len(self._pool):
            self._pool, self._offset = os.urandom(self._CHUNK), 0
        raw = self._pool[self._offset : self._offset + 16]
        self._offset += 16
        return str(uuid.UUID(bytes=raw, version=4))


stdlib_dumps = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: Any) -> bytes:
    """Compact JSON. orjson refuses integers beyond 64 bits, which params may hold."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        text: str = stdlib_dumps(value)
        return text.encode()


def queue_key(prefix: str, queue: str, priority: int | None) -> str:
    """The Redis list kombu's transport reads for this queue and priority."""
    step = PRIORITY_STEPS[0]
    for candidate in PRIORITY_STEPS:
        if priority is not None and candidate <= priority:
            step = candidate
    return f"{prefix}{queue}" if step == 0 else f"{prefix}{queue}{PRIORITY_SEPARATOR}{step}"


def _plain(value: Any, depth: int, maxlevels: int) -> bool:
    """True when ``repr(value)`` equals Celery's ``saferepr(value)`` (short enough aside):
    JSON data whose strings repr leaves unescaped, nested no deeper than saferepr shows."""
    kind = type(value)
    if kind is str:
        return value.isprintable() and "'" not in value and "\\" not in value
    if kind is dict:
        return depth < maxlevels and all(
            type(k) is str and _plain(k, depth, maxlevels) and _plain(v, depth + 1, maxlevels)
            for k, v in value.items()
        )
    if kind is list:
        return depth < maxlevels and all(_plain(v, depth + 1, maxlevels) for v in value)
    return value is None or kind in (int, float, bool)


def kwargs_repr(kwargs: dict[str, Any], maxsize: int, maxlevels: int) -> str:
    """Celery's ``kwargsrepr`` header: ``saferepr(kwargs, maxsize, maxlevels)``, computed
    with the builtin ``repr`` (about 20x cheaper) whenever that is the same string."""
    if _plain(kwargs, 0, maxlevels):
        text = repr(kwargs)
        if len(text) < maxsize:
            return text
    return str(saferepr(kwargs, maxsize, maxlevels=maxlevels))


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None


class MessageBuilder:
    """Celery protocol-2 messages in kombu's Redis envelope, from per-job skeletons."""

    def __init__(self, app: Celery, origin: str = ORIGIN) -> None:
        self._amqp = app.amqp
        self._origin = origin
        self._maxsize = app.amqp.kwargsrepr_maxsize
        self._maxlevels = int(app.conf.task_repr_maxlevels)
        self._argsrepr = saferepr((), app.amqp.argsrepr_maxsize, maxlevels=self._maxlevels)
        self._skeletons: dict[str, dict[str, Any]] = {}
        self.new_id = RandomIds()
        # No callbacks: runs that follow another are a pipeline's steps, not Celery links.
        self._embed = dumps({"callbacks": None, "errbacks": None, "chain": None, "chord": None})

    def _skeleton(self, task: str) -> dict[str, Any]:
        """The headers as_task_v2 gives every run of ``task`` (built once, by Celery)."""
        skeleton = self._skeletons.get(task)
        if skeleton is None:
            built = self._amqp.as_task_v2("", task, args=(), kwargs={}, origin=self._origin)
            skeleton = self._skeletons[task] = dict(built.headers)
        return skeleton

    def headers(self, run: PreparedRun) -> dict[str, Any]:
        """THE place every published message's headers are built."""
        headers = self._skeleton(run.job.name).copy()
        headers["id"] = run.run_id
        headers["root_id"] = run.run_id
        headers["eta"] = _iso(run.eta)
        headers["expires"] = _iso(run.expires)
        headers["argsrepr"] = self._argsrepr
        headers["kwargsrepr"] = kwargs_repr(run.params, self._maxsize, self._maxlevels)
        if run.parent_id is not None:
            headers["parent_id"] = run.parent_id
        headers.update(run.headers)  # marketq_enqueued_at, a schedule entry's name
        inject_trace_headers(headers)  # the publish span's W3C context (no-op when off)
        return headers

    def body(self, run: PreparedRun) -> str:
        """base64 of the JSON ``[args, kwargs, embed]`` Celery sends."""
        raw = b"[[]," + dumps(run.params) + b"," + self._embed + b"]"
        return base64.b64encode(raw).decode("ascii")

    def message(self, run: PreparedRun) -> bytes:
        return dumps(
            {
                "body": self.body(run),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": self.headers(run),
                "properties": {
                    "correlation_id": run.run_id,
                    "reply_to": None,
                    "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": run.queue.value},
                    "priority": run.priority or 0,
                    "body_encoding": "base64",
                    "delivery_tag": self.new_id(),
                },
            }
        )
