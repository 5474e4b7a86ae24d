"""The pods the chart runs: commands, probes, security, config and scaling rules."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from marketq.common.catalog import CATALOG
from marketq.common.queues import ALL_QUEUES
from tests.chart.helm import CHART, VALUES_MAX, Rendered, name, render, render_error

QUEUES = [q.value for q in ALL_QUEUES]


def pod_specs(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    """Every pod template (Deployments, StatefulSets, Jobs) and bare Pod."""
    specs = []
    for obj in rendered.objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append(
                (f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"])
            )
        elif obj["kind"] == "Pod":
            specs.append((f"Pod/{obj['metadata']['name']}", obj["spec"]))
    return specs


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


def test_every_pod_meets_the_restricted_pod_security_standard(each_render: Rendered) -> None:
    for where, spec in pod_specs(each_render):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "requests" in c["resources"], where
            # A read-only root needs a writable /tmp.
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, where
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where


def test_every_component_has_its_own_service_account_without_token(
    each_render: Rendered,
) -> None:
    accounts = {sa["metadata"]["name"]: sa for sa in each_render.kinds("ServiceAccount")}
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts.values())
    for where, spec in pod_specs(each_render):
        if where.startswith("StatefulSet/"):
            continue  # the bundled Redis has no marketq identity
        assert spec["serviceAccountName"] in accounts, where
    used = {
        spec["serviceAccountName"]
        for _, spec in pod_specs(each_render)
        if "serviceAccountName" in spec
    }
    assert {name(c) for c in ("api", "worker", "beat", "migrations", "test")} <= used


def test_one_worker_deployment_per_queue_running_its_queue(each_render: Rendered) -> None:
    workers = each_render.workers()
    assert sorted(workers) == sorted(QUEUES)
    for queue, deployment in workers.items():
        c = container(deployment)
        assert c["command"] == ["marketq-worker"]
        assert c["args"] == ["--queue", queue]
        assert deployment["metadata"]["name"] == name(f"worker-{queue.replace('_', '-')}")


def test_worker_probes_are_local_http_never_celery_inspect(each_render: Rendered) -> None:
    for queue, deployment in each_render.workers().items():
        c = container(deployment)
        port = {p["name"]: p["containerPort"] for p in c["ports"]}["http"]
        assert port == 9101
        assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert "inspect" not in json.dumps(deployment), queue
        assert env(c)["PROMETHEUS_MULTIPROC_DIR"] == f"/tmp/marketq-metrics/{queue}"


def test_startup_probe_can_be_turned_off() -> None:
    rendered = render(
        values={
            "workers.queues.daily.probes.startup.enabled": False,
            "api.probes.startup.enabled": False,
        }
    )
    assert "startupProbe" not in container(rendered.workers()["daily"])
    assert "startupProbe" in container(rendered.workers()["market_hours"])
    assert "startupProbe" not in container(rendered.get("Deployment", name("api")))
    assert "startupProbe" in container(rendered.get("Deployment", name("beat")))


def test_api_probes_port_and_keys_file(each_render: Rendered) -> None:
    c = container(each_render.get("Deployment", name("api")))
    assert c["command"] == ["marketq-api"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8000}
    keys_file = env(c)["MARKETQ_API_KEYS_FILE"]
    mount = next(m for m in c["volumeMounts"] if keys_file.startswith(m["mountPath"] + "/"))
    assert mount["readOnly"] is True


def test_beat_is_one_recreated_replica_with_a_tick_liveness(each_render: Rendered) -> None:
    beat = each_render.get("Deployment", name("beat"))
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    c = container(beat)
    assert c["command"] == ["marketq-beat"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 9102}
    autoscalers = each_render.kinds("HorizontalPodAutoscaler") + each_render.kinds("ScaledObject")
    assert name("beat") not in {a["spec"]["scaleTargetRef"]["name"] for a in autoscalers}


def test_no_replicas_on_autoscaled_deployments(max_render: Rendered) -> None:
    targets = {
        a["spec"]["scaleTargetRef"]["name"]
        for a in max_render.kinds("HorizontalPodAutoscaler") + max_render.kinds("ScaledObject")
    }
    assert targets == {name("api")} | {d["metadata"]["name"] for d in max_render.workers().values()}
    for deployment in max_render.kinds("Deployment"):
        autoscaled = deployment["metadata"]["name"] in targets
        assert ("replicas" in deployment["spec"]) is not autoscaled, deployment["metadata"]["name"]


def test_fixed_replicas_when_not_autoscaled(default_render: Rendered) -> None:
    assert not default_render.kinds("HorizontalPodAutoscaler")
    for deployment in default_render.kinds("Deployment"):
        assert isinstance(deployment["spec"]["replicas"], int)


def test_queue_values_deep_merge_over_defaults() -> None:
    rendered = render(
        values={
            "workers.defaults.concurrency": 3,
            "workers.defaults.resources.limits.memory": "2Gi",
            "workers.queues.daily.concurrency": 8,
            "workers.queues.daily.maxMemoryPerChildKb": 300000,
            "workers.queues.periodic.enabled": False,
        }
    )
    workers = rendered.workers()
    assert "periodic" not in workers
    daily, default = container(workers["daily"]), container(workers["default"])
    assert env(daily)["MARKETQ_QUEUES__DAILY__CONCURRENCY"] == "8"
    assert env(daily)["MARKETQ_QUEUES__DAILY__MAX_MEMORY_PER_CHILD_KB"] == "300000"
    assert env(default)["MARKETQ_QUEUES__DEFAULT__CONCURRENCY"] == "3"
    assert "MARKETQ_QUEUES__DEFAULT__MAX_MEMORY_PER_CHILD_KB" not in env(default)
    # A nested override keeps its siblings from the defaults.
    assert daily["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    }


def test_grace_period_and_time_limits(max_render: Rendered) -> None:
    config = max_render.get("ConfigMap", name("config"))["data"]
    assert config["MARKETQ_QUEUES__MARKET_HOURS__MAX_TIME_LIMIT_SECONDS"] == "120"
    assert config["MARKETQ_QUEUES__DAILY__MAX_TIME_LIMIT_SECONDS"] == "1200"
    assert config["MARKETQ_VISIBILITY_TIMEOUT_SECONDS"] == "3600"
    assert "MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS" not in config  # per queue, below
    soft = env(container(max_render.workers()["market_hours"]))
    assert soft["MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS"] == "120"  # the queue's cap


def test_scale_in_and_rollouts_let_every_running_job_finish(default_render: Rendered) -> None:
    # Each queue's soft shutdown covers its longest hard time limit in the catalog and the
    # grace period is above it: a worker leaving never kills a job that could still finish.
    for queue, deployment in default_render.workers().items():
        longest = max(job.time_limit for job in CATALOG.values() if job.queue.value == queue)
        soft = float(env(container(deployment))["MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS"])
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert soft >= longest, queue
        assert grace > soft, queue


def test_labels_from_helpers_on_every_object(each_render: Rendered) -> None:
    for obj in each_render.objects:
        labels = obj["metadata"]["labels"]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels["app.kubernetes.io/name"] == "marketq", where
        assert labels["app.kubernetes.io/instance"] == "mq", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["helm.sh/chart"] == "marketq-0.1.0", where
    for deployment in each_render.kinds("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= template_labels.items()
        assert "app.kubernetes.io/component" in selector


def test_common_labels_reach_every_object(max_render: Rendered) -> None:
    assert all(o["metadata"]["labels"]["team"] == "market-data" for o in max_render.objects)


def test_checksums_roll_pods_when_what_they_read_changes(default_render: Rendered) -> None:
    # What each pod reads (tests/chart/test_generated_secrets.py changes each input).
    def annotations(deployment: str) -> set[str]:
        d = default_render.get("Deployment", name(deployment))
        return set(d["spec"]["template"]["metadata"]["annotations"])

    common = {"checksum/config", "checksum/redis", "checksum/database"}
    assert annotations("worker-daily") == common
    assert annotations("beat") == common | {"checksum/schedule"}
    assert annotations("api") == common | {"checksum/schedule", "checksum/api-keys"}


def test_schedule_file_is_a_configmap_mounted_in_beat_and_api(max_render: Rendered) -> None:
    from marketq.common.scheduling.schedules import load_schedule_file

    schedule = max_render.get("ConfigMap", name("schedule"))
    path = env(container(max_render.get("Deployment", name("api"))))["MARKETQ_SCHEDULE_FILE"]
    for deployment in ("api", "beat"):
        d = max_render.get("Deployment", name(deployment))
        assert env(container(d))["MARKETQ_SCHEDULE_FILE"] == path
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        mount = next(
            m for m in container(d)["volumeMounts"] if path.startswith(m["mountPath"] + "/")
        )
        assert volumes[mount["name"]]["configMap"]["name"] == schedule["metadata"]["name"]
    assert path.rsplit("/", 1)[1] in schedule["data"]
    # Workers do not read it and are not rolled by it.
    for worker in max_render.workers().values():
        assert "MARKETQ_SCHEDULE_FILE" not in env(container(worker))
        assert "checksum/schedule" not in worker["spec"]["template"]["metadata"]["annotations"]
    assert (
        yaml.safe_load(schedule["data"]["schedule.yaml"])["entries"]["news"]["cron"]
        == "*/15 * * * *"
    )
    # marketq's own loader accepts the rendered file.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "schedule.yaml"
        file.write_text(schedule["data"]["schedule.yaml"], encoding="utf-8")
        assert load_schedule_file(str(file)) is not None


def test_secrets_are_mounted_as_files_never_in_env(each_render: Rendered) -> None:
    for where, spec in pod_specs(each_render):
        for c in spec["containers"]:
            names = {e["name"] for e in c.get("env", [])}
            assert not {"MARKETQ_REDIS_URL", "MARKETQ_DATABASE_URL"} & names, where
            if where.startswith("Deployment/"):
                assert {"MARKETQ_REDIS_URL_FILE", "MARKETQ_DATABASE_URL_FILE"} <= names, where


def test_existing_secrets_are_used_by_name(max_render: Rendered) -> None:
    api = max_render.get("Deployment", name("api"))
    volumes = {v["name"]: v for v in api["spec"]["template"]["spec"]["volumes"]}
    assert volumes["redis-url"]["secret"]["secretName"] == "marketq-redis"
    assert volumes["database-url"]["secret"]["secretName"] == "marketq-db"
    assert volumes["api-keys"]["secret"]["secretName"] == "marketq-api-keys"
    assert volumes["redis-ca"]["secret"]["secretName"] == "marketq-redis"
    assert env(container(api))["MARKETQ_REDIS_TLS_CA_FILE"] == "/etc/marketq/redis-ca/ca.crt"
    assert not max_render.has("StatefulSet", name("redis"))
    assert not [s for s in max_render.kinds("Secret") if "url" in s.get("stringData", {})]


def test_images_and_tags(max_render: Rendered, default_render: Rendered) -> None:
    def image(rendered: Rendered, deployment: str) -> str:
        return str(container(rendered.get("Deployment", name(deployment)))["image"])

    assert image(default_render, "api") == "ghcr.io/marketq/marketq-api:0.1.0"
    assert image(default_render, "beat") == "ghcr.io/marketq/marketq-beat:0.1.0"
    assert image(max_render, "api") == "ghcr.io/marketq/marketq-api:1.2.3"
    assert image(max_render, "worker-daily").startswith("ghcr.io/marketq/marketq-worker@sha256:")
    api = max_render.get("Deployment", name("api"))["spec"]["template"]["spec"]
    assert api["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_migrations_run_as_a_pre_install_pre_upgrade_hook(each_render: Rendered) -> None:
    job = each_render.get("Job", name("migrations"))
    annotations = job["metadata"]["annotations"]
    # Before install, except for a bundled database, which exists only after it.
    bundled = each_render.has("StatefulSet", name("postgresql"))
    when = "post-install,pre-upgrade" if bundled else "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook"] == when
    assert container(job)["command"] == ["marketq-migrate"]
    # Hooks run before the release's objects exist: what the Job uses is a hook too.
    sa = each_render.get("ServiceAccount", name("migrations"))
    assert sa["metadata"]["annotations"]["helm.sh/hook"] == when
    assert int(sa["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    secret = job["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"]
    if bundled:
        # The bundled store's own Secret, created at pre-install, long before the Job.
        assert secret == name("postgresql")
        hook_secret = each_render.get("Secret", secret)
        assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install"
    elif secret != "marketq-db":
        hook_secret = each_render.get("Secret", secret)
        assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == when


def test_bundled_redis_keeps_every_message(default_render: Rendered) -> None:
    redis = default_render.get("StatefulSet", name("redis"))
    args = container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert (
        redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        == "2Gi"
    )
    secret = default_render.get("Secret", name("redis"))["stringData"]
    assert secret["url"] == f"redis://:{secret['password']}@{name('redis')}:6379/0"


def test_pdbs_and_topology_spread(each_render: Rendered) -> None:
    pdbs = {p["metadata"]["name"] for p in each_render.kinds("PodDisruptionBudget")}
    assert {name("api")} | {d["metadata"]["name"] for d in each_render.workers().values()} <= pdbs
    api = each_render.get("Deployment", name("api"))["spec"]["template"]["spec"]
    keys = {t["topologyKey"] for t in api["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_topology_spread_can_be_turned_off_per_component(max_render: Rendered) -> None:
    spec = max_render.workers()["default"]["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in spec
    assert spec["tolerations"][0]["key"] == "dedicated"


def test_config_names_only_real_settings(each_render: Rendered) -> None:
    from marketq.common.catalog import CATALOG
    from marketq.common.settings import ProviderRouting, QueueOptions, Settings

    config = each_render.get("ConfigMap", name("config"))["data"]
    fields = {f"MARKETQ_{f.upper()}" for f in Settings.model_fields}
    nested = {
        f"MARKETQ_QUEUES__{q.upper()}__{f.upper()}"
        for q in QUEUES
        for f in QueueOptions.model_fields
    }
    kinds = {f"MARKETQ_PROVIDERS__{k.upper()}" for k in ProviderRouting.model_fields}
    jobs = {f"MARKETQ_PROVIDERS__JOBS__{job.upper()}" for job in CATALOG}
    from marketq.common.settings import ProviderRouting

    # The providers block: one chain per data kind and per catalog job.
    nested |= {f"MARKETQ_PROVIDERS__{kind.upper()}" for kind in ProviderRouting.model_fields} | {
        f"MARKETQ_PROVIDERS__JOBS__{job.upper()}" for job in CATALOG
    }
    for key in config:
        if key == "MARKETQ_API_PORT":
            continue  # read by the marketq-api entrypoint, not a setting
        assert key in fields | nested | kinds | jobs, f"{key} is not a marketq setting"
        assert key in fields | nested, f"{key} is not a marketq setting"


# Settings the chart sets outside `config` (secrets by file, components' own values).
SET_ELSEWHERE = {
    "redis_url": "redis.url / redis.existingSecret (MARKETQ_REDIS_URL_FILE)",
    "broker_url": "redis.existingSecret holds one URL for broker and results",
    "result_backend_url": "redis.existingSecret holds one URL for broker and results",
    "redis_tls_ca_file": "redis.tls.caSecret",
    "redis_sentinel_master": "redis.sentinel.masterName",
    "redis_sentinel_password": "redis.sentinel.existingSecret (its _FILE variable)",
    "redis_sentinel_tls": "redis.sentinel.tls",
    "database_url": "database.url / database.existingSecret (MARKETQ_DATABASE_URL_FILE)",
    "api_keys": "api.auth (MARKETQ_API_KEYS_FILE)",
    "queues": "workers.queues",
    "beat_enabled": "beat.enabled",
    "schedule_file": "schedule.file",
    "beat_http_host": "0.0.0.0, the process default",
    "beat_http_port": "beat.port",
    "worker_http_host": "set per worker container",
    "worker_http_port": "workers.httpPort",
    "quota_redis_url": "the quota buckets share redis.url / redis.existingSecret",
    "provider": "providers.default",
    "providers": "providers.byKind / providers.byJob",
    "alphavantage_api_key": "providers.existingSecret (MARKETQ_ALPHAVANTAGE_API_KEY_FILE)",
    "fred_api_key": "providers.existingSecret (MARKETQ_FRED_API_KEY_FILE)",
    "finnhub_api_key": "providers.existingSecret (MARKETQ_FINNHUB_API_KEY_FILE)",
    "edgar_user_agent": "providers.edgarUserAgent",
    "api_host": "0.0.0.0, the process default",
    "api_port": "api.port",
    "worker_soft_shutdown_seconds": "workers.<queue>.softShutdownSeconds (per worker container)",
    "alpaca_api_key": "a Secret through the component's extraEnvFrom (never a value)",
    "alpaca_secret_key": "a Secret through the component's extraEnvFrom (never a value)",
    "webhook_secret": "a Secret through the component's extraEnvFrom (never a value)",
}


def test_every_setting_has_a_value_in_the_chart() -> None:
    from marketq.common.settings import Settings

    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    in_config = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower() for key in values["config"]}
    missing = set(Settings.model_fields) - in_config - SET_ELSEWHERE.keys()
    assert not missing, f"settings the chart cannot set: {sorted(missing)}"


def settings_from(
    rendered: Rendered,
    deployment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str] | None = None,
) -> Any:
    """Settings as the container would load them: the ConfigMap plus the container's env,
    with the mounted secret files written where the env points (``files`` replaces or adds
    to the default contents, by env variable)."""
    from marketq.common.settings import Settings

    for key in list(os.environ):
        if key.startswith("MARKETQ_"):
            monkeypatch.delenv(key)
    for key, value in rendered.get("ConfigMap", name("config"))["data"].items():
        monkeypatch.setenv(key, value)
    secrets = {
        "MARKETQ_REDIS_URL_FILE": "redis://:pw@redis.example:6379/0",
        "MARKETQ_DATABASE_URL_FILE": "postgresql+psycopg://marketq@db.example/marketq",
        "MARKETQ_API_KEYS_FILE": "[]",
        "MARKETQ_ALPHAVANTAGE_API_KEY_FILE": "av-key-from-the-secret",
        "MARKETQ_FRED_API_KEY_FILE": "fred-key-from-the-secret",
        "MARKETQ_FINNHUB_API_KEY_FILE": "finnhub-key-from-the-secret",
        **(files or {}),
    }
    for key, value in env(container(rendered.get("Deployment", deployment))).items():
        if key in secrets:
            path = tmp_path / key
            path.write_text(secrets[key], encoding="utf-8")
            value = str(path)
        monkeypatch.setenv(key, value)
    return Settings()


def test_the_rendered_environment_loads_into_settings(
    max_render: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketq.common.celery_app import visibility_timeout

    settings = settings_from(max_render, name("worker-market-hours"), tmp_path, monkeypatch)
    assert settings.redis_url == "redis://:pw@redis.example:6379/0"
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.queues.market_hours.concurrency == 4
    assert settings.queues.market_hours.max_time_limit_seconds == 120
    assert settings.queues.market_hours.max_memory_per_child_kb == 400000
    assert settings.queues.market_hours.target_age_seconds == 30
    assert settings.queues.daily.max_time_limit_seconds == 1200
    assert settings.exchange_timezone == "America/New_York"
    assert settings.worker_http_port == 9101
    assert settings.symbols[0] == "AAPL"
    # A paid Alpha Vantage plan over the defaults; the other vendors keep theirs.
    assert settings.quotas["alphavantage"].rate_per_second == 1.25
    assert settings.quotas["edgar"].rate_per_second == 8.0
    assert visibility_timeout(settings) == 3600
    assert settings.provider == ("synthetic",)
    assert settings.providers.daily_bars == ("yahoo", "alphavantage")
    assert settings.providers.jobs == {"news": ("alphavantage",)}
    assert settings.edgar_user_agent == "Example Corp ops@example.com"
    assert settings.provider_timeout_seconds == 10
    key = settings.alphavantage_api_key
    assert key is not None and key.get_secret_value() == "av-key-from-the-secret"
    api = settings_from(max_render, name("api"), tmp_path, monkeypatch)
    assert api.api_keys == () and api.schedule_file == "/etc/marketq/schedule/schedule.yaml"
    fred_key = api.fred_api_key  # the API reads the keys too, for its admin provider check
    assert fred_key is not None and fred_key.get_secret_value() == "fred-key-from-the-secret"
    finnhub_key = settings.finnhub_api_key
    assert finnhub_key is not None
    assert finnhub_key.get_secret_value() == "finnhub-key-from-the-secret"
    assert settings.providers.economic_events == ("finnhub",)


def test_vendor_keys_are_mounted_from_the_providers_secret_never_inlined(
    max_render: Rendered,
) -> None:
    for deployment in (name("worker-daily"), name("api")):
        spec = max_render.get("Deployment", deployment)["spec"]["template"]["spec"]
        (c,) = [c for c in spec["containers"] if c["name"] in ("worker", "api")]
        files = {e["name"]: e.get("value") for e in c["env"] if e["name"].endswith("_KEY_FILE")}
        mount = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}["provider-keys"]
        assert files == {
            "MARKETQ_ALPHAVANTAGE_API_KEY_FILE": f"{mount}/alphavantage-api-key",
            "MARKETQ_FRED_API_KEY_FILE": f"{mount}/fred-api-key",
            "MARKETQ_FINNHUB_API_KEY_FILE": f"{mount}/finnhub-api-key",
        }
        volume = {v["name"]: v for v in spec["volumes"]}["provider-keys"]
        assert volume["secret"]["secretName"] == "marketq-vendors"
    config = max_render.get("ConfigMap", name("config"))["data"]
    assert not any("API_KEY" in k and not k.endswith("_FILE") for k in config)
    beat = max_render.get("Deployment", name("beat"))["spec"]["template"]["spec"]
    assert "provider-keys" not in {v["name"] for v in beat["volumes"]}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"providers": {"byKind": {"news": ["alphavantage"]}}}, "providers.existingSecret"),
        ({"providers": {"byJob": {"economic_indicators": ["fred"]}}}, "fred is routed"),
        ({"providers": {"byKind": {"economic_events": ["finnhub"]}}}, "finnhub is routed"),
        ({"providers": {"default": ["edgar"]}}, "providers.edgarUserAgent is empty"),
        ({"providers": {"byKind": {"daily_bars": ["bloomberg"]}}}, "daily_bars"),
        ({"providers": {"edgarUserAgent": "no contact"}}, "edgarUserAgent"),
    ],
)
def test_provider_values_that_cannot_work_fail_the_render(
    values: dict[str, Any], message: str
) -> None:
    assert message in render_error(values=values)


def test_helm_test_hook_runs_health_check_on_every_queue(each_render: Rendered) -> None:
    pod = each_render.get("Pod", name("test-health-check"))
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    assert c["command"] == ["marketq-api-selftest"]
    queues = [arg.removeprefix("--queue=") for arg in c["args"] if arg.startswith("--queue=")]
    assert queues == sorted(QUEUES)
    variables = {e["name"]: e for e in c["env"]}
    assert variables["MARKETQ_API_URL"]["value"] == f"http://{name('api')}:80"
    assert "secretKeyRef" in variables["MARKETQ_API_KEY"]["valueFrom"]


def test_existing_test_key_secret_is_used(max_render: Rendered) -> None:
    pod = max_render.get("Pod", name("test-health-check"))
    ref = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}["MARKETQ_API_KEY"]
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "marketq-test-key", "key": "api-key"}
    assert not max_render.has("Secret", name("test-api-key"))


def test_notes_give_next_steps_and_warn_about_evaluation_stores() -> None:
    from tests.chart.helm import CHART, helm

    out = helm("install", "mq", str(CHART), "--dry-run=client", "--namespace", "marketq").stdout
    notes = out.split("NOTES:", 1)[1]
    assert "helm test mq -n marketq" in notes
    assert "its own single-node Redis and PostgreSQL, for evaluation only" in notes
    production = helm(
        "install", "mq", str(CHART), "--dry-run=client", "-f", str(VALUES_MAX),
        "--set", "keda.force=true",
    ).stdout.split("NOTES:", 1)[1]  # fmt: skip
    assert "evaluation" not in production and "KEDA 0..10 replicas" in production


def test_bundled_postgresql_for_a_first_look(default_render: Rendered) -> None:
    db = default_render.get("StatefulSet", name("postgresql"))
    c = container(db)
    assert c["image"] == "postgres:16-bookworm"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounts
    secret = default_render.get("Secret", name("postgresql"))["stringData"]
    assert secret["url"] == (
        f"postgresql+psycopg://marketq:{secret['password']}@{name('postgresql')}:5432/marketq"
    )
    assert not default_render.has("Secret", name("migrations"))


def test_an_external_store_replaces_the_bundled_one() -> None:
    rendered = render(
        values={
            "redis.url": "redis://redis.example:6379/0",
            "database.url": "postgresql+psycopg://marketq@db.example/marketq",
        }
    )
    assert not rendered.kinds("StatefulSet")
    assert (
        rendered.get("Secret", name("redis-url"))["stringData"]["url"]
        == "redis://redis.example:6379/0"
    )
    assert rendered.get("Job", name("migrations"))["metadata"]["annotations"]["helm.sh/hook"] == (
        "pre-install,pre-upgrade"
    )
    secret = render(values={"redis.existingSecret": "r", "redis.url": "redis://ignored:6379/0"})
    assert not secret.has("Secret", name("redis-url"))
    api = secret.get("Deployment", name("api"))["spec"]["template"]["spec"]
    assert {v["name"]: v for v in api["volumes"]}["redis-url"]["secret"]["secretName"] == "r"
