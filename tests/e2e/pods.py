"""Turn rendered pod templates into processes on one host, changing only what must change.

A container becomes a process with exactly the rendered command, args and environment:
``env`` values and ``valueFrom`` references to the rendered ConfigMaps and Secrets,
``envFrom``, Kubernetes' ``$(VAR)`` expansion, and the image's ENTRYPOINT/CMD (read from
the service's target in the Dockerfile) when the pod does not set them. Mounted
Secret/ConfigMap files are written under a private directory per pod and emptyDirs are
private directories.

What cannot stay as rendered when every pod shares one host is changed and *recorded*
in ``Pod.overrides`` (the tests print it): paths under a mount point move to that mount's
host directory; listen ports become free loopback ports (and 0.0.0.0 binds become
127.0.0.1); URLs naming a rendered Service point at the process behind it. Redis and
database URLs need no override: the chart is rendered with values that name the test's
real servers on loopback.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.helm import Manifest
from tests.fixtures.ports import free_port
from tests.unit.test_images import image_stage

VENV_BIN = Path(sys.executable).parent
# The setting each image's process reads its listen port and bind address from (CONTRACT).
PORT_SETTINGS = {
    "api": ("MARKETQ_API_PORT", "MARKETQ_API_HOST"),
    "worker": ("MARKETQ_WORKER_HTTP_PORT", "MARKETQ_WORKER_HTTP_HOST"),
    "beat": ("MARKETQ_BEAT_HTTP_PORT", "MARKETQ_BEAT_HTTP_HOST"),
    # Flower runs from the worker image and reads its options from FLOWER_<OPTION>.
    "flower": ("FLOWER_PORT", "FLOWER_ADDRESS"),
}
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class Objects:
    """The rendered manifests, looked up by kind and name."""

    def __init__(self, manifests: list[Manifest]) -> None:
        self.manifests = manifests

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.get("kind") == kind]

    def get(self, kind: str, name: str) -> Manifest:
        for manifest in self.of_kind(kind):
            if manifest["metadata"]["name"] == name:
                return manifest
        raise KeyError(f"no {kind} named {name!r} was rendered")

    def data(self, kind: str, name: str) -> dict[str, bytes]:
        """A ConfigMap's or Secret's data as bytes (Secret data decoded from base64)."""
        obj = self.get(kind, name)
        out: dict[str, bytes] = {}
        if kind == "Secret":
            for key, value in (obj.get("data") or {}).items():
                out[key] = base64.b64decode(value)
            for key, value in (obj.get("stringData") or {}).items():
                out[key] = str(value).encode()
        else:
            for key, value in (obj.get("data") or {}).items():
                out[key] = str(value).encode()
            for key, value in (obj.get("binaryData") or {}).items():
                out[key] = base64.b64decode(value)
        return out

    def is_hook(self, manifest: Manifest, hook: str) -> bool:
        hooks = manifest["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        return hook in [h.strip() for h in hooks.split(",")]

    def deployments(self) -> list[Manifest]:
        return self.of_kind("Deployment")


def image_service(image: str) -> str:
    """Which of marketq's images a container runs (api, worker or beat)."""
    name = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    for service in PORT_SETTINGS:
        if name == f"marketq-{service}":
            return service
    raise AssertionError(f"container image {image!r} is not one of marketq's images")


