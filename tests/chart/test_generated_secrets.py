"""Generated passwords and keys survive renders without cluster access (an Argo CD sync,
`helm template`), and each pod rolls only when what it reads changes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.chart.helm import Rendered, name, render

GENERATED = {"redis": "redis", "postgresql": "postgresql", "test-api-key": "test-api-key"}
PRE_INSTALL_ONCE = {"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-20"}


def _not_hooks(rendered: Rendered) -> list[dict[str, Any]]:
    return [
        o
        for o in rendered.objects
        if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
    ]


def test_two_renders_without_a_cluster_apply_the_same_objects() -> None:
    # No lookup answers: every random value is new. The release's objects must not change,
    # or each GitOps sync would roll every pod and PostgreSQL would keep its first password.
    first, second = render(), render()
    assert _not_hooks(first) == _not_hooks(second)


def test_generated_material_lives_in_secrets_created_once_at_install(
    default_render: Rendered,
) -> None:
    for suffix in GENERATED.values():
        secret = default_render.get("Secret", name(suffix))
        annotations = secret["metadata"]["annotations"]
        # pre-install only: Helm never renders it again on upgrade; Argo CD creates a
        # named hook once. No delete policy but Helm's default (before the next install).
        assert {k: v for k, v in annotations.items() if k.startswith("helm.sh/")} == (
            PRE_INSTALL_ONCE
        )
        assert secret["metadata"]["labels"]["marketq.io/generated"] == "true"


def test_generated_secrets_hold_consistent_urls(default_render: Rendered) -> None:
    redis = default_render.get("Secret", name("redis"))["stringData"]
    assert redis["url"] == f"redis://:{redis['password']}@{name('redis')}:6379/0"
    assert redis["redis.conf"] == f'requirepass "{redis["password"]}"\n'
    db = default_render.get("Secret", name("postgresql"))["stringData"]
    assert db["url"] == (
        f"postgresql+psycopg://marketq:{db['password']}@{name('postgresql')}:5432/marketq"
    )
    test_key = default_render.get("Secret", name("test-api-key"))["stringData"]
    assert json.loads(test_key["api-keys.json"]) == [
        {"name": "helm-test", "sha256": hashlib.sha256(test_key["api-key"].encode()).hexdigest(),
         "scopes": ["read", "trigger"]}
    ]  # fmt: skip


def test_explicit_passwords_are_ordinary_release_objects() -> None:
    rendered = render(values={"redis.bundled.password": "p1", "database.bundled.password": "p2"})
    for suffix in ("redis", "postgresql"):
        secret = rendered.get("Secret", name(suffix))
        assert "helm.sh/hook" not in (secret["metadata"].get("annotations") or {})
    assert rendered.get("Secret", name("redis"))["stringData"]["password"] == "p1"


def test_the_api_reads_its_keys_and_the_generated_test_key(default_render: Rendered) -> None:
    api = default_render.get("Deployment", name("api"))["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in api["containers"][0]["env"]}
    files = env["MARKETQ_API_KEYS_FILE"].split(":")
    assert len(files) == 2
    mounts = {m["mountPath"]: m["name"] for m in api["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in api["volumes"]}
    secrets = set()
    for path in files:
        directory, filename = path.rsplit("/", 1)
        volume = volumes[mounts[directory]]["secret"]
        assert filename in {i["path"] for i in volume["items"]}
        secrets.add(volume["secretName"])
    assert secrets == {name("api-keys"), name("test-api-key")}


def test_store_passwords_come_from_files(default_render: Rendered) -> None:
    for store in ("redis", "postgresql"):
        sts = default_render.get("StatefulSet", name(store))
        c = sts["spec"]["template"]["spec"]["containers"][0]
        assert not [e for e in c.get("env", []) if "valueFrom" in e], store
        assert not [a for a in c.get("args", []) + c.get("command", []) if "PASSWORD" in a]
    postgres = default_render.get("StatefulSet", name("postgresql"))
    env = {
        e["name"]: e.get("value")
        for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["POSTGRES_PASSWORD_FILE"].startswith("/etc/postgresql-auth/")


def _pod_annotations(rendered: Rendered, deployment: str) -> dict[str, str]:
    d = rendered.get("Deployment", name(deployment))
    annotations: dict[str, str] = d["spec"]["template"]["metadata"]["annotations"]
    return annotations


def test_adding_an_api_key_restarts_only_the_api() -> None:
    key = {"name": "ops", "sha256": "a" * 64, "scopes": ["read"]}
    before, after = render(), render(values={"api.auth.keys": [key]})
    assert _pod_annotations(before, "api") != _pod_annotations(after, "api")
    for deployment in ("beat", "worker-daily", "worker-market-hours"):
        assert _pod_annotations(before, deployment) == _pod_annotations(after, deployment)


def test_each_pod_rolls_on_what_it_reads() -> None:
    base = render()
    config = render(values={"config.logLevel": "DEBUG"})
    redis = render(values={"redis.bundled.enabled": False, "redis.url": "redis://r:6379/0"})
    database = render(
        values={"database.bundled.enabled": False, "database.url": "postgresql+psycopg://d/m"}
    )
    for deployment in ("api", "beat", "worker-daily"):
        original = _pod_annotations(base, deployment)
        for changed, key in ((config, "checksum/config"), (redis, "checksum/redis"),
                             (database, "checksum/database")):  # fmt: skip
            now = _pod_annotations(changed, deployment)
            assert now[key] != original[key], (deployment, key)
            others = {k: v for k, v in now.items() if k != key}
            assert others == {k: v for k, v in original.items() if k != key}
