"""The alerting rules are valid and fire on sample series (promtool, from Debian's prometheus package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is installed by ./dev test (Debian's prometheus package)"
    return subprocess.run([tool, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=60)


def test_the_alerting_rules_are_valid():
    checked = promtool("check", "rules", "rules.yml")
    assert checked.returncode == 0 and "SUCCESS: 8 rules found" in checked.stdout, checked.stdout + checked.stderr


def test_the_alerts_fire_on_sample_series():
    tested = promtool("test", "rules", "rules_test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_dashboard_only_queries_metrics_the_service_exports():
    from stockpile.metrics import SNAPSHOT_METRICS

    dashboard = json.loads((DEPLOY / "grafana" / "stockpile.json").read_text())
    exported = set(SNAPSHOT_METRICS) | {"stockpile_requests_total", "stockpile_request_duration_seconds_bucket",
                                        "stockpile_job_runs_total", "stockpile_metrics_snapshot_timestamp_seconds"}
    queried = {name for p in dashboard["panels"] for t in p.get("targets", [])
               for name in re.findall(r"stockpile_[a-z_]+", t["expr"])}
    assert queried and queried <= exported, queried - exported
