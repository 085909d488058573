"""deploy/k8s renders (kubectl kustomize) into objects every one of which is valid: Kubernetes'
own kinds against the Kubernetes schemas (kubernetes-validate, strict: an unknown field is an
error), the Prometheus Operator's ServiceMonitor and PrometheusRule against their CRDs' schemas
(vendored in tests/deploy/crds from prometheus-operator 0.93.0, unknown fields refused likewise).
The objects say what the issue asks of them, and the PrometheusRule is rules.yml."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CRDS = Path(__file__).resolve().parent / "crds"
KUBERNETES_VERSION = "1.31.0"
LAYERS = ["base", "overlays/production"]


@cache
def render(layer: str) -> tuple[dict, ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl renders the manifests (kubectl kustomize)"
    rendered = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s" / layer)], capture_output=True, text=True,
                              timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    return tuple(doc for doc in yaml.safe_load_all(rendered.stdout) if doc)


def _closed(schema: dict) -> dict:
    """The CRD's schema as the API server applies it to a typo: fields it does not declare are
    refused (the server would prune them silently), except where it preserves unknown fields."""
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_closed(item) for item in schema]
    return schema


@cache
def crd_schema(kind: str) -> dict:
    crd = json.loads((CRDS / f"{kind}.json").read_text())
    schema = _closed(copy.deepcopy(crd["openAPIV3Schema"]))
    schema["properties"]["metadata"] = {"type": "object"}  # checked by the API server, not the CRD
    return schema


def by_kind(layer: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in render(layer) if o["kind"] == kind}


@pytest.mark.parametrize("layer", LAYERS)
def test_every_object_is_valid_against_its_schema(layer):
    objects = render(layer)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "ConfigMap",
            "NetworkPolicy", "ServiceMonitor", "PrometheusRule"} <= kinds
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            assert obj["apiVersion"] == "monitoring.coreos.com/v1", name
            errors = sorted(jsonschema.Draft7Validator(crd_schema(obj["kind"])).iter_errors(obj), key=str)
            assert not errors, f"{name}: {[f'{list(e.path)}: {e.message}' for e in errors]}"
        else:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")


def test_the_validation_refuses_a_misspelt_field():
    """The checks above can fail: a typo in a probe or a ServiceMonitor is caught."""
    api = copy.deepcopy(by_kind("base", "Deployment")["stockpile-api"])
    api["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/health/ready", "port": 8000}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSION, strict=True)
    monitor = copy.deepcopy(by_kind("base", "ServiceMonitor")["stockpile-api"])
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    assert list(jsonschema.Draft7Validator(crd_schema("ServiceMonitor")).iter_errors(monitor))


@pytest.mark.parametrize("layer", LAYERS)
def test_the_api_is_probed_scaled_and_kept_available(layer):
    api = by_kind(layer, "Deployment")["stockpile-api"]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert api["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    hpa = by_kind(layer, "HorizontalPodAutoscaler")["stockpile-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "stockpile-api" and hpa["spec"]["minReplicas"] >= 2
    pdb = by_kind(layer, "PodDisruptionBudget")["stockpile-api"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a drain can always proceed


@pytest.mark.parametrize("layer", LAYERS)
def test_the_worker_the_migration_and_their_references_fit(layer):
    objects = render(layer)
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    secrets_referenced = set()
    for workload in [*by_kind(layer, "Deployment").values(), *by_kind(layer, "Job").values()]:
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert {ref["configMapRef"]["name"] for ref in container["envFrom"]} <= config_maps
        secrets_referenced |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert {"stockpile-database", "stockpile-audit"} <= secrets_referenced
    assert not [o for o in objects if o["kind"] == "Secret"], "secrets are created in the cluster, never kept here"
    worker = by_kind(layer, "Deployment")["stockpile-worker"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["stockpile", "worker"]
    assert by_kind(layer, "Job")["stockpile-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "stockpile", "db", "upgrade"]
    policies = {p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in by_kind(layer, "NetworkPolicy").values()}
    assert policies == {"stockpile-api", "stockpile-worker", "stockpile-migrate"}


@pytest.mark.parametrize("layer", LAYERS)
def test_prometheus_scrapes_each_role_as_the_rules_expect(layer):
    services = by_kind(layer, "Service")
    for name, monitor in by_kind(layer, "ServiceMonitor").items():
        service = services[name]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        # the `job` label the rules match on (stockpile-api, stockpile-worker) is this Service label's value
        assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == name
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    assert set(by_kind(layer, "ServiceMonitor")) == {"stockpile-api", "stockpile-worker"}
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    assert by_kind(layer, "PrometheusRule")["stockpile"]["spec"]["groups"] == rules["groups"], \
        "deploy/k8s/base/prometheusrule.yaml must carry deploy/prometheus/rules.yml's groups unchanged"


def test_production_runs_more_of_a_pinned_image():
    api = by_kind("overlays/production", "Deployment")["stockpile-api"]
    assert api["metadata"]["namespace"] == "stockpile" and api["spec"]["replicas"] >= 3
    image = api["spec"]["template"]["spec"]["containers"][0]["image"]
    assert not image.endswith(":latest") and ":" in image
    (config,) = by_kind("overlays/production", "ConfigMap").values()
    assert config["data"]["STOCKPILE_TRUSTED_PROXIES"]
