"""sentinel:// URLs: parsing, settings, and what Celery, kombu, RedBeat and redis-py are given.

In process, no servers: the clients built here connect lazily, so their configuration
(which sentinels, which master group, which password) can be read without a Redis.
tests/integration/test_sentinel_failover.py runs the same configuration against real
sentinels and a failover.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio.sentinel
import redis.sentinel
from celery import Celery
from pydantic import ValidationError

from marketq.common.celery_app import celery_config, create_celery_app
from marketq.common.redis_client import (
    async_redis_client,
    is_sentinel_url,
    parse_sentinel_url,
    redis_client,
    redis_tls_options,
)
from marketq.common.results import MarketqRedisBackend, MarketqSentinelBackend
from marketq.common.settings import Settings

URL = "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380;sentinel://10.0.0.3:26381"


def settings(**values: object) -> Settings:
    return Settings(redis_url=URL, **values)  # type: ignore[arg-type]


def test_parse_sentinel_url_keeps_every_sentinel_the_db_and_the_master_password() -> None:
    parsed = parse_sentinel_url(URL)
    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26381))
    assert parsed.db == 2
    assert parsed.password == "s3cret"
    assert parsed.username is None


@pytest.mark.parametrize(
    "url",
    [
        "sentinel://h1:26379;redis://h2:6379",  # a mixed list is not a Sentinel group
        "sentinel://:26379",  # no host
        "sentinel://h1:26379;sentinel://h2",  # no port: kombu and Celery default it apart
        "sentinel://h1:26379/zero",
    ],
)
def test_malformed_sentinel_urls_are_refused_by_the_settings(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(redis_url=url)


def test_sentinel_url_is_accepted_for_broker_results_and_quota() -> None:
    s = Settings(broker_url=URL, result_backend_url=URL, quota_redis_url=URL)
    assert is_sentinel_url(s.effective_broker_url)
    assert is_sentinel_url(s.effective_result_backend_url)
    assert not is_sentinel_url("redis://127.0.0.1:6379/0")


def test_sentinel_master_and_password_settings_and_the_file_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings().redis_sentinel_master == "mymaster"
    secret = tmp_path / "sentinel-password"
    secret.write_text("from-a-file\n", encoding="utf-8")
    monkeypatch.setenv("MARKETQ_REDIS_SENTINEL_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("MARKETQ_REDIS_SENTINEL_MASTER", "marketq")
    loaded = Settings(redis_url=URL)
    assert loaded.redis_sentinel_master == "marketq"
    assert loaded.redis_sentinel_password is not None
    assert loaded.redis_sentinel_password.get_secret_value() == "from-a-file"


def test_celery_config_names_the_master_and_the_sentinels_password() -> None:
    config = celery_config(settings(redis_sentinel_master="marketq", redis_sentinel_password="p"))
    assert config["broker_url"] == URL
    for key in ("broker_transport_options", "result_backend_transport_options"):
        options = config[key]
        assert options["master_name"] == "marketq"
        assert options["sentinel_kwargs"]["password"] == "p"
        assert options["global_keyprefix"] == "marketq:"
    assert config["result_backend"].startswith("marketq.common.results:MarketqSentinelBackend+")
    # The worker's per-queue sweep table is still there for its Sentinel transport.
    assert config["broker_transport_options"]["queue_visibility_timeouts"]


def test_plain_redis_config_has_no_sentinel_options() -> None:
    config = celery_config(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert "master_name" not in config["broker_transport_options"]
    assert config["result_backend"].startswith("marketq.common.results:MarketqRedisBackend+")


def test_celery_result_backend_is_the_sentinel_subclass_on_the_named_master() -> None:
    app: Celery = create_celery_app("t", settings=settings(redis_sentinel_master="marketq"))
    backend = app.backend
    assert isinstance(backend, MarketqSentinelBackend)
    assert not isinstance(backend, MarketqRedisBackend)
    assert [(h["host"], h["port"]) for h in backend.connparams["hosts"]] == [
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
        ("10.0.0.3", 26381),
    ]
    assert backend.connparams["db"] == 2
    assert backend.connparams["password"] == "s3cret"
    pool = backend.client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "marketq"


def test_worker_transport_for_sentinel_keeps_marketq_channel_options() -> None:
    from kombu.transport import redis as kombu_redis

    from marketq.worker.broker_transport import (
        SENTINEL_TRANSPORT_PATH,
        TRANSPORT_PATH,
        Channel,
        QueueVisibilityQoS,
        SentinelChannel,
        SentinelTransport,
        transport_path,
    )

    assert transport_path(URL) == SENTINEL_TRANSPORT_PATH
    assert transport_path("redis://127.0.0.1:6379/0") == TRANSPORT_PATH
    assert SentinelTransport.Channel is SentinelChannel
    assert issubclass(SentinelChannel, Channel)
    assert issubclass(SentinelChannel, kombu_redis.SentinelChannel)
    assert SentinelChannel.QoS is QueueVisibilityQoS
    options = set(SentinelChannel.from_transport_options)
    assert {"master_name", "sentinel_kwargs", "queue_visibility_timeouts"} <= options
    assert set(kombu_redis.SentinelChannel.from_transport_options) <= options


def test_redis_client_is_a_master_client_of_the_named_group() -> None:
    client = redis_client(URL, settings(redis_sentinel_master="marketq"), socket_timeout=3)
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "marketq"
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["socket_timeout"] == 3
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380, 26381]


def test_sentinel_password_reaches_the_sentinel_connections_not_the_master() -> None:
    client = redis_client(URL, settings(redis_sentinel_password="sentinel-pw"))
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    manager = pool.sentinel_manager
    assert all(
        s.connection_pool.connection_kwargs["password"] == "sentinel-pw" for s in manager.sentinels
    )
    assert client.connection_pool.connection_kwargs["password"] == "s3cret"


def test_async_client_for_the_api_is_a_sentinel_master_client() -> None:
    client = async_redis_client(URL, settings(), max_connections=256)
    pool = client.connection_pool
    assert isinstance(pool, redis.asyncio.sentinel.SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.max_connections == 256


def test_tls_for_sentinel_is_opt_in_and_uses_the_ca_file() -> None:
    assert redis_tls_options(URL, settings()) is None
    tls = settings(redis_sentinel_tls=True, redis_tls_ca_file="/ca.pem")
    assert redis_tls_options(URL, tls) == {"ssl_cert_reqs": 2, "ssl_ca_certs": "/ca.pem"}
    pool = redis_client(URL, tls).connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.connection_class is redis.sentinel.SentinelManagedSSLConnection
    assert all(
        s.connection_pool.connection_kwargs["ssl_ca_certs"] == "/ca.pem"
        for s in pool.sentinel_manager.sentinels
    )
    config = celery_config(tls)
    assert config["broker_use_ssl"]["ssl_ca_certs"] == "/ca.pem"
    assert config["redis_backend_use_ssl"]["ssl_ca_certs"] == "/ca.pem"


def test_redbeat_gets_its_own_sentinel_form() -> None:
    from marketq.beat.app import redbeat_config

    config = redbeat_config(settings(redis_sentinel_master="marketq", redis_sentinel_password="p"))
    assert config["redbeat_redis_url"] == "redis-sentinel://10.0.0.1:26379/2"
    options = config["redbeat_redis_options"]
    assert options["sentinels"] == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26381)]
    assert options["service_name"] == "marketq"
    assert options["password"] == "s3cret"
    assert options["db"] == 2
    assert options["sentinel_kwargs"]["password"] == "p"
    assert options["socket_timeout"] > 0


def test_redbeat_builds_a_master_client_from_that_config() -> None:
    from redbeat.schedulers import get_redis

    from marketq.beat.app import redbeat_config

    app = Celery("redbeat-sentinel-test", set_as_current=False)
    app.conf.update(redbeat_config(settings(redis_sentinel_master="marketq")))
    client = get_redis(app)
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "marketq"
    assert pool.connection_kwargs["password"] == "s3cret"
