"""The real worker app with one catalog job made to fail transiently once, for the
metrics tests (``marketq-worker --app tests.support.metrics_app:app``).

``data_import`` (max_retries=1 in the catalog) raises ``TransientJobError`` on its first
attempt and succeeds on the retry, with no back-off so the test need not wait: the
worker then reports one ``retried`` and one ``succeeded`` outcome for that run.
"""

from __future__ import annotations

from typing import Any

from marketq.worker.app import app
from marketq.worker.errors import TransientJobError

_instance = app.tasks["data_import"]
_task = type(_instance)


def _flaky_import(ctx: Any, params: Any) -> dict[str, Any]:
    if _instance.request.retries == 0:
        raise TransientJobError("first attempt fails (test)")
    return {"rows": 0}


_task.implementation = staticmethod(_flaky_import)
_task.retry_backoff = False
_task.retry_jitter = False
_task.default_retry_delay = 0

__all__ = ["app"]