def image_command(service: str) -> tuple[list[str], list[str]]:
    """The image's ENTRYPOINT and CMD, read from its target in the Dockerfile."""
    entry: list[str] = []
    cmd: list[str] = []
    for item in image_stage(service):
        if item.keyword == "ENTRYPOINT":
            entry = json.loads(item.value)
        elif item.keyword == "CMD":
            cmd = json.loads(item.value)
    return entry, cmd


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables expand, others stay as written."""
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)


@dataclass
class Pod:
    """One container of a rendered pod template, ready to run as a process."""

    owner: str  # Deployment/Job/Pod name
    container: Manifest
    service: str  # api | worker | beat (the image), or flower (the worker image's Flower)
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> host port
    port_names: dict[str, int] = field(default_factory=dict)  # name -> containerPort
    overrides: list[str] = field(default_factory=list)

    def host_port(self, port: int | str) -> int:
        number = self.port_names[port] if isinstance(port, str) else port
        assert number in self.ports, (
            f"{self.owner}: the chart refers to port {port!r}, but no setting makes the "
            f"process listen on it (declared: {self.ports})"
        )
        return self.ports[number]


class PodBuilder:
    """Builds :class:`Pod` objects from the rendered manifests."""

    def __init__(self, objects: Objects, root: Path, namespace: str) -> None:
        self.objects = objects
        self.root = root
        self.namespace = namespace

    def pod(self, owner: str, pod_spec: Manifest, container_name: str | None = None) -> Pod:
        containers = pod_spec["containers"]
        container = (
            containers[0]
            if container_name is None
            else next(c for c in containers if c["name"] == container_name)
        )
        pod_name = f"{owner}-e2e"
        workdir = self.root / pod_name
        workdir.mkdir(parents=True, exist_ok=True)
        image = image_service(container["image"])
        service = "flower" if container["name"] == "flower" else image
        overrides: list[str] = []
        mounts = self._mounts(pod_spec, container, workdir)
        env = self._env(container, pod_name)
        for key, value in list(env.items()):
            moved = self._move_paths(value, mounts)
            if moved != value:
                env[key] = moved
                overrides.append(f"env {key}: {value} -> {moved} (mounted volume)")
        entry, cmd = image_command(image)
        command = container.get("command") or entry
        args = (
            container.get("args")
            if "args" in container
            else (cmd if not container.get("command") else [])
        )
        argv = [expand(str(a), env) for a in [*command, *(args or [])]]
        for index, arg in enumerate(argv):
            moved = self._move_paths(arg, mounts)
            if moved != arg:
                argv[index] = moved
                overrides.append(f"arg {arg} -> {moved} (mounted volume)")
        pod = Pod(
            owner=owner,
            container=container,
            service=service,
            argv=argv,
            env=env,
            workdir=workdir,
            overrides=overrides,
        )
        self._tmp(pod, mounts)
        self._ports(pod)
        pod.env["PATH"] = f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
        pod.env.setdefault("HOSTNAME", pod_name)
        resolved = VENV_BIN / pod.argv[0]
        if "/" not in pod.argv[0] and resolved.exists():
            # The console script the image installs, from this checkout's environment.
            pod.argv[0] = str(resolved)
        return pod

    # --- environment ---------------------------------------------------------------------

    def _env(self, container: Manifest, pod_name: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                data = self._data("ConfigMap", source["configMapRef"])
            elif "secretRef" in source:
                data = self._data("Secret", source["secretRef"])
            else:
                raise AssertionError(f"unsupported envFrom {source}")
            env.update({prefix + k: v.decode() for k, v in data.items()})
        for item in container.get("env", []):
            name = item["name"]
            if "value" in item:
                env[name] = expand(str(item["value"]), env)
                continue
            ref = item.get("valueFrom", {})
            if "configMapKeyRef" in ref or "secretKeyRef" in ref:
                kind = "ConfigMap" if "configMapKeyRef" in ref else "Secret"
                key_ref = ref.get("configMapKeyRef") or ref["secretKeyRef"]
                data = self._data(kind, key_ref)
                if key_ref["key"] in data:
                    env[name] = data[key_ref["key"]].decode()
                else:
                    assert key_ref.get("optional"), f"{kind} key {key_ref} is not rendered"
            elif "fieldRef" in ref:
                env[name] = self._field(ref["fieldRef"]["fieldPath"], pod_name)
            else:
                raise AssertionError(f"unsupported valueFrom for {name}: {ref}")
        return env

    def _data(self, kind: str, ref: Manifest) -> dict[str, bytes]:
        try:
            return self.objects.data(kind, ref["name"])
        except KeyError:
            if ref.get("optional"):
                return {}
            raise

    def _field(self, path: str, pod_name: str) -> str:
        fields = {
            "metadata.name": pod_name,
            "metadata.namespace": self.namespace,
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": "e2e-node",
            "spec.serviceAccountName": "e2e",
        }
        assert path in fields, f"unsupported fieldRef {path}"
        return fields[path]

    # --- volumes -------------------------------------------------------------------------

    def _mounts(self, pod_spec: Manifest, container: Manifest, workdir: Path) -> dict[str, Path]:
        """mountPath -> host path, with Secret/ConfigMap files written out."""
        volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            host = workdir / "volumes" / mount["name"]
            host.mkdir(parents=True, exist_ok=True)
            files = self._volume_files(volume)
            for relative, content in files.items():
                target = host / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            path = mount["mountPath"].rstrip("/") or "/"
            mounts[path] = host / mount["subPath"] if mount.get("subPath") else host
        return mounts

    def _volume_files(self, volume: Manifest) -> dict[str, bytes]:
        if "emptyDir" in volume:
            return {}
        if "secret" in volume:
            return self._items("Secret", volume["secret"]["secretName"], volume["secret"])
        if "configMap" in volume:
            return self._items("ConfigMap", volume["configMap"]["name"], volume["configMap"])
        if "projected" in volume:
            files: dict[str, bytes] = {}
            for source in volume["projected"]["sources"]:
                if "secret" in source:
                    files.update(self._items("Secret", source["secret"]["name"], source["secret"]))
                elif "configMap" in source:
                    files.update(
                        self._items("ConfigMap", source["configMap"]["name"], source["configMap"])
                    )
            return files
        raise AssertionError(f"unsupported volume {volume}")

    def _items(self, kind: str, name: str, spec: Manifest) -> dict[str, bytes]:
        data = self._data(kind, {"name": name, "optional": spec.get("optional", False)})
        if "items" in spec:
            return {item["path"]: data[item["key"]] for item in spec["items"]}
        return dict(data)

    @staticmethod
    def _move_paths(text: str, mounts: dict[str, Path]) -> str:
        # Every mount a value names (MARKETQ_API_KEYS_FILE may list files of two mounts),
        # in one pass so a host path is never rewritten again; the longest mount first, so
        # a nested mount wins over its parent.
        if not mounts:
            return text
        ordered = sorted(mounts, key=len, reverse=True)
        pattern = re.compile(
            rf"(?<![\w/.-])({'|'.join(re.escape(m) for m in ordered)})(?=/|$|[\s:;,])"
        )
        return pattern.sub(lambda match: str(mounts[match.group(1)]), text)

    def _tmp(self, pod: Pod, mounts: dict[str, Path]) -> None:
        if "/tmp" not in mounts:
            return
        host_tmp = mounts["/tmp"]
        pod.env["TMPDIR"] = str(host_tmp)
        pod.overrides.append(f"env TMPDIR={host_tmp} (the /tmp emptyDir)")
        if pod.service == "worker" and "PROMETHEUS_MULTIPROC_DIR" not in pod.env:
            # marketq-worker defaults it to /tmp/marketq-metrics/<queue>: on one host that
            # would be shared by every pod of a queue (and other test runs).
            target = host_tmp / "marketq-metrics"
            pod.env["PROMETHEUS_MULTIPROC_DIR"] = str(target)
            pod.overrides.append(f"env PROMETHEUS_MULTIPROC_DIR={target} (the /tmp emptyDir)")

    # --- ports ---------------------------------------------------------------------------

    def _ports(self, pod: Pod) -> None:
        port_var, host_var = PORT_SETTINGS[pod.service]
        for declared in pod.container.get("ports", []):
            number = int(declared["containerPort"])
            if "name" in declared:
                pod.port_names[declared["name"]] = number
            local = free_port()
            changed = False
            for index, arg in enumerate(pod.argv[:-1]):
                if arg == "--port" and pod.argv[index + 1] == str(number):
                    pod.argv[index + 1] = str(local)
                    pod.overrides.append(f"arg --port {number} -> {local}")
                    changed = True
            if pod.env.get(port_var) == str(number) or (not changed and port_var not in pod.env):
                pod.overrides.append(
                    f"env {port_var}: {pod.env.get(port_var, '(unset)')} -> {local}"
                )
                pod.env[port_var] = str(local)
                changed = True
            assert changed, f"{pod.owner}: nothing makes the process listen on port {number}"
            pod.ports[number] = local
        if not pod.ports:
            return  # a client (the test pod, the migration): it listens on nothing
        for index, arg in enumerate(pod.argv[:-1]):
            if arg == "--host" and pod.argv[index + 1] != "127.0.0.1":
                pod.overrides.append(f"arg --host {pod.argv[index + 1]} -> 127.0.0.1")
                pod.argv[index + 1] = "127.0.0.1"
        if pod.env.get(host_var) != "127.0.0.1":
            pod.overrides.append(f"env {host_var}: {pod.env.get(host_var, '(unset)')} -> 127.0.0.1")
            pod.env[host_var] = "127.0.0.1"
