"""deploy/router.yaml: every resource valid against the Kubernetes schemas (strict: no unknown field),
and the parts that must agree with the router do: probes on /readyz and /healthz, a grace period that
covers the preStop pause, the drain and the shutdown, the keys file where the Secret is mounted, a
writable metrics directory, only settings that exist. The local stack (docker-compose.yml,
deploy/prometheus.yml, deploy/alerts.yml): valid for Compose and for Prometheus's promtool, alerts tested."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "router.yaml"


def _resources() -> dict[str, dict]:  # type: ignore[type-arg]
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFESTS.read_text()) if doc}


def test_every_resource_is_valid_for_kubernetes() -> None:
    resources = _resources()
    assert set(resources) == {"Secret", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                              "HorizontalPodAutoscaler"}
    for resource in resources.values():
        kubernetes_validate.validate(resource, kubernetes_validate.latest_version(), strict=True)


def test_the_deployment_agrees_with_the_router() -> None:
    resources = _resources()
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    settings = resources["ConfigMap"]["data"]
    known = (ROOT / "router" / "serve" / "config.py").read_text()
    assert all(f"| {name} |" in known for name in settings), settings  # only settings the router reads
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + float(settings["ROUTER_DRAIN_SECONDS"]) + float(
        settings["ROUTER_SHUTDOWN_SECONDS"])
    env = {item["name"]: item["value"] for item in container["env"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["ROUTER_SIGNING_KEYS_FILE"] == f"{mounts['keys']}/keys"
    assert settings["ROUTER_METRICS_DIR"] == mounts["metrics"]  # writable: the root file system is not
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    annotations = resources["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
    assert "keys" in resources["Secret"]["stringData"]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (.ci/run installs Debian's prometheus, which has it)")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return found


def test_prometheus_config_and_alert_rules_check_and_fire() -> None:
    """promtool (Prometheus's own checker) accepts the local stack's config and its rules, and the rules'
    unit tests (tests/alerts_test.yml) show each alert firing on the series it is meant for, and not before."""
    promtool = _tool("promtool")
    checked = subprocess.run([promtool, "check", "config", str(ROOT / "deploy" / "prometheus.yml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout
    tested = subprocess.run([promtool, "test", "rules", str(ROOT / "tests" / "alerts_test.yml")],
                            capture_output=True, text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_compose_file_is_valid_and_wired() -> None:
    """docker-compose.yml against the Compose Specification's schema (tests/data/compose-spec.json), and
    wired as the router needs: Prometheus's config and rules mounted from deploy/, its target the router's
    service and port, the workers' metrics on a tmpfs under a read-only root."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    errors = [error.message for error in jsonschema.Draft7Validator(schema).iter_errors(compose)]
    assert not errors, errors
    router, prometheus = compose["services"]["router"], compose["services"]["prometheus"]
    assert router["build"] == "." and "--workers" in router["command"]
    assert router["read_only"] is True and router["environment"]["ROUTER_METRICS_DIR"] in router["tmpfs"]
    assert set(router["environment"]) <= _settings_documented()
    published = {int(port.split(":")[1]) for port in router["ports"]}
    for volume in prometheus["volumes"]:
        source = volume.split(":")[0]
        assert (ROOT / source).is_file(), source
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (target,) = config["scrape_configs"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "router" and int(port) in published


def _settings_documented() -> set[str]:
    known = (ROOT / "router" / "serve" / "config.py").read_text()
    return set(re.findall(r"^\| (ROUTER_[A-Z_]+) \|", known, flags=re.MULTILINE))
