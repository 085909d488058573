"""The alerting rules are valid and fire on sample series (promtool, from Debian's prometheus package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is installed by ./dev test (Debian's prometheus package)"
    return subprocess.run([tool, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=60)


def test_the_alerting_rules_are_valid():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    checked = promtool("check", "rules", "rules.yml")
    assert checked.returncode == 0 and f"SUCCESS: {count} rules found" in checked.stdout, checked.stdout + checked.stderr


def test_no_rule_or_panel_reads_a_job_label_of_the_service():
    """Prometheus owns ``job`` and ``instance`` (the service's are ``job_name``): a rule or panel
    grouping the service's jobs by ``job`` would read the scrape job instead."""
    from stockpile.metrics import JOB_RUNS, JOB_LAST_SUCCESS

    assert "job" not in JOB_RUNS._labelnames and "job" not in JOB_LAST_SUCCESS._labelnames
    texts = [(DEPLOY / "prometheus" / "rules.yml").read_text(), (DEPLOY / "grafana" / "stockpile.json").read_text()]
    for text in texts:
        assert not re.search(r"stockpile_job_[a-z_]+\{job[!=~]", text)
        assert "{{ $labels.job }} has" not in text and "by (job, outcome)" not in text


def test_the_alerts_fire_on_sample_series():
    tested = promtool("test", "rules", "rules_test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_dashboard_only_queries_metrics_the_service_exports():
    from stockpile.metrics import SNAPSHOT_METRICS

    dashboard = json.loads((DEPLOY / "grafana" / "stockpile.json").read_text())
    exported = set(SNAPSHOT_METRICS) | {"stockpile_requests_total", "stockpile_request_duration_seconds_bucket",
                                        "stockpile_job_runs_total", "stockpile_metrics_snapshot_timestamp_seconds",
                                        "stockpile_db_connections_in_use", "stockpile_db_connections_max"}
    queried = {name for p in dashboard["panels"] for t in p.get("targets", [])
               for name in re.findall(r"stockpile_[a-z_]+", t["expr"])}
    assert queried and queried <= exported, queried - exported
