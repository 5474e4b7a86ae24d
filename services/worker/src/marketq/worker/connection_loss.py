"""What a worker does with the runs it holds when its broker connection is lost.

With late acks a run cannot be acknowledged on a new connection, so Celery cancels it
(``worker_cancel_long_running_tasks_on_connection_loss``) and kombu puts the messages of
the closed channel back in their queues. Two things break that when Redis itself is down
rather than the connection reset (docs/design.md#redis-restarts):

- Celery's cancel signals the pool process, then records a retry in the result
  backend, the Redis that is down; that write fails before the request is marked
  cancelled, so when the process ends Celery reports the run REVOKED ("terminated") and
  it is never run again. ``JobRequest.cancel`` records nothing in Redis (the run's next
  delivery is its retry) and kills with SIGKILL, which nothing in the process can delay.
- kombu's restore runs while the channel closes, when Redis is down, and is never tried
  again: the messages stay in the ``unacked`` hash until the visibility timeout.
  ``RestoreHeldMessages`` restores them through the next connection.
- A run that ended just as Redis went away could not be acknowledged; restoring its
  message would run it again. ``JobRequest.acknowledge`` notes such a message, and the
  next connection acknowledges it instead. A run whose pool process stored its end in
  the result backend before the main process heard of it (the result was still on its
  way when the connection was lost, and the cancel killed a process that had finished)
  has no failed acknowledgement to note: before restoring, the bootstep reads the stored
  state of every held run and acknowledges those that ended.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps, states
from celery.worker.request import Request

log = logging.getLogger("marketq.worker.connection_loss")

# Delivery tags of runs that ended but whose acknowledgement did not reach Redis.
_unacknowledged_ends: set[str] = set()


class JobRequest(Request):  # type: ignore[misc]
    """A worker request whose cancel on connection loss really stops the run."""

    def cancel(self, pool: Any, signal: Any = None, emit_retry: bool = True) -> None:
        # No retry record: it would go to the Redis that was just lost, and failing there
        # leaves the run marked revoked. The message stays unacknowledged, so the run is
        # delivered again. SIGKILL: the stop cannot be delayed by a signal handler.
        super().cancel(pool, signal="SIGKILL", emit_retry=False)

    def acknowledge(self) -> None:
        super().acknowledge()
        # Celery logs a failed ack and carries on; kombu marks the message acknowledged
        # only when Redis took it.
        message = self._message
        if message is not None and not message.acknowledged:
            _unacknowledged_ends.add(message.delivery_tag)


class RestoreHeldMessages(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: after a reconnection, put back every message the previous
    connection still held (running runs cancelled, prefetched ones dropped)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._previous_channel: Any = None

    def start(self, consumer: Any) -> None:
        channel = consumer.task_consumer.channel
        previous, self._previous_channel = self._previous_channel, channel
        if previous is None or previous is channel:
            return
        # kombu's QoS keeps the delivery tags of a channel's unacknowledged messages; a
        # restore that succeeded when the channel closed has emptied it.
        held = list(getattr(previous.qos, "_delivered", {}) or {})
        if not held:
            return
        try:
            statuses = _stored_statuses(consumer.app, previous.qos._delivered, held)
        except Exception as exc:
            log.warning("could not read the held runs' stored states after reconnecting: %s", exc)
            self._previous_channel = previous
            return
        ended = [
            tag
            for tag in held
            if tag in _unacknowledged_ends or statuses.get(tag) in states.READY_STATES
        ]
        try:
            for tag in ended:  # finished runs: acknowledge, never run again
                channel.qos.ack(tag)
                _unacknowledged_ends.discard(tag)
        except Exception as exc:
            log.warning("could not acknowledge finished runs after reconnecting: %s", exc)
            self._previous_channel = previous
            return
        restored = 0
        for tag in held:
            if tag in ended:
                continue
            try:
                # One transaction per tag: a message the visibility sweep already put
                # back, or that was acknowledged meanwhile, is no longer in the hash.
                channel.qos.restore_by_tag(tag)
            except Exception as exc:  # the next reconnection tries again
                log.warning("could not restore message %s after reconnecting: %s", tag, exc)
                self._previous_channel = previous
                return
            restored += 1
        delivered = previous.qos._delivered
        acknowledged = [_run_id(delivered.get(tag)) for tag in ended]
        # With the state each had stored (None: nothing yet), to tell from the log why a
        # run was put back.
        restored_runs = {
            str(_run_id(delivered.get(tag))): statuses.get(tag) for tag in held if tag not in ended
        }
        delivered.clear()
        log.info(
            "after reconnecting: acknowledged %d finished run(s), restored %d message(s)",
            len(ended),
            restored,
            extra={"acknowledged_runs": acknowledged, "restored_runs": restored_runs},
        )


def _run_id(message: Any) -> str | None:
    """The run (Celery task id) of a held message: protocol 2 carries it in the headers."""
    headers = getattr(message, "headers", None) or {}
    run_id = headers.get("id") or (getattr(message, "properties", None) or {}).get("correlation_id")
    return str(run_id) if run_id else None


def _stored_statuses(app: Any, delivered: Any, tags: list[str]) -> dict[str, str]:
    """The state each tag's run has stored in the result backend (tags without one are
    left out); an end there (SUCCESS, FAILURE, REVOKED) means the run must not run again."""
    runs = {tag: _run_id(delivered.get(tag)) for tag in tags}
    asked = [(tag, run_id) for tag, run_id in runs.items() if run_id is not None]
    if not asked:
        return {}
    backend = app.backend
    metas = backend.client.mget([backend.get_key_for_task(run_id) for _, run_id in asked])
    return {
        tag: str(backend.decode_result(meta).get("status"))
        for (tag, _), meta in zip(asked, metas, strict=True)
        if meta
    }
