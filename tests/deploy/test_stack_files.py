"""The compose stack and the image agree with what the suite runs: the Prometheus, Alertmanager
and Grafana files mounted are the ones tests/deploy/test_real_prometheus.py runs; every long-running
service has a health check that fits its role; secrets come from files; the image installs the
wheel, as a non-root user, without the embedded PostgreSQL. (Docker may not run where the suite
runs: this reads the files, and promtool and amtool check them.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ONE_SHOT = {"migrate", "metrics-token"}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def mounts(service: dict) -> dict[str, str]:
    """Container path → host path (relative to deploy/) or volume name."""
    return {target: source for source, target, *_ in (v.split(":") for v in service.get("volumes", []))}


def test_the_stack_runs_every_role_with_its_replicas():
    services = compose()["services"]
    assert {"db", "migrate", "api", "worker", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert services["api"]["deploy"]["replicas"] == 2 and services["api"]["environment"]["STOCKPILE_WORKERS"] == "2"
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["api"]["command"][:2] == ["stockpile", "serve"] and services["worker"]["command"] == ["stockpile", "worker"]
    assert services["migrate"]["command"] == ["stockpile", "db", "upgrade"]
    for role in ("api", "worker", "metrics-token"):
        assert services[role]["depends_on"] in ({"migrate": {"condition": "service_completed_successfully"}},)
    assert "/var/lib/postgresql/data" in mounts(services["db"]), "the database keeps its data in a volume"


def test_every_long_running_service_checks_its_own_health():
    services = compose()["services"]
    for name, service in services.items():
        if name in ONE_SHOT:
            assert "healthcheck" not in service and service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"][0] == "CMD", name
    checks = {name: " ".join(s["healthcheck"]["test"]) for name, s in services.items() if name not in ONE_SHOT}
    assert "/health/ready" in checks["api"] and ":8000" in checks["api"]
    assert f":{services['worker']['environment']['STOCKPILE_WORKER_METRICS_PORT']}/metrics" in checks["worker"]
    assert "pg_isready" in checks["db"]


def test_secrets_come_from_files_that_are_never_committed():
    stack = compose()
    text = (DEPLOY / "compose.yaml").read_text()
    assert "POSTGRES_HOST_AUTH_METHOD" not in text and not re.search(r"postgresql://\w+:\w+@", text)
    for name, secret in stack["secrets"].items():
        assert secret["file"] == f"./secrets/{name}"
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text().split()
    environment = stack["services"]["api"]["environment"]
    assert environment["DATABASE_URL_FILE"] == "/run/secrets/database_url"
    assert environment["STOCKPILE_AUDIT_KEY_FILE"] == "/run/secrets/audit_key"
    assert stack["services"]["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_prometheus_scrapes_the_stacks_services_with_the_files_the_suite_runs():
    services = compose()["services"]
    prometheus = services["prometheus"]
    assert mounts(prometheus)["/etc/prometheus"] == "./prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for path in config["rule_files"]:
        assert (DEPLOY / "prometheus" / path).is_file()
    scrapes = {s["job_name"]: s for s in config["scrape_configs"]}
    assert set(scrapes) == {"stockpile-api", "stockpile-worker"}
    for job, service, port in (("stockpile-api", "api", 8000),
                               ("stockpile-worker", "worker", int(services["worker"]["environment"]["STOCKPILE_WORKER_METRICS_PORT"]))):
        (discovery,) = scrapes[job]["dns_sd_configs"]
        assert discovery["names"] == [service] and discovery["port"] == port  # every replica a target of its own
    token = Path(scrapes["stockpile-api"]["authorization"]["credentials_file"])
    assert mounts(prometheus)[str(token.parent)] == "metrics-token"
    assert mounts(services["metrics-token"])[str(token.parent)] == "metrics-token"
    assert str(token) in " ".join(services["metrics-token"]["command"])
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    host, port = alertmanagers["static_configs"][0]["targets"][0].split(":")
    assert host in services and f"127.0.0.1:{port}/-/ready" in " ".join(services[host]["healthcheck"]["test"])
    assert mounts(services["alertmanager"])["/etc/alertmanager"] == "./alertmanager"


def test_the_rules_and_the_alertmanager_configuration_load():
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    assert promtool and amtool, "promtool and amtool come with Debian's prometheus packages (./dev test)"
    rules = subprocess.run([promtool, "check", "rules", str(DEPLOY / "prometheus" / "rules.yml")], capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    checked = subprocess.run([amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_is_provisioned_with_the_dashboard_the_suite_queries():
    grafana = compose()["services"]["grafana"]
    volumes = mounts(grafana)
    assert volumes["/etc/grafana/provisioning"] == "./grafana/provisioning"
    provisioning = DEPLOY / "grafana" / "provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "stockpile.yml").read_text())["providers"]
    dashboard_path = f"{provider['options']['path']}/stockpile.json"
    assert volumes[dashboard_path] == "./grafana/stockpile.json"
    json.loads((DEPLOY / "grafana" / "stockpile.json").read_text())
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["isDefault"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"


def test_the_image_installs_the_wheel_as_a_non_root_user_without_the_embedded_server():
    dockerfile = re.sub(r"^\s*#.*\n", "", (DEPLOY / "Dockerfile").read_text(), flags=re.MULTILINE)  # instructions only
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", dockerfile, re.MULTILINE)
    assert len(stages) == 2 and stages[0][1] == "build"
    assert re.search(r"pip wheel .*--wheel-dir /dist \.", dockerfile) and "pip install /dist/stockpile-" in dockerfile
    assert "pip install -e" not in dockerfile and "embedded" not in dockerfile and "pgserver" not in dockerfile
    assert "pip uninstall --yes pandas" in dockerfile
    assert "COPY --from=build /opt/stockpile /opt/stockpile" in dockerfile
    (user,) = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0"), user
    assert "HEALTHCHECK" not in dockerfile  # each role is checked where it runs (compose, Kubernetes)
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignored[0] == "*" and {"!stockpile/", "!migrations/", "!pyproject.toml", "!setup.py"} <= set(ignored)
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for source in sources.split():
            assert (ROOT / source).exists() and f"!{source.rstrip('/')}" in {i.rstrip("/") for i in ignored}, source
