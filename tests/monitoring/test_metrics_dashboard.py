"""The Grafana dashboard queries only what /metrics exports, through the datasource that
compose provisions, and compose mounts what the provisioning files point at."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from aura.redis import sync_client
from monitoring.scrape import HEALTH_KEY
from routing.gateway.breaker import OPEN_SET
from tests.gateway.conftest import add_model
from tests.monitoring.conftest import scrape

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "aura-dashboard.json"

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan"}
)
SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # panels folded into a row
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (matchers, groupings) or parts of numbers and ranges."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def test_the_promql_reader_finds_metric_names_and_nothing_else():
    expr = (
        'histogram_quantile(0.95, sum by (provider, le) (rate(aura_x_bucket{a="b c"}'
        "[$__rate_interval]))) / on (provider) group_left sum(aura_y_total) or vector(1e-9)"
    )
    assert metric_names(expr) == {"aura_x_bucket", "aura_y_total"}
    assert metric_names("aura_z == 1") == {"aura_z"}


def test_every_metric_the_dashboard_queries_is_exported(gw):
    # Traffic and Redis state, so that labelled series exist too, not only their families.
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(cache={"mode": "exact"})
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "fake-ok", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {gw.plaintext}"},
        timeout=30,
    )
    assert resp.status_code == 200
    sync_client().hset(HEALTH_KEY, "ep1", json.dumps({"status": "healthy", "score": 1}))
    sync_client().zadd(OPEN_SET, {"ep2": 1})
    scraped = scrape(gw.url)
    sample_names = {name for name, _, _ in scraped.samples}

    dashboard = json.loads(DASHBOARD.read_text())
    queried = set().union(*(metric_names(e) for e in expressions(dashboard)))

    assert len(queried) >= 15  # the reader found the dashboard's queries
    missing = sorted(
        name
        for name in queried
        if name not in sample_names
        and not any(name.endswith(s) and name[: -len(s)] in scraped.families for s in SUFFIXES)
        and name not in scraped.families
    )
    assert missing == []
    assert "aura_request_duration_seconds_bucket" in sample_names


def test_the_dashboard_uses_the_provisioned_prometheus_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    [source] = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    every = panels(dashboard)
    assert len({p["id"] for p in every}) == len(every)
    for panel in every:
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
    assert source["url"] == "http://prometheus:9090"


def test_compose_mounts_the_provisioning_and_prometheus_scrapes_web():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    grafana = {v.split(":")[1]: v.split(":")[0] for v in compose["grafana"]["volumes"]}
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/aura.yml").read_text())
    [dashboards] = provider["providers"]
    folder = dashboards["options"]["path"]
    assert grafana["/etc/grafana/provisioning"] == "./monitoring/grafana/provisioning"
    assert grafana[f"{folder}/aura-dashboard.json"] == "./monitoring/grafana/aura-dashboard.json"
    prometheus = {v.split(":")[1]: v.split(":")[0] for v in compose["prometheus"]["volumes"]}
    config_path = prometheus["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load((ROOT / config_path).read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["web:8000"]}]
    assert "/prometheus/metrics-token" in " ".join(compose["prometheus"]["command"])
    assert job["authorization"]["credentials_file"] == "/prometheus/metrics-token"
