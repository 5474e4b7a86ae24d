"""redis.sentinel: the URL, the environment every process gets, KEDA's redis-sentinel
triggers and their authentication, and the guards against values that disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketq.common.redis_client import parse_sentinel_url
from tests.chart.helm import OPTIONAL_APIS, Rendered, name, render, render_error
from tests.chart.test_workloads import env, settings_from

HOSTS = ["s0.redis.svc", "s1.redis.svc", "s2.redis.svc"]
SENTINEL: dict[str, Any] = {
    "redis.bundled.enabled": False,
    "redis.sentinel.enabled": True,
    "redis.sentinel.hosts": HOSTS,
    "database.url": "postgresql+psycopg://u:p@db/marketq",
}


@pytest.fixture(scope="module")
def sentinel_render() -> Rendered:
    return render(
        values={
            **SENTINEL,
            "redis.sentinel.masterName": "marketq",
            "redis.sentinel.port": 26380,
            "redis.sentinel.databaseIndex": 2,
            "redis.sentinel.tls": True,
            "redis.sentinel.existingSecret": "sentinel-auth",
            "redis.keda.passwordSecret": "redis-auth",
            "workers.queues.daily.autoscaling.keda.enabled": True,
        },
        api_versions=OPTIONAL_APIS,
    )


def marketq_containers(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for deployment in rendered.kinds("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"]:
            if "MARKETQ_REDIS_URL_FILE" in env(container):
                found.append((deployment["metadata"]["name"], container))
    return found


def test_the_built_url_names_every_sentinel_with_its_port_and_the_db(
    sentinel_render: Rendered,
) -> None:
    secret = sentinel_render.get("Secret", name("redis-url"))
    url = secret["stringData"]["url"]
    assert url == (
        "sentinel://s0.redis.svc:26380/2;sentinel://s1.redis.svc:26380;"
        "sentinel://s2.redis.svc:26380"
    )
    # The processes' own parser accepts it (and the settings validator uses the same).
    parsed = parse_sentinel_url(url)
    assert parsed.sentinels == tuple((host, 26380) for host in HOSTS)
    assert parsed.db == 2
    assert not sentinel_render.has("StatefulSet", name("redis"))


def test_api_workers_and_beat_get_the_master_name_tls_and_sentinel_password(
    sentinel_render: Rendered,
) -> None:
    containers = marketq_containers(sentinel_render)
    names = {deployment for deployment, _ in containers}
    assert name("api") in names and name("beat") in names
    assert any(n.startswith(name("worker")) for n in names)
    for deployment, container in containers:
        variables = env(container)
        assert variables["MARKETQ_REDIS_SENTINEL_MASTER"] == "marketq", deployment
        assert variables["MARKETQ_REDIS_SENTINEL_TLS"] == "true", deployment
        path = variables["MARKETQ_REDIS_SENTINEL_PASSWORD_FILE"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert path.startswith(mounts["redis-sentinel-password"] + "/"), deployment
    for deployment in sentinel_render.kinds("Deployment"):
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        if "redis-sentinel-password" in volumes:
            secret = volumes["redis-sentinel-password"]["secret"]
            assert secret["secretName"] == "sentinel-auth"
            assert secret["items"] == [{"key": "password", "path": "password"}]


def test_keda_asks_the_sentinels_for_the_master_holding_the_lists(
    sentinel_render: Rendered,
) -> None:
    scaled = [
        o
        for o in sentinel_render.kinds("ScaledObject")
        if o["metadata"]["labels"]["marketq.io/queue"] == "daily"
    ]
    assert len(scaled) == 1
    triggers = [t for t in scaled[0]["spec"]["triggers"] if t["name"].startswith("list-")]
    assert len(triggers) == 4
    for trigger in triggers:
        assert trigger["type"] == "redis-sentinel"
        meta = trigger["metadata"]
        assert meta["addresses"] == ",".join(f"{h}:26380" for h in HOSTS)
        assert meta["sentinelMaster"] == "marketq"
        assert meta["databaseIndex"] == "2"
        assert meta["enableTLS"] == "true"
        assert "address" not in meta
        assert trigger["authenticationRef"] == {"name": name("redis")}
    auth = sentinel_render.get("TriggerAuthentication", name("redis"))
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs["password"] == ("redis-auth", "password")
    assert refs["sentinelPassword"] == ("sentinel-auth", "password")


def test_a_sentinel_url_from_an_existing_secret_is_used_as_is() -> None:
    rendered = render(
        values={**SENTINEL, "redis.existingSecret": "prod-redis", "redis.sentinel.hosts": []}
    )
    assert not rendered.has("Secret", name("redis-url"))
    for _deployment, container in marketq_containers(rendered):
        assert env(container)["MARKETQ_REDIS_SENTINEL_MASTER"] == "mymaster"
        assert "MARKETQ_REDIS_SENTINEL_PASSWORD_FILE" not in env(container)


def test_without_sentinel_nothing_changes(default_render: Rendered) -> None:
    for _deployment, container in marketq_containers(default_render):
        assert not any(k.startswith("MARKETQ_REDIS_SENTINEL") for k in env(container))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {**SENTINEL, "redis.bundled.enabled": True},
            "redis.sentinel.enabled with redis.bundled.enabled",
        ),
        (
            {**SENTINEL, "redis.sentinel.hosts": []},
            "redis.sentinel.enabled without redis.url or redis.existingSecret needs "
            "redis.sentinel.hosts",
        ),
        (
            {**SENTINEL, "redis.url": "redis://r:6379/0"},
            "redis.sentinel.enabled but redis.url is not a sentinel:// URL",
        ),
        (
            {
                "redis.url": "sentinel://s0:26379/0",
                "redis.bundled.enabled": False,
                "database.url": "postgresql+psycopg://u:p@db/marketq",
            },
            "redis.url is a sentinel:// URL but redis.sentinel.enabled is false",
        ),
        (
            {"redis.sentinel.existingSecret": "sentinel-auth"},
            "redis.sentinel.existingSecret is set but redis.sentinel.enabled is false",
        ),
        (
            {
                **SENTINEL,
                "redis.existingSecret": "prod-redis",
                "redis.sentinel.hosts": [],
                "workers.queues.daily.autoscaling.keda.enabled": True,
                "keda.force": True,
            },
            "set redis.sentinel.hosts for KEDA's redis-sentinel triggers",
        ),
    ],
)
def test_inconsistent_sentinel_values_fail_the_render(values: dict[str, Any], message: str) -> None:
    assert message in render_error(values=values)


def test_the_rendered_environment_loads_into_sentinel_settings(
    sentinel_render: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker container's environment, with its mounted files written where it points,
    gives the settings and the Celery configuration a Sentinel deployment needs."""
    from marketq.common.celery_app import celery_config

    files = {
        "MARKETQ_REDIS_URL_FILE": sentinel_render.get("Secret", name("redis-url"))["stringData"][
            "url"
        ],
        "MARKETQ_REDIS_SENTINEL_PASSWORD_FILE": "sentinel-pw\n",
    }
    settings = settings_from(
        sentinel_render, name("worker-daily"), tmp_path, monkeypatch, files=files
    )
    assert settings.redis_sentinel_master == "marketq"
    assert settings.redis_sentinel_tls
    assert settings.redis_sentinel_password is not None
    assert settings.redis_sentinel_password.get_secret_value() == "sentinel-pw"
    options = celery_config(settings)["broker_transport_options"]
    assert options["master_name"] == "marketq"
    assert options["sentinel_kwargs"]["password"] == "sentinel-pw"
