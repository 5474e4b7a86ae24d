"""How tests/e2e turns a rendered pod into a process: the translation rules on small inputs.

The process run is only as honest as this translation, so its rules are pinned here:
values come from the referenced ConfigMaps/Secrets, $(VAR) expands as in Kubernetes,
mounted files land in a private directory and paths follow them, listen ports and binds
are the only other things that change, and every change is recorded.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.pods import Objects, PodBuilder, expand, image_command, image_service


def objects() -> Objects:
    return Objects(
        [
            {
                "kind": "ConfigMap",
                "metadata": {"name": "cfg"},
                "data": {"MARKETQ_LOG_LEVEL": "INFO", "schedule.yaml": "entries: {}\n"},
            },
            {
                "kind": "Secret",
                "metadata": {"name": "sec"},
                "data": {"url": base64.b64encode(b"redis://:pw@127.0.0.1:1/0").decode()},
                "stringData": {"keys.json": "[]"},
            },
        ]
    )


def worker_pod(**container: Any) -> dict[str, Any]:
    base = {
        "name": "worker",
        "image": "ghcr.io/marketq/marketq-worker:1.2.3",
        "args": ["--queue", "daily"],
        "envFrom": [{"configMapRef": {"name": "cfg"}}],
        "env": [
            {
                "name": "MARKETQ_REDIS_URL",
                "valueFrom": {"secretKeyRef": {"name": "sec", "key": "url"}},
            },
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "GREETING", "value": "pod $(POD) logs at $(MARKETQ_LOG_LEVEL) $(UNDEFINED)"},
            {"name": "MARKETQ_SCHEDULE_FILE", "value": "/etc/marketq/schedule/schedule.yaml"},
            {"name": "MARKETQ_WORKER_HTTP_PORT", "value": "9101"},
        ],
        "ports": [{"name": "http", "containerPort": 9101}],
        "volumeMounts": [
            {"name": "schedule", "mountPath": "/etc/marketq/schedule"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    base.update(container)
    return {
        "containers": [base],
        "volumes": [
            {
                "name": "schedule",
                "configMap": {
                    "name": "cfg",
                    "items": [{"key": "schedule.yaml", "path": "schedule.yaml"}],
                },
            },
            {"name": "tmp", "emptyDir": {}},
        ],
    }


def test_env_comes_from_the_rendered_configmaps_and_secrets(tmp_path: Path) -> None:
    pod = PodBuilder(objects(), tmp_path, "ns").pod("mq-worker-daily", worker_pod())
    assert pod.env["MARKETQ_LOG_LEVEL"] == "INFO"
    assert pod.env["MARKETQ_REDIS_URL"] == "redis://:pw@127.0.0.1:1/0"
    assert pod.env["POD"] == "mq-worker-daily-e2e"
    # Kubernetes expands defined variables and leaves undefined ones as written.
    assert pod.env["GREETING"] == "pod mq-worker-daily-e2e logs at INFO $(UNDEFINED)"


def test_the_image_entrypoint_is_used_when_the_pod_sets_only_args(tmp_path: Path) -> None:
    pod = PodBuilder(objects(), tmp_path, "ns").pod("w", worker_pod())
    assert Path(pod.argv[0]).name == "marketq-worker"
    assert pod.argv[1:] == ["--queue", "daily"]
    assert image_command("worker") == (["marketq-worker"], ["--queue", "default"])


def test_mounted_files_are_written_and_paths_follow_them(tmp_path: Path) -> None:
    pod = PodBuilder(objects(), tmp_path, "ns").pod("w", worker_pod())
    schedule = Path(pod.env["MARKETQ_SCHEDULE_FILE"])
    assert schedule.is_relative_to(tmp_path)
    assert schedule.read_text() == "entries: {}\n"
    assert Path(pod.env["TMPDIR"]).is_dir()
    assert pod.env["PROMETHEUS_MULTIPROC_DIR"].startswith(pod.env["TMPDIR"])
    assert any("MARKETQ_SCHEDULE_FILE" in o for o in pod.overrides)


def test_listen_ports_and_binds_change_and_are_recorded(tmp_path: Path) -> None:
    pod = PodBuilder(objects(), tmp_path, "ns").pod("w", worker_pod())
    local = pod.host_port("http")
    assert local != 9101 and pod.env["MARKETQ_WORKER_HTTP_PORT"] == str(local)
    assert pod.host_port(9101) == local
    assert pod.env["MARKETQ_WORKER_HTTP_HOST"] == "127.0.0.1"
    assert any("MARKETQ_WORKER_HTTP_PORT: 9101 ->" in o for o in pod.overrides)


def test_a_probe_on_an_undeclared_port_is_an_error(tmp_path: Path) -> None:
    pod = PodBuilder(objects(), tmp_path, "ns").pod("w", worker_pod())
    with pytest.raises(KeyError):
        pod.host_port("metrics")
    with pytest.raises(AssertionError, match="no setting makes the process listen"):
        pod.host_port(9999)


def test_a_missing_configmap_fails_unless_optional(tmp_path: Path) -> None:
    missing = {"configMapRef": {"name": "nope"}}
    with pytest.raises(KeyError, match="nope"):
        PodBuilder(objects(), tmp_path, "ns").pod("w", worker_pod(envFrom=[missing]))
    optional = {"configMapRef": {"name": "nope", "optional": True}}
    PodBuilder(objects(), tmp_path, "ns").pod("w", worker_pod(envFrom=[optional]))


def test_only_marketq_images_are_accepted() -> None:
    assert image_service("registry.example/marketq-api@sha256:abc") == "api"
    with pytest.raises(AssertionError):
        image_service("redis:7.2-alpine")


def test_expand_is_kubernetes_dependent_variable_syntax() -> None:
    assert expand("$(A)-$(B)", {"A": "1"}) == "1-$(B)"
    assert expand("${A}", {"A": "1"}) == "${A}"
