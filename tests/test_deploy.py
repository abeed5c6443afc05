"""deploy/router.yaml: every resource valid against the Kubernetes schemas (strict: no unknown field),
and the parts that must agree with the router do: probes on /readyz and /healthz, a grace period that
covers the drain and the shutdown, the keys file where the Secret is mounted, only settings that exist."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
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
    assert pod["terminationGracePeriodSeconds"] > float(settings["ROUTER_DRAIN_SECONDS"]) + float(
        settings["ROUTER_SHUTDOWN_SECONDS"])
    env = {item["name"]: item["value"] for item in container["env"]}
    (mount,) = container["volumeMounts"]
    assert env["ROUTER_SIGNING_KEYS_FILE"] == f"{mount['mountPath']}/keys"
    assert "keys" in resources["Secret"]["stringData"]
