"""deploy/router.yaml: every resource valid against the Kubernetes schemas (strict: no unknown field),
and the parts that must agree with the router do: probes on /readyz and /healthz, a grace period that
covers the preStop pause, the drain and the shutdown, the keys file where the Secret is mounted, a
writable metrics directory, only settings that exist. The local stack (docker-compose.yml,
deploy/prometheus.yml, deploy/alerts.yml): valid for Compose and for Prometheus's promtool, alerts tested."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

from router.serve.setting_docs import SETTINGS
from tests.servers import debian_tool

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
    known = {setting.name for setting in SETTINGS}  # router/serve/setting_docs.py: every setting the router reads
    assert set(settings) <= known, settings
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + float(settings["ROUTER_DRAIN_SECONDS"]) + float(
        settings["ROUTER_SHUTDOWN_SECONDS"])
    env = {item["name"]: item.get("value") for item in container["env"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["ROUTER_SIGNING_KEYS_FILE"] == f"{mounts['keys']}/keys"
    assert settings["ROUTER_METRICS_DIR"] == mounts["metrics"]  # writable: the root file system is not
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    annotations = resources["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert annotations["prometheus.io/port"] == str(ports["metrics"]) == settings["ROUTER_METRICS_PORT"]
    service_ports = [port["targetPort"] for port in resources["Service"]["spec"]["ports"]]
    assert service_ports == ["http"]  # the metrics port is not exposed
    assert "keys" in resources["Secret"]["stringData"]
    # The links' database from the Secret, a PostgreSQL URL the router reads; its schema checked, not migrated.
    database = next(item for item in container["env"] if item["name"] == "ROUTER_DATABASE_URL")
    reference = database["valueFrom"]["secretKeyRef"]
    assert reference["name"] == resources["Secret"]["metadata"]["name"]
    assert resources["Secret"]["stringData"][reference["key"]].startswith("postgresql://")
    assert settings["ROUTER_DATABASE_UPGRADE"] == "check"


def _tool(name: str) -> str:
    return debian_tool(name, package="prometheus")  # promtool comes with Debian's prometheus


def test_prometheus_config_and_alert_rules_check_and_fire() -> None:
    """promtool (Prometheus's own checker) accepts the local stack's config and its rules, and the rules'
    unit tests (tests/alerts_test.yml) show each alert firing on the series it is meant for, and not before."""
    promtool = _tool("promtool")
    rules = sum(len(group["rules"]) for group in yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())["groups"])
    for config in ("prometheus.yml", "prometheus-kubernetes.yml"):
        checked = subprocess.run([promtool, "check", "config", str(ROOT / "deploy" / config)],
                                 capture_output=True, text=True)
        if "field kubernetes_sd_configs not found" in checked.stdout + checked.stderr:
            continue  # Debian builds Prometheus without Kubernetes discovery: the wiring test below checks it
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"SUCCESS: {rules} rules found" in checked.stdout
        assert yaml.safe_load((ROOT / "deploy" / config).read_text())["scrape_configs"][0]["job_name"] == (
            "adlink-router")  # the job the alerts select
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
    return {setting.name for setting in SETTINGS if setting.name}  # every setting the router reads


def test_the_kubernetes_scrape_job_finds_the_deployments_pods() -> None:
    """deploy/prometheus-kubernetes.yml's relabelling, applied to what Kubernetes says of a pod of
    deploy/router.yaml: kept, scraped at the pod's IP on the annotated port and path, in job adlink-router."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus-kubernetes.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "adlink-router" and config["rule_files"] == ["alerts.yml"]
    template = _resources()["Deployment"]["spec"]["template"]
    meta = {"__address__": "10.1.2.3:8000", "__metrics_path__": "/metrics", "__meta_kubernetes_pod_ip": "10.1.2.3",
            "__meta_kubernetes_pod_name": "adlink-router-abc", "__meta_kubernetes_namespace": "default"}
    for name, value in template["metadata"]["labels"].items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)] = value
    for name, value in template["metadata"]["annotations"].items():
        meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)] = value
    target = _relabel(job["relabel_configs"], meta)
    assert target is not None
    ports = {port["name"]: port["containerPort"] for port in template["spec"]["containers"][0]["ports"]}
    assert target["__address__"] == f"10.1.2.3:{ports['metrics']}" and target["__metrics_path__"] == "/metrics"
    assert target["instance"] == "adlink-router-abc"
    other = {**meta, "__meta_kubernetes_pod_label_app": "something-else"}
    assert _relabel(job["relabel_configs"], other) is None


def _relabel(configs: list[dict[str, object]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus's keep and replace relabelling (the parts the file uses): anchored regexes, `;` joins."""
    labels = dict(labels)
    for config in configs:
        value = ";".join(labels.get(str(name), "") for name in config["source_labels"])  # type: ignore[attr-defined]
        match = re.fullmatch(str(config.get("regex", "(.*)")), value)
        if config.get("action", "replace") == "keep":
            if match is None:
                return None
        elif match is not None:
            replacement = str(config.get("replacement", "$1"))
            labels[str(config["target_label"])] = match.expand(re.sub(r"\$(\d+)", r"\\\1", replacement))
    return labels
