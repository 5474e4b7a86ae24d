"""The delivery settings the Celery factory produces are the ones docs/design.md#delivery
calls for."""

from __future__ import annotations

import pytest

from marketq.common.catalog import CATALOG
from marketq.common.celery_app import (
    celery_config,
    create_celery_app,
    effective_time_limits,
    max_countdown_seconds,
    visibility_timeout,
)
from marketq.common.queues import Queue
from marketq.common.settings import QueueOptions, Settings
from marketq.worker.entrypoint import worker_argv, worker_environ


def test_acknowledgement_and_redelivery_settings() -> None:
    conf = celery_config(Settings())
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["task_retry_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert conf["broker_connection_retry_on_startup"] is True
    assert conf["worker_soft_shutdown_timeout"] == Settings().worker_soft_shutdown_seconds
    assert conf["worker_enable_soft_shutdown_on_idle"] is True


def test_json_only_and_prefixed_keys() -> None:
    conf = celery_config(Settings())
    assert conf["accept_content"] == ["json"] and conf["task_serializer"] == "json"
    assert conf["result_accept_content"] == ["json"]
    assert conf["broker_transport_options"]["global_keyprefix"] == "marketq:"
    assert conf["result_backend_transport_options"]["global_keyprefix"] == "marketq:"


def test_restore_sweep_runs_every_interval_not_every_ten() -> None:
    options = celery_config(Settings(unacked_restore_interval_seconds=7))[
        "broker_transport_options"
    ]
    assert options["unacked_restore_interval"] == 7
    assert options["unacked_restore_throttle"] == 1


def test_socket_timeouts_are_explicit() -> None:
    conf = celery_config(
        Settings(broker_socket_timeout_seconds=4, broker_connect_timeout_seconds=2)
    )
    for options in (conf["broker_transport_options"], conf["result_backend_transport_options"]):
        assert options["socket_timeout"] == 4
        assert options["socket_connect_timeout"] == 2


def test_visibility_timeout_outlasts_the_longest_eta_plus_hard_limit() -> None:
    settings = Settings()
    longest = max(job.time_limit for job in CATALOG.values())
    timeout = visibility_timeout(settings)
    assert timeout == 2 * longest + settings.visibility_timeout_margin_seconds
    # The worst case a healthy message sees before its ack: the longest accepted ETA,
    # then the longest run (on the queue that has it; every queue's own in
    # test_queue_visibility.py).
    assert max_countdown_seconds(settings, Queue.DAILY) + longest < timeout


def test_queue_caps_lower_the_limits_and_the_timeout() -> None:
    capped = Settings(queues={q.value: QueueOptions(max_time_limit_seconds=10) for q in Queue})
    limits = effective_time_limits(capped)
    assert all(hard == 10 and 0 < soft < 10 for soft, hard in limits.values())
    assert visibility_timeout(capped) == 20 + capped.visibility_timeout_margin_seconds


def test_an_explicit_visibility_timeout_must_outlast_twice_the_longest_limit() -> None:
    longest = max(job.time_limit for job in CATALOG.values())
    assert visibility_timeout(Settings(visibility_timeout_seconds=2 * longest + 1)) == (
        2 * longest + 1
    )
    with pytest.raises(ValueError, match="visibility_timeout_seconds"):
        visibility_timeout(Settings(visibility_timeout_seconds=2 * longest))


def test_rediss_urls_get_verified_tls() -> None:
    conf = celery_config(
        Settings(
            redis_url="rediss://user:secret@redis.example:6380/0", redis_tls_ca_file="/etc/ca.pem"
        )
    )
    assert conf["broker_use_ssl"]["ssl_ca_certs"] == "/etc/ca.pem"
    assert conf["redis_backend_use_ssl"]["ssl_cert_reqs"].name == "CERT_REQUIRED"


def test_result_backend_is_marketqs_and_keeps_the_url() -> None:
    app = create_celery_app(settings=Settings(redis_url="redis://127.0.0.1:1/3"))
    assert type(app.backend).__name__ == "MarketqRedisBackend"
    assert app.backend.connparams["port"] == 1 and app.backend.connparams["db"] == 3


@pytest.mark.parametrize("queue", list(Queue))
def test_worker_command_consumes_one_queue_with_its_options(queue: Queue) -> None:
    settings = Settings(
        queues={
            queue.value: QueueOptions(
                concurrency=3, max_tasks_per_child=100, max_memory_per_child_kb=200_000
            )
        }
    )
    argv = worker_argv(queue, settings, hostname="h@x")
    assert argv[argv.index("--queues") + 1] == queue.value
    assert argv[argv.index("--concurrency") + 1] == "3"
    assert argv[argv.index("--max-tasks-per-child") + 1] == "100"
    assert argv[argv.index("--max-memory-per-child") + 1] == "200000"
    assert "worker" in argv and "marketq.worker.app:app" in argv


def test_task_events_are_per_queue_and_off_by_default() -> None:
    # Flower and `celery events` see only tasks of workers started with --task-events (-E).
    assert "--task-events" not in worker_argv(Queue.DAILY, Settings(), hostname="h@x")
    on = Settings(queues={"daily": QueueOptions(task_events=True)})
    assert "--task-events" in worker_argv(Queue.DAILY, on, hostname="h@x")
    assert "--task-events" not in worker_argv(Queue.DEFAULT, on, hostname="h@x")


def test_worker_environment_remaps_sigterm_to_a_soft_shutdown() -> None:
    assert worker_environ({})["REMAP_SIGTERM"] == "SIGQUIT"
